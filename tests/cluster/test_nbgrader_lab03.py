"""nbgrader round trip of lab 03 on the sim cluster: full, zero and partial marks as they should be.

Each submission is the released notebook plus the learner's edited starter/ files; autograde
executes it against the test cluster in a namespace of its own, the acting checks included.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from kubelab import labs
from tests.conftest import Kubectl
from tests.nbgrader_course import answer, autograde, make_course, nbgrader, scores, submit

LAB = labs.find("03-hpa-pdb")
DELETE_FREEZE = "!kubectl delete pdb demo-web-freeze -n {grader.namespace} --ignore-not-found"


@pytest.mark.slow
def test_autograde_gives_full_zero_and_partial_marks(
    tmp_path: Path, kubeconfig: Path, kubectl: Kubectl
) -> None:
    course = make_course(tmp_path / "course")
    nbgrader(course, "generate_assignment", LAB.id, "--force")

    solved = submit(course, LAB.id, "solved")  # every manifest fixed, the leftover PDB deleted
    shutil.rmtree(solved / "starter")
    shutil.copytree(LAB.directory / "solution", solved / "starter")
    answer(solved / "lab.ipynb", "delete-freeze", DELETE_FREEZE)

    submit(course, LAB.id, "untouched")  # the release as handed out

    # HPA and PDB fixed; the Deployment left as it was (no CPU request, no preStop), and the
    # leftover second budget still there.
    half = submit(course, LAB.id, "half")
    for name in ("hpa.yaml", "pdb.yaml"):
        shutil.copy(LAB.directory / "solution" / name, half / "starter" / name)

    namespaces = []
    found = {}
    try:
        for student in ("solved", "untouched", "half"):
            ns = f"nbg3-{student}-{uuid.uuid4().hex[:4]}"
            namespaces.append(ns)
            autograde(
                course, LAB.id, student, kubeconfig=kubeconfig, namespace=ns, home=tmp_path / "home"
            )
            found[student] = scores(course, LAB.id, student)
    finally:
        for ns in namespaces:
            kubectl("delete", "namespace", ns, "--wait=false", check=False)

    full = {t.id: float(t.points) for t in LAB.tasks}
    assert found["solved"] == full
    assert found["untouched"] == dict.fromkeys(full, 0.0)
    assert found["half"] == {
        "hpa": 2.0,  # 3 of 4 requirements: the container requests no CPU
        "pdb": 2.0,
        "eviction": 2.0,  # two budgets over the pods: the live dry-run eviction fails (500)
        "graceful-shutdown": 0.0,
        "scales-under-load": 0.0,  # no CPU request: the HPA cannot react, so no load is applied
    }
