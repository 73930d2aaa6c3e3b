"""Issue 16's whole learner path with the installed wheel, outside the checkout: `kubelab init`,
`kubelab start` (its own sim cluster, then JupyterLab on the workspace), no solution anywhere in
JupyterLab's file tree, `kubectl get nodes` in a new JupyterLab terminal and in a new shell, and
`kubelab cluster down` taking the context back out of the learner's kubeconfig.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.websocket import websocket_connect

from tests.installed_wheel import Installed, build_and_install

pytestmark = pytest.mark.slow
TOKEN = f"t{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    yield build_and_install(tmp_path_factory.mktemp("wheel"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """A running `kubelab start`: JupyterLab's REST API and terminals."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.port = port

    def call(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            self.base + path,
            headers={"Authorization": f"token {TOKEN}"},
            method=method,
            data=b"" if method == "POST" else None,
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def tree(self, path: str = "") -> list[str]:
        found = []
        for item in self.call(f"/api/contents/{path}")["content"]:
            found.append(item["path"])
            if item["type"] == "directory":
                found += self.tree(item["path"])
        return found

    def terminal(self, command: str, until: str, timeout: float = 60) -> str:
        name = self.call("/api/terminals", method="POST")["name"]
        url = f"ws://127.0.0.1:{self.port}/terminals/websocket/{name}?token={TOKEN}"

        async def talk() -> str:
            ws = await websocket_connect(url)
            ws.write_message(json.dumps(["stdin", command + "\r"]))
            out, end = "", time.monotonic() + timeout
            while until not in out and time.monotonic() < end:
                msg = await asyncio.wait_for(ws.read_message(), timeout)
                if msg is None:
                    break
                kind, *rest = json.loads(msg)
                out += rest[0] if kind == "stdout" else ""
            ws.close()
            return out

        return asyncio.run(talk())


def test_init_start_and_kubectl_from_the_installed_wheel(
    installed: Installed, tmp_path: Path
) -> None:
    home, cluster, port = tmp_path / "home", f"ws-{uuid.uuid4().hex[:6]}", _free_port()
    home.mkdir()
    env = installed.env(home, KUBELAB_CLUSTER=cluster, JUPYTER_TOKEN=TOKEN)
    env.pop("KUBELAB_NO_KUBECONFIG")  # a learner's default: the context goes into ~/.kube/config
    deps = str(Path(sys.executable).parent)  # the wheel's dependencies: jupyter, kubectl
    env["PATH"] += os.pathsep + deps
    kubelab = str(installed.bin / "kubelab")
    made = subprocess.run(
        [kubelab, "init", "k8s-course"], cwd=home, env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    log = (tmp_path / "start.log").open("w")
    start = [kubelab, "start", "k8s-course", "--backend", "sim", "--no-browser"]
    server = subprocess.Popen(
        [*start, "--port", str(port)],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so the test stops JupyterLab too, not only `kubelab start`
    )
    lab = Lab(port)
    try:
        deadline = time.monotonic() + 420
        while True:
            try:
                lab.call("/api/status")
                break
            except OSError:
                text = (tmp_path / "start.log").read_text()
                assert server.poll() is None and time.monotonic() < deadline, text[-2000:]
                time.sleep(2)
        files = lab.tree()
        assert "labs/02-deployment/starter" in files and "notebooks" in files, files
        assert not [f for f in files if "solution" in f.lower()], files
        # A new terminal in JupyterLab: kubectl from the install, pointed at the course cluster.
        out = lab.terminal("kubectl get nodes --no-headers | grep -c ' Ready '", until="3\r")
        assert "3\r" in out, out
        # A new shell outside JupyterLab, with only the learner's HOME: the `kubelab` context.
        shell = {"HOME": str(home), "PATH": f"{deps}:/usr/bin:/bin"}
        ctx = subprocess.run(
            ["kubectl", "config", "current-context"], env=shell, capture_output=True, text=True
        )
        assert ctx.stdout.strip() == cluster, ctx.stdout + ctx.stderr
        nodes = subprocess.run(
            ["kubectl", "get", "nodes", "--no-headers"], env=shell, capture_output=True, text=True
        )
        assert nodes.stdout.count(" Ready ") == 3, nodes.stdout + nodes.stderr
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)
        down = subprocess.run(
            [kubelab, "cluster", "down"], cwd=home, env=env, capture_output=True, text=True
        )
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"removed context {cluster!r}" in down.stdout, down.stdout
