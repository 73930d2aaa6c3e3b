"""Binder's steps in a clean virtual environment: install, postBuild, start, then use the course.

It does what repo2docker does, minus Docker: ``pip install -r binder/requirements.txt`` from the
repository root into a new venv, ``binder/postBuild`` (which finds the binaries already in the
cache), then ``binder/start jupyter lab ...``; and checks that a 3-node sim cluster, JupyterLab
and ``kubelab check`` all work from that venv. The cluster is its own, named after the test
cluster, and is deleted at the end. Also: postBuild into an empty cache, where the release
downloads fail (no internet here) and the Go build takes over. The pip install takes about a
minute with pip's cache warm.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubelab import paths
from kubelab.cluster import sim_build
from kubelab.wait import until
from tests.conftest import TEST_CLUSTER

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CLUSTER = f"{TEST_CLUSTER}-binder"
BINDER = paths.REPO_ROOT / "binder"


@dataclass
class Venv:
    """A clean venv with the repository installed as binder/requirements.txt says."""

    bin: Path
    install_seconds: float

    def env(self, **extra: str) -> dict[str, str]:
        """The environment repo2docker gives: the venv first on PATH, our cluster's name."""
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "KUBECONFIG")}
        env["PATH"] = os.pathsep.join([str(self.bin), env.get("PATH", "")])
        env["KUBELAB_CLUSTER"] = CLUSTER
        # `cluster up` would add a context to the developer's own ~/.kube/config (HOME is theirs:
        # the sim build is cached under it); tests/test_user_kubeconfig.py covers that part.
        env["KUBELAB_NO_KUBECONFIG"] = "1"
        return env | extra


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    root = tmp_path_factory.mktemp("binder") / "venv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", root], check=True, timeout=120)
    pip = [root / "bin" / "python", "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "install", "-r", "binder/requirements.txt"],
        cwd=paths.REPO_ROOT,  # as repo2docker does: `.` in the file is the repository root
        check=True,
        timeout=1200,
    )
    return Venv(root / "bin", time.monotonic() - started)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(port: int, token: str) -> dict[str, object] | None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return dict(json.load(resp))
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def test_requirements_install_kubelab_from_this_checkout(venv: Venv) -> None:
    print(f"clean venv + pip install -r binder/requirements.txt: {venv.install_seconds:.0f} s")
    proc = subprocess.run(
        [venv.bin / "python", "-c", "import kubelab.paths as p; print(p.REPO_ROOT)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(proc.stdout.strip()) == paths.REPO_ROOT  # editable: sim/, labs/ are found
    for tool in ("kubelab", "kubectl", "jupyter", "jupyter-lab"):
        assert (venv.bin / tool).is_file(), tool


def test_post_build_finds_the_cached_binaries(venv: Venv) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [BINDER / "postBuild"],
        env=venv.env(),
        capture_output=True,
        text=True,
        timeout=1200,
        cwd="/",
    )
    seconds = time.monotonic() - started
    print(f"binder/postBuild with the cache present: {seconds:.1f} s")
    assert proc.returncode == 0, proc.stderr
    assert f"sim binaries ready in {sim_build.build_dir() / 'bin'}" in proc.stdout
    assert seconds < 60  # nothing downloaded or built


def test_post_build_into_an_empty_cache_downloads_or_falls_back_to_go(
    venv: Venv, tmp_path: Path
) -> None:
    # Where release downloads are unreachable (this machine), the Go build must take over; with
    # the internet, the download must fill the cache. Either way postBuild succeeds.
    cache = tmp_path / "cache"
    proc = subprocess.run(
        [BINDER / "postBuild"],
        env=venv.env(KUBELAB_CACHE=str(cache), KUBELAB_SIM_SOURCE="auto"),  # as on Binder
        capture_output=True,
        text=True,
        timeout=1800,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr
    out = cache / "sim" / sim_build.build_key()
    assert sim_build.is_complete(out)
    stamp = json.loads((out / "versions.json").read_text())
    if stamp.get("source") != "release":
        assert "building them with Go instead" in proc.stderr, proc.stderr
    shutil.rmtree(cache)  # about 500 MB


@pytest.fixture
def started(venv: Venv, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, str, Path]]:
    """`binder/start jupyter lab ...` running; yields the process, port, token and the log."""
    port, token, log = _free_port(), "binder-test-token", tmp_path / "kubelab-cluster.log"
    subprocess.run(
        [venv.bin / "kubelab", "cluster", "--name", CLUSTER, "down"],
        env=venv.env(),
        capture_output=True,
        check=False,
    )
    argv = [
        BINDER / "start",
        venv.bin / "jupyter",
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.token={token}",
        *(["--allow-root"] if os.getuid() == 0 else []),  # the test machine runs as root
    ]
    env = venv.env(
        KUBELAB_START_LOG=str(log),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        KUBELAB_WORKSPACE=str(tmp_path / "course"),  # start makes it (postBuild would have)
        KUBELAB_DATA=str(tmp_path / "data"),
    )
    with (tmp_path / "server.out").open("w") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
    try:
        yield proc, port, token, log
    finally:
        with contextlib.suppress(ProcessLookupError):  # the server may have exited already
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        down = subprocess.run(
            [venv.bin / "kubelab", "cluster", "--name", CLUSTER, "down"],
            env=venv.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert down.returncode == 0, down.stderr


def test_start_brings_up_the_cluster_then_jupyterlab(
    venv: Venv, started: tuple[subprocess.Popen[str], int, str, Path]
) -> None:
    proc, port, token, log = started
    t0 = time.monotonic()
    status = until(
        lambda: _status(port, token) if proc.poll() is None else {"exited": proc.returncode},
        bool,
        timeout=300,
        what="JupyterLab /api/status",
    )
    print(f"binder/start to JupyterLab answering: {time.monotonic() - t0:.1f} s")
    assert "exited" not in status, log.read_text()
    assert "started" in status  # JupyterLab's status document, behind the token
    text = log.read_text()
    assert f"cluster '{CLUSTER}' is up" in text, text

    # The server (bash exec'd into it, so the same pid) got KUBECONFIG, as the log says.
    server_env = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{proc.pid}/environ").read_text().split("\0")
        if "=" in item
    )
    kubeconfig = server_env["KUBECONFIG"]
    assert f"KUBECONFIG={kubeconfig}" in text
    # ... and runs in the learner's workspace, not the repository with its solutions.
    workspace = Path(os.readlink(f"/proc/{proc.pid}/cwd"))
    assert f"JupyterLab opens the workspace {workspace}" in text
    assert (workspace / ".kubelab-workspace").is_file()
    assert server_env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0] == str(workspace / ".jupyter")
    assert server_env["KUBELAB_CLUSTER"] == CLUSTER

    nodes = subprocess.run(
        [venv.bin / "kubectl", "--kubeconfig", kubeconfig, "get", "nodes", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    items = json.loads(nodes.stdout)["items"]
    ready = [
        n
        for n in items
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    ]
    assert (len(items), len(ready)) == (3, 3)

    # The learner's side: `kubelab check` from the venv grades what is in this cluster: first
    # the lab's namespace is missing, then (once created here) the Deployment in it is.
    def check() -> list[str]:
        proc = subprocess.run(
            [venv.bin / "kubelab", "check", "02", "--json"],
            env=venv.env(KUBECONFIG=kubeconfig),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 1, proc.stderr  # 1: checks fail on an untouched cluster
        report = json.loads(proc.stdout)
        assert report["lab"] == "02-deployment"
        return [str(c["message"]) for c in report["checks"]]

    assert set(check()) == {"namespace lab-02 does not exist"}
    subprocess.run(
        [venv.bin / "kubectl", "--kubeconfig", kubeconfig, "create", "namespace", "lab-02"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert "Deployment demo-web not found in namespace lab-02" in check()
