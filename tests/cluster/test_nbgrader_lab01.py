"""nbgrader round trip of lab 01 on the sim cluster: full, zero and partial marks as they should be.

Each submission is the released notebook plus the learner's starter/ files (a ConfigMapSet
manifest and controller.py); autograde executes it against the test cluster in a namespace of its
own, and the grade cells run the submission's controller.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from kubelab import labs
from tests.conftest import Kubectl
from tests.nbgrader_course import autograde, make_course, nbgrader, scores, submit

LAB = labs.find("01-control-loop")
SOLUTION = LAB.directory / "solution"


@pytest.mark.slow
def test_autograde_gives_full_zero_and_partial_marks(
    tmp_path: Path, kubeconfig: Path, kubectl: Kubectl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBELAB_CONTROLLER", raising=False)  # the notebook must set it
    course = make_course(tmp_path / "course")
    nbgrader(course, "generate_assignment", LAB.id, "--force")
    assert not (course / "release" / LAB.id / "solution").exists()

    solved = submit(course, LAB.id, "solved")  # both files answered
    shutil.rmtree(solved / "starter")
    shutil.copytree(SOLUTION, solved / "starter")

    submit(course, LAB.id, "untouched")  # the release as handed out

    # The parent right, and a controller that never writes status: reconcile earns 2 of 3.
    half = submit(course, LAB.id, "half")
    shutil.copy(SOLUTION / "configmapset.yaml", half / "starter" / "configmapset.yaml")
    source = (SOLUTION / "controller.py").read_text()
    status_write = "if any(seen.get(key) != value for key, value in status.items()):"
    assert source.count(status_write) == 1
    (half / "starter" / "controller.py").write_text(source.replace(status_write, "if False:"))

    namespaces = []
    found = {}
    try:
        for student in ("solved", "untouched", "half"):
            ns = f"nbg-{student}-{uuid.uuid4().hex[:4]}"
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
    assert found["half"] == {**full, "reconcile": 2.0}
