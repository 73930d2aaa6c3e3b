"""nbgrader round trip of lab 05 on the sim cluster: full, zero and partial marks as they should be.

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
from tests.nbgrader_course import autograde, make_course, nbgrader, scores, submit

LAB = labs.find("05-gateway-canary")


@pytest.mark.slow
def test_autograde_gives_full_zero_and_partial_marks(
    tmp_path: Path, kubeconfig: Path, kubectl: Kubectl
) -> None:
    course = make_course(tmp_path / "course")
    nbgrader(course, "generate_assignment", LAB.id, "--force")

    solved = submit(course, LAB.id, "solved")  # every manifest fixed
    shutil.rmtree(solved / "starter")
    shutil.copytree(LAB.directory / "solution", solved / "starter")

    submit(course, LAB.id, "untouched")  # the release as handed out

    # Backends and Gateway done; the route splits 50/50 and its header rule takes any value.
    half = submit(course, LAB.id, "half")
    for name in ("deployments.yaml", "services.yaml", "gateway.yaml"):
        shutil.copy(LAB.directory / "solution" / name, half / "starter" / name)
    route = yaml.safe_load((LAB.directory / "solution/httproute.yaml").read_text())
    header_rule, canary_rule = route["spec"]["rules"]
    header_rule["matches"][0]["headers"][0].update(type="RegularExpression", value=".*")
    for ref in canary_rule["backendRefs"]:
        ref["weight"] = 50
    (half / "starter/httproute.yaml").write_text(yaml.safe_dump(route))

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
    # Partial: attached but 50/50 (1 of 2 -> 1 of 3 points); the header rule sends "true" to v2
    # but also every other value (1 of 2 -> 1 of 2 points).
    assert found["half"] == {
        "backends": 3.0,
        "gateway": 2.0,
        "canary-route": 1.0,
        "header-route": 1.0,
    }
