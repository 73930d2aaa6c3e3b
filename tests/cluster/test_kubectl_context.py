"""After `kubelab cluster up`, kubectl works in a new shell as after `kind create cluster`: the
learner's own kubeconfig has the cluster's context, unless they opted out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubelab import paths, tools
from kubelab.cluster import user_kubeconfig
from kubelab.cluster.sim import SimBackend


def _env(home: Path, **extra: str) -> dict[str, str]:
    # A HOME of the test's own, but the real cache: that is where the session's cluster lives.
    env = dict(os.environ, HOME=str(home), KUBELAB_CACHE=str(paths.cache_home()))
    env.pop("KUBECONFIG", None)  # a new shell: nothing exported
    env.pop(user_kubeconfig.OPT_OUT_ENV, None)
    env.update(extra)
    return env


def _up(sim: SimBackend, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "kubelab", "cluster", "--name", sim.cluster, "up", *flags]
    argv += ["--backend", "sim"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_kubectl_reaches_the_cluster_in_a_new_shell(sim: SimBackend, tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    up = _up(sim, env)
    assert up.returncode == 0, up.stderr
    config = tmp_path / "home" / ".kube" / "config"
    assert f"context {sim.cluster!r} in {config}" in up.stdout
    try:
        kubectl = tools.require("kubectl", "for the test")
        nodes = subprocess.run(
            [kubectl, "get", "nodes", "-o", "name"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert nodes.returncode == 0, nodes.stderr
        # the sim's three nodes (other tests on this worker may have added a node of their own)
        assert {f"node/node-00000{i}" for i in range(3)} <= set(nodes.stdout.split()), nodes.stdout
        assert yaml.safe_load(config.read_text())["current-context"] == sim.cluster
    finally:
        # what `cluster down` does before stopping the cluster (the session's cluster stays up)
        removed = user_kubeconfig.remove(sim.cluster)
    assert removed is not None and removed.file == config
    left = yaml.safe_load(config.read_text())
    assert not left.get("contexts") and not left.get("current-context")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_opt_out_leaves_the_kubeconfig_alone(sim: SimBackend, tmp_path: Path, how: str) -> None:
    home = tmp_path / "home"
    if how == "flag":
        up = _up(sim, _env(home), "--no-kubeconfig")
    else:
        up = _up(sim, _env(home, **{user_kubeconfig.OPT_OUT_ENV: "1"}))
    assert up.returncode == 0, up.stderr
    assert not (home / ".kube").exists()
    assert f"export KUBECONFIG={sim.kubeconfig_path()}" in up.stdout
