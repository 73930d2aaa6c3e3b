"""Every lab manifest (starter and solution, each Kustomize overlay) passes a server-side dry run
with strict field validation, so what learners start from and aim at is valid Kubernetes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelab import apply, labs
from tests.conftest import Kubectl

FOLDERS = sorted(
    p
    for lab in labs.all_labs()
    for kind in ("starter", "solution")
    for p in (lab.directory / kind).rglob("*")
    if apply.is_kustomization(p)
)


@pytest.mark.parametrize(
    "folder", FOLDERS, ids=[str(p.relative_to(labs.paths.LABS_DIR)) for p in FOLDERS]
)
def test_kustomization_passes_a_server_side_dry_run(
    folder: Path, kubectl: Kubectl, namespace: str
) -> None:
    proc = kubectl(
        "apply",
        "-k",
        str(folder),
        "-n",
        namespace,
        "--dry-run=server",
        "--validate=strict",
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
