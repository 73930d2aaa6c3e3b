"""`kubelab start` brings up the cluster and serves JupyterLab on the learner's workspace."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from kubelab import paths
from kubelab.cluster import user_kubeconfig
from kubelab.cluster.sim import SimBackend
from kubelab.wait import until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api_version(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as resp:
            return str(json.load(resp)["version"])
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _listing(port: int, folder: str, runtime: Path) -> list[str]:
    # The server's token, from the file it writes into its runtime folder.
    token = json.loads(next(runtime.glob("jpserver-*.json")).read_text())["token"]
    url = f"http://127.0.0.1:{port}/api/contents/{folder}?token={token}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return sorted(item["name"] for item in json.load(resp)["content"])


def test_start_serves_the_workspace_with_the_cluster_up(sim: SimBackend, tmp_path: Path) -> None:
    port = _free_port()
    workspace = tmp_path / "k8s-course"
    # Reuse the test session's cluster: `start` must find it running and not start another.
    env = dict(
        os.environ,
        KUBELAB_CLUSTER=sim.cluster,
        JUPYTER_RUNTIME_DIR=str(tmp_path),
        KUBELAB_DATA=str(tmp_path / "data"),
        HOME=str(tmp_path / "home"),  # `cluster up` writes a context into ~/.kube/config
        KUBELAB_CACHE=str(paths.cache_home()),  # where the session's cluster lives
    )
    env.pop("KUBECONFIG", None)
    made = subprocess.run(
        [sys.executable, "-m", "kubelab", "init", str(workspace)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubelab",
            "start",
            "--backend",
            "sim",
            "--no-browser",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        version = until(lambda: _api_version(port), bool, timeout=90, what="JupyterLab /api")
        assert version
        # `start` with no folder opens the workspace `init` made: the learner's files, no answers
        assert _listing(port, "", tmp_path) == ["docs", "labs", "notebooks"]
        assert "solution" not in _listing(port, "labs/02-deployment", tmp_path)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    assert f"http://127.0.0.1:{port}/lab" in out
    assert "3/3 Ready" in out
    assert sim.healthy(), "stopping JupyterLab must leave the cluster running"
    assert user_kubeconfig.remove(sim.cluster) is not None  # `start` added the context (as `up`)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubelab", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_status_kubeconfig_and_env_describe_the_running_cluster(sim: SimBackend) -> None:
    status = _cli("cluster", "--name", sim.cluster, "status")
    assert status.returncode == 0, status.stderr
    assert "running" in status.stdout and "3/3 Ready" in status.stdout
    assert "metrics-server" in status.stdout
    path = _cli("cluster", "--name", sim.cluster, "kubeconfig")
    assert path.stdout.strip() == str(sim.kubeconfig_path())
    env = _cli("cluster", "--name", sim.cluster, "env")
    assert env.stdout.strip() == f"export KUBECONFIG={sim.kubeconfig_path()}"
