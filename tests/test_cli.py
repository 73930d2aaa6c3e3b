"""`kubelab` reports every user error as one line with exit code 2, and never a traceback."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

KUBELAB = [sys.executable, "-m", "kubelab"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the kubelab CLI as a user would."""
    return subprocess.run(
        [*KUBELAB, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """The command failed with code 2 and one line naming the problem."""
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_unknown_backend() -> None:
    assert_one_line_error(run("cluster", "up", "--backend", "minikube"), "invalid choice")


def test_bad_node_count() -> None:
    assert_one_line_error(run("cluster", "up", "--nodes", "0"), "at least 1")


def test_down_with_nothing_up() -> None:
    assert_one_line_error(run("cluster", "--name", "never-started", "down"), "no cluster")


def test_kubeconfig_with_nothing_up() -> None:
    assert_one_line_error(run("cluster", "--name", "never-started", "env"), "no cluster")


def test_status_with_nothing_up() -> None:
    proc = run("cluster", "--name", "never-started", "status")
    assert_one_line_error(proc, "kubelab cluster up")


def _path_without(*names: str, tmp: Path, extra: dict[str, str] | None = None) -> str:
    """A PATH with this Python's bin plus stub programs, hiding the named programs."""
    stubs = tmp / "stubs"
    stubs.mkdir(exist_ok=True)
    for name, script in (extra or {}).items():
        f = stubs / name
        f.write_text(f"#!/bin/sh\n{script}\n")
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    keep = [str(stubs), str(Path(sys.executable).parent), "/usr/bin", "/bin"]
    hidden = [d for d in keep if any((Path(d) / n).exists() for n in names) and d != str(stubs)]
    return os.pathsep.join(d for d in keep if d not in hidden)


def test_kind_requested_without_the_build_tools(tmp_path: Path) -> None:
    # Docker answers (a stub), but the kind images are not built and Go is missing.
    stubs = {"docker": "echo 20.10.24"}
    env = dict(os.environ, PATH=_path_without("go", "docker", tmp=tmp_path, extra=stubs))
    env["KUBELAB_CACHE"] = str(tmp_path / "cache")
    proc = run("cluster", "--name", "goless-kind", "up", "--backend", "kind", env=env)
    assert_one_line_error(proc, "`go` is needed to build the kind images", "--backend sim")


def test_kind_requested_without_a_docker_daemon(tmp_path: Path) -> None:
    # kind is "installed" (a stub), but docker answers with an error, as with a stopped daemon.
    stubs = {"kind": "exit 0", "docker": "echo 'Cannot connect to the Docker daemon' >&2; exit 1"}
    env = dict(os.environ, PATH=_path_without("kind", "docker", tmp=tmp_path, extra=stubs))
    env["KUBELAB_CACHE"] = str(tmp_path / "cache")
    proc = run("cluster", "--name", "dockerless", "up", "--backend", "kind", env=env)
    assert_one_line_error(proc, "Docker daemon")


def test_go_missing_when_binaries_must_be_built(tmp_path: Path) -> None:
    # An empty cache means a build is needed; hide go.
    env = dict(os.environ, PATH=_path_without("go", tmp=tmp_path))
    env["KUBELAB_CACHE"] = str(tmp_path / "cache")
    proc = run("cluster", "--name", "goless", "up", "--backend", "sim", env=env)
    assert_one_line_error(proc, "`go` is needed")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.cluster
def test_api_port_in_use(busy_port: int) -> None:
    proc = run("cluster", "--name", "busy", "up", "--backend", "sim", "--api-port", str(busy_port))
    assert_one_line_error(proc, f"port {busy_port} is already in use")


def test_start_with_jupyter_port_in_use(busy_port: int) -> None:
    proc = run("start", "--backend", "sim", "--port", str(busy_port), "--no-browser")
    assert_one_line_error(proc, f"port {busy_port} is already in use")
