"""nbgrader round trip of lab 02 on the sim cluster: full, zero and partial marks as they should be.

Each submission is the released notebook plus the learner's edited starter/ files; autograde
executes it against the test cluster in a namespace of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
import yaml
from nbgrader.api import Gradebook

from kubelab import labs
from tests.conftest import Kubectl
from tests.nbgrader_course import make_course, nbgrader

LAB = labs.find("02-deployment")
ROLLOUT = (
    "!kubectl set image deployment/demo-web web=kubelab/demo-web:v2 -n {grader.namespace}\n"
    "!kubectl rollout status deployment/demo-web -n {grader.namespace} --timeout=90s"
)


def _answer(notebook: Path, grade_id: str, source: str) -> None:
    nb = json.loads(notebook.read_text())
    cell = next(
        c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id
    )
    cell["source"] = source
    notebook.write_text(json.dumps(nb))


def _submit(course: Path, student: str) -> Path:
    target = course / "submitted" / student / LAB.id
    shutil.copytree(course / "release" / LAB.id, target)
    return target


@pytest.mark.slow
def test_autograde_gives_full_zero_and_partial_marks(
    tmp_path: Path, kubeconfig: Path, kubectl: Kubectl
) -> None:
    course = make_course(tmp_path / "course")
    nbgrader(course, "generate_assignment", LAB.id, "--force")

    solved = _submit(course, "solved")  # every manifest fixed, the rollout done
    shutil.rmtree(solved / "starter")
    shutil.copytree(LAB.directory / "solution", solved / "starter")
    _answer(solved / "lab.ipynb", "rollout", ROLLOUT)

    _submit(course, "untouched")  # the release as handed out

    half = _submit(course, "half")  # a Deployment with a wrong surge; Service and rollout left
    deployment = yaml.safe_load((LAB.directory / "solution/base/deployment.yaml").read_text())
    deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 0
    (half / "starter/base/deployment.yaml").write_text(yaml.safe_dump(deployment))

    namespaces = []
    for student in ("solved", "untouched", "half"):
        ns = f"nbg-{student}-{uuid.uuid4().hex[:4]}"
        namespaces.append(ns)
        env = dict(os.environ, KUBECONFIG=str(kubeconfig), KUBELAB_NAMESPACE=ns)
        env["HOME"] = str(tmp_path / "home")  # the learner's progress file is theirs, not ours
        nbgrader(course, "autograde", LAB.id, "--student", student, "--force", env=env)
    try:
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            scores = {}
            for student in ("solved", "untouched", "half"):
                sub = gb.find_submission(LAB.id, student)
                scores[student] = {g.name: g.score for g in sub.notebooks[0].grades}
    finally:
        for ns in namespaces:
            kubectl("delete", "namespace", ns, "--wait=false", check=False)

    full = {t.id: float(t.points) for t in LAB.tasks}
    assert scores["solved"] == full
    assert scores["untouched"] == dict.fromkeys(full, 0.0)
    # Partial: 2 of 3 deployment requirements met -> 2 of 3 points, recorded by nbgrader.
    assert scores["half"] == {
        "deployment": 2.0,
        "resources": 2.0,
        "probes": 2.0,
        "security": 1.0,
        "service": 0.0,
        "rolling-update": 0.0,
    }
