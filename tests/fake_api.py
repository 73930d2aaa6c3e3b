"""A tiny stand-in API server for CLI tests that need answers, not a cluster.

It serves fixed JSON objects by REST path over plain HTTP (lists are empty, anything else is a
404 Status), and writes a kubeconfig pointing at itself, so `kubelab check` runs offline.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml


def kubeconfig_for(server: str, target: Path) -> Path:
    """Write a token kubeconfig for `server` to `target` and return it."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "learner", "user": {"token": "t"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "learner"}}],
        "current-context": "fake",
    }
    target.write_text(yaml.safe_dump(config))
    return target


def _is_collection(path: str) -> bool:
    parts = path.strip("/").split("/")
    rest = parts[2:] if parts[0] == "api" else parts[3:]  # after /api/v1 or /apis/GROUP/VERSION
    return len(rest) % 2 == 1  # plural[/name[/plural...]]


@contextmanager
def serve(objects: dict[str, dict[str, Any]]) -> Iterator[str]:
    """Serve `objects` (REST path -> JSON body) and yield the server's URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path in objects:
                self._send(200, objects[path])
            elif _is_collection(path):
                self._send(200, {"kind": "List", "items": []})  # a collection: empty
            else:
                self._send(404, {"kind": "Status", "reason": "NotFound", "message": "not found"})

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
