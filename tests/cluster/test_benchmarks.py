"""Benchmarks run on a developer's machine: they must leave the developer's kubeconfig alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubelab import paths
from kubelab.cluster.sim import SimBackend
from tests.conftest import TEST_CLUSTER

pytestmark = pytest.mark.slow


def test_cluster_lifecycle_leaves_the_users_kubeconfig_alone(tmp_path: Path) -> None:
    name = f"{TEST_CLUSTER}-bench"
    kubeconfig = tmp_path / "home" / ".kube" / "config"
    kubeconfig.parent.mkdir(parents=True)
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    before = kubeconfig.read_bytes()
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBELAB_NO_KUBECONFIG")}
    env |= {"HOME": str(tmp_path / "home"), "KUBELAB_CACHE": str(paths.cache_home())}
    try:
        proc = subprocess.run(
            [sys.executable, "benchmarks/cluster_lifecycle.py", "--runs", "1", "--name", name],
            cwd=paths.REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        backend = SimBackend(name)
        if backend.exists():
            backend.down()
    assert proc.returncode == 0, proc.stderr
    assert "run 1: up" in proc.stdout
    assert "private memory of cluster processes, max:" in proc.stdout
    assert kubeconfig.read_bytes() == before
    # No backup either (kubectl's own discovery cache, ~/.kube/cache, may appear: not a config).
    assert not [p for p in kubeconfig.parent.iterdir() if p.name.startswith("config.")]
