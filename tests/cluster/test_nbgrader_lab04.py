"""nbgrader round trip of lab 04 on the sim cluster: full, zero and partial marks as they should be.

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

LAB = labs.find("04-statefulset")
STAGE = (
    'stage = \'{"spec": {"updateStrategy": {"rollingUpdate": {"partition": 2}}}}\'\n'
    "!kubectl patch statefulset demo-db -n {grader.namespace} -p '{stage}'\n"
    "!kubectl set image statefulset/demo-db db=postgres:16.6 -n {grader.namespace}\n"
    "!kubectl rollout status statefulset/demo-db -n {grader.namespace} --timeout=90s"
)


@pytest.mark.slow
def test_autograde_gives_full_zero_and_partial_marks(
    tmp_path: Path, kubeconfig: Path, kubectl: Kubectl
) -> None:
    course = make_course(tmp_path / "course")
    nbgrader(course, "generate_assignment", LAB.id, "--force")

    solved = submit(course, LAB.id, "solved")  # every manifest fixed, the update staged
    shutil.rmtree(solved / "starter")
    shutil.copytree(LAB.directory / "solution", solved / "starter")
    answer(solved / "lab.ipynb", "stage", STAGE)

    submit(course, LAB.id, "untouched")  # the release as handed out

    # The solution with an unnamed Service port and claims deleted on scale-down; no update.
    half = submit(course, LAB.id, "half")
    shutil.rmtree(half / "starter")
    shutil.copytree(LAB.directory / "solution", half / "starter")
    service = yaml.safe_load((half / "starter/service.yaml").read_text())
    del service["spec"]["ports"][0]["name"]
    (half / "starter/service.yaml").write_text(yaml.safe_dump(service))
    statefulset = yaml.safe_load((half / "starter/statefulset.yaml").read_text())
    statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] = "Delete"
    (half / "starter/statefulset.yaml").write_text(yaml.safe_dump(statefulset))

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
    # Partial: 3 of 4 Service requirements met -> 1 of 2 points, recorded by nbgrader.
    assert found["half"] == {
        "headless-service": 1.0,
        "statefulset": 3.0,
        "storage": 2.0,
        "staged-update": 0.0,
        "retention": 0.0,
    }
