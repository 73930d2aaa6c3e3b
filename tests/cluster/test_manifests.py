"""Every lab manifest (starter and solution, each Kustomize folder) passes a server-side dry run
with strict field validation, so what learners start from and aim at is valid Kubernetes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from kubelab import api, apply, lab_namespaces, labs
from tests.conftest import Kubectl

CASES = [
    (lab, p)
    for lab in labs.all_labs()
    for kind in ("starter", "solution")
    for p in sorted([lab.directory / kind, *(lab.directory / kind).rglob("*")])
    if apply.is_kustomization(p)
]


@pytest.mark.parametrize(
    ("lab", "folder"), CASES, ids=[str(p.relative_to(labs.paths.LABS_DIR)) for _, p in CASES]
)
def test_kustomization_passes_a_server_side_dry_run(
    lab: labs.Lab, folder: Path, kubectl: Kubectl, client: api.Api
) -> None:
    namespace = f"t-dry-{uuid.uuid4().hex[:6]}"
    lab_namespaces.ensure(client, lab, namespace)  # with the lab's set-up, as learners get it
    try:
        proc = kubectl(
            "apply", "-k", str(folder), "-n", namespace, "--dry-run=server", "--validate=strict",
            check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
