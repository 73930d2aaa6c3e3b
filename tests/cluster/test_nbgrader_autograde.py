"""nbgrader round trip of lab 02 on the sim cluster: full, zero and partial marks as they should be.

Each submission is the released notebook plus the learner's edited starter/ files; autograde
executes it against the test cluster in a namespace of its own.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
import yaml

from kubelab import labs
from tests.conftest import Kubectl
from tests.nbgrader_course import answer, autograde, make_course, nbgrader, scores, submit

LAB = labs.find("02-deployment")
ROLLOUT = (
    "!kubectl set image deployment/demo-web web=kubelab/demo-web:v2 -n {grader.namespace}\n"
    "!kubectl rollout status deployment/demo-web -n {grader.namespace} --timeout=90s"
)


@pytest.mark.slow
def test_autograde_gives_full_zero_and_partial_marks(
    tmp_path: Path, kubeconfig: Path, kubectl: Kubectl
) -> None:
    course = make_course(tmp_path / "course")
    nbgrader(course, "generate_assignment", LAB.id, "--force")

    solved = submit(course, LAB.id, "solved")  # every manifest fixed, the rollout done
    shutil.rmtree(solved / "starter")
    shutil.copytree(LAB.directory / "solution", solved / "starter")
    answer(solved / "lab.ipynb", "rollout", ROLLOUT)

    submit(course, LAB.id, "untouched")  # the release as handed out

    # A Deployment with a wrong surge; Service and rollout left undone.
    half = submit(course, LAB.id, "half")
    deployment = yaml.safe_load((LAB.directory / "solution/base/deployment.yaml").read_text())
    deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 0
    (half / "starter/base/deployment.yaml").write_text(yaml.safe_dump(deployment))

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
    # Partial: 2 of 3 deployment requirements met -> 2 of 3 points, recorded by nbgrader.
    assert found["half"] == {
        "deployment": 2.0,
        "resources": 2.0,
        "probes": 2.0,
        "security": 1.0,
        "service": 0.0,
        "rolling-update": 0.0,
    }
