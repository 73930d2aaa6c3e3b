"""Every lab's nbgrader round trip on kind: the same submissions, graded the same as on the sim.

tests/cluster/test_nbgrader_roundtrip.py autogrades each lab's "solved", "untouched" and "half"
submissions on the sim cluster; here the same cases run against the kind cluster's real pods,
probes, traffic and NetworkPolicy. Where a substrate honestly grades differently, KIND_POINTS
says so and why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelab import labs
from kubelab.cluster.kind import KindBackend
from tests.cluster.test_nbgrader_roundtrip import CASES, Case
from tests.conftest import Kubectl
from tests.nbgrader_course import (
    answer,
    autograde_all,
    make_course,
    nbgrader,
    submit,
    submit_solution,
)

# The "half" submission's points where kind grades differently from the sim, with the reason.
KIND_POINTS: dict[str, dict[str, float]] = {}
# Labs whose round trip has not yet passed on kind, with what is known; they are not run (each
# would wait out its timeouts). Issue 15 stays open while this is not empty.
KIND_PENDING: dict[str, str] = {}


def _cases() -> list[object]:
    return [
        pytest.param(
            c,
            id=c.lab,
            marks=[pytest.mark.xfail(reason=KIND_PENDING[c.lab], run=False)]
            if c.lab in KIND_PENDING
            else [],
        )
        for c in CASES
    ]


@pytest.mark.slow
@pytest.mark.parametrize("case", _cases())
def test_each_lab_grades_on_kind_as_on_the_sim(
    case: Case,
    kind_cluster: KindBackend,
    tmp_path: Path,
    kubeconfig: Path,
    kubectl: Kubectl,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KUBELAB_CONTROLLER", raising=False)
    lab = labs.find(case.lab)
    course = make_course(tmp_path / "course")
    nbgrader(course, "generate_assignment", lab.id, "--force")
    solved = submit_solution(course, lab.id, "solved", lab.directory / "solution")
    for grade_id, source in case.answers.items():
        answer(solved / "lab.ipynb", grade_id, source)
    submit(course, lab.id, "untouched")
    case.half(lab, submit(course, lab.id, "half"))

    # One submission at a time, its namespace gone before the next: kind's nodes have the
    # host's CPUs (two here), and a scaled-up lab 03 left running starves the next one's pods.
    found: dict[str, dict[str, float]] = {}
    for student in ("solved", "untouched", "half"):
        found |= autograde_all(
            course,
            lab.id,
            [student],
            kubeconfig=kubeconfig,
            home=tmp_path / "home",
            delete_namespace=lambda ns: kubectl(
                "delete", "namespace", ns, "--timeout=240s", timeout=300, check=False
            ),
        )
    full = {t.id: float(t.points) for t in lab.tasks}
    assert found["solved"] == full
    assert found["untouched"] == dict.fromkeys(full, 0.0)
    expected = {k: float(v) for k, v in case.half_points.items()}
    expected.update(KIND_POINTS.get(case.lab, {}))
    assert found["half"] == expected
