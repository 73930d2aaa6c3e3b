"""nbgrader round trip of lab 06 on the sim cluster: full, zero and partial marks as they should be.

Each submission is the released notebook plus the learner's edited starter/ files; autograde
executes it against the test cluster in a namespace of its own (where the lab's set-up creates
the ConfigMap and Secrets), so the Pod Security label goes on that namespace too.
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

LAB = labs.find("06-rbac-policy")
ENFORCE = (
    "!kubectl label ns {grader.namespace} pod-security.kubernetes.io/enforce=restricted"
    " --overwrite\n"
    'grader.apply(f"{MANIFESTS}")'
)


@pytest.mark.slow
def test_autograde_gives_full_zero_and_partial_marks(
    tmp_path: Path, kubeconfig: Path, kubectl: Kubectl
) -> None:
    course = make_course(tmp_path / "course")
    nbgrader(course, "generate_assignment", LAB.id, "--force")

    solved = submit(course, LAB.id, "solved")  # every manifest fixed, the namespace labelled
    shutil.rmtree(solved / "starter")
    shutil.copytree(LAB.directory / "solution", solved / "starter")
    answer(solved / "lab.ipynb", "enforce", ENFORCE)

    submit(course, LAB.id, "untouched")  # the release as handed out

    # The solution, except: the article's Role (lists secrets) and a quota without memory;
    # Pod Security left undone.
    half = submit(course, LAB.id, "half")
    shutil.rmtree(half / "starter")
    shutil.copytree(LAB.directory / "solution", half / "starter")
    rbac = list(yaml.safe_load_all((half / "starter/rbac.yaml").read_text()))
    role = next(d for d in rbac if d["kind"] == "Role")
    role["rules"] = [
        {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "list"]}
    ]
    (half / "starter/rbac.yaml").write_text(yaml.safe_dump_all(rbac))
    quota = yaml.safe_load((half / "starter/quota.yaml").read_text())
    del quota["spec"]["hard"]["requests.memory"]
    (half / "starter/quota.yaml").write_text(yaml.safe_dump(quota))

    namespaces = []
    found = {}
    try:
        for student in ("solved", "untouched", "half"):
            ns = f"nbg6-{student}-{uuid.uuid4().hex[:4]}"
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
        "service-account": 2.0,
        "least-privilege": 3.0,  # 3 of 4 requirements: it may also list and watch secrets
        "default-deny": 2.0,
        "allow-rules": 4.0,
        "limits": 2.0,
        "quota": 1.0,  # 1 of 3: requests.memory missing, an oversized-memory pod admitted
        "pod-security": 0.0,
    }
