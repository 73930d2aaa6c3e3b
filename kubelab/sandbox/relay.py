"""The sandbox's only ways out: the API server and the Gateway, relayed over Unix sockets.

`pump.py` is the inner half (run inside the sandbox); `_ApiRelay` the outer half, here.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

from kubelab.errors import KubelabError
from kubelab.i18n import _
from kubelab.sandbox.pump import pump

SOCKET_DIR = "/run/kubelab"
_RELAY_SCRIPT = Path(__file__).with_name("pump.py")
_MAX_CONNECTIONS = 64


def inside_url(gateway: str) -> str:
    """Where a payload reaches the relayed `gateway` from inside the sandbox."""
    return f"http://127.0.0.1:{_gateway_address(gateway)[1]}"


def _gateway_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise KubelabError(f"the Gateway address must be an http:// URL, not {url!r}")
    try:
        return parts.hostname, parts.port or 80
    except ValueError as err:
        raise KubelabError(f"cannot read the Gateway address {url!r}: {err}") from err


def _api_address(server: str) -> tuple[str, int]:
    """Return (host, port) of an API server URL or host:port, which must be on this machine."""
    parts = urlsplit(server if "://" in server else f"https://{server}")
    try:
        port = parts.port or (80 if parts.scheme == "http" else 443)
    except ValueError as err:
        raise KubelabError(f"cannot read the API server address {server!r}: {err}") from err
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise KubelabError(
            _(
                "the grading sandbox can only reach an API server on 127.0.0.1, not {server}:"
                " grade against the local sim cluster"
            ).format(server=server)
        )
    return parts.hostname, port


class _ApiRelay:
    """The outer half of the API relay: each connection to a Unix socket goes on to host:port."""

    def __init__(self, path: Path, host: str, port: int) -> None:
        self._target = (host, port)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(_MAX_CONNECTIONS)
        self._server.settimeout(0.2)  # so close() is noticed without a wake-up trick
        self._open: set[socket.socket] = set()
        self._active = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="kubelab-relay")
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                full = self._active >= _MAX_CONNECTIONS
                self._active += not full
            if full:  # a submission opening connections without end gets no more
                conn.close()
                continue
            threading.Thread(target=self._forward, args=(conn,), daemon=True).start()

    def _forward(self, conn: socket.socket) -> None:
        conn.settimeout(None)
        try:
            upstream = socket.create_connection(self._target, timeout=10)
        except OSError:
            conn.close()
        else:
            upstream.settimeout(None)
            with self._lock:
                self._open |= {conn, upstream}
            pump(conn, upstream)
            with self._lock:
                self._open -= {conn, upstream}
        finally:
            with self._lock:
                self._active -= 1

    def close(self) -> None:
        """Stop accepting and cut every open connection."""
        self._stop.set()
        self._thread.join(timeout=1)
        self._server.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


# --- cgroups --------------------------------------------------------------------------------
