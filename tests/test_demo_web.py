"""The demo app the kind labs deploy: its Go tests, and the real binary over HTTP.

Docker cannot run here, so the image is not built; the binary the Dockerfile builds is, with the
same flags, and is driven like a kubelet would: probes, then SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kubelab import tools, wait
from kubelab.cluster.kind import DEMO_WEB_DIR

GO = tools.find("go")
pytestmark = pytest.mark.skipif(GO is None, reason="needs Go (as the sim build does)")


def go_env() -> dict[str, str]:
    """Return the environment for go commands: local toolchain, the usual build cache."""
    env = dict(os.environ) | {"GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    if "GOCACHE" not in env:
        cache = subprocess.run(
            [str(GO), "env", "GOCACHE"], capture_output=True, text=True, check=True, env=env
        ).stdout.strip()
        env["GOCACHE"] = cache
    return env


def test_go_unit_tests_pass() -> None:
    proc = subprocess.run(
        [str(GO), "test", "-count=1", "./..."],
        cwd=DEMO_WEB_DIR,
        env=go_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str] | None:
    """GET `url` and return (status, body), or None while nothing listens yet."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None


def test_binary_serves_probes_and_version_then_stops_on_sigterm(tmp_path: Path) -> None:
    binary = tmp_path / "demo-web"
    build = subprocess.run(
        [
            str(GO),
            "build",
            "-buildvcs=false",
            "-trimpath",
            "-ldflags",
            "-X main.version=v1",
            "-o",
            str(binary),
            ".",
        ],
        cwd=DEMO_WEB_DIR,
        env=go_env() | {"CGO_ENABLED": "0"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ) | {"PORT": str(port), "VERSION": "v2", "HOSTNAME": "demo-web-test"}
    proc = subprocess.Popen(
        [str(binary)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        ready = wait.until(
            lambda: get(f"{base}/healthz"),
            lambda r: r is not None or proc.poll() is not None,
            timeout=10,
            interval=0.05,
            what="demo-web listening",
        )
        assert proc.poll() is None, f"demo-web exited early: {proc.communicate()[1]}"
        assert ready == (200, "ok\n")
        assert get(f"{base}/livez") == (200, "ok\n")
        version = get(f"{base}/version")
        assert version is not None and version[0] == 200
        assert json.loads(version[1]) == {"version": "v2", "hostname": "demo-web-test"}
        # Under /api (what the Gateway canary lab routes) it names the version, header and body.
        with urllib.request.urlopen(f"{base}/api/orders/42", timeout=2) as resp:
            assert resp.headers["X-Demo-Version"] == "v2"
            assert json.loads(resp.read())["path"] == "/api/orders/42"

        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    log = stdout.splitlines()
    assert any(" GET /healthz 200 " in line for line in log), stdout
    assert any(" GET /version 200 " in line for line in log), stdout
    assert log[-1] == "demo-web stopped"
