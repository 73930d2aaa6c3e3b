"""The first process in a grading sandbox: it applies the limits, starts the relay, runs argv.

`kubelab.sandbox` starts it inside bubblewrap as a plain script (``python -I -S
.../pump.py``: no site-packages, stdlib only, so it starts in about 15 ms)::

    pump.py [--rlimit NAME=VALUE]... [--listen HOST:PORT --unix SOCKET]... [--ready-fd FD]
                     -- ARGV...

It lowers the given resource limits (``as``, ``cpu``, ``nproc``, ``fsize``, ``core``; the payload
cannot raise them again), and with ``--listen`` it listens on HOST:PORT of the sandbox's own
loopback and forwards every connection to the Unix socket SOCKET, behind which the calling process
connects it to the real API server (each --listen/--unix pair is one such relay: the API server,
and on kind the Gateway). The relay runs as a detached grandchild (reaped by bubblewrap's
pid 1, so the payload never sees an unexpected child), and this process then becomes ARGV itself:
its exit code is the payload's, and when it exits bubblewrap ends the whole sandbox, relay included.
Just before that it writes one byte to FD (then closes it), telling the caller the sandbox did
start: a failure before that is the sandbox's, not the payload's.

`pump` is shared with the outer half of the relay in `kubelab.sandbox`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import socket

_RLIMITS = {"as": "RLIMIT_AS", "cpu": "RLIMIT_CPU", "nproc": "RLIMIT_NPROC"}
_RLIMITS |= {"fsize": "RLIMIT_FSIZE", "core": "RLIMIT_CORE"}


def pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways between two connected sockets until both directions end; close both.

    One thread per direction, each with blocking sends: a single loop that blocks sending one way
    while the peer blocks sending the other way could deadlock.
    """
    import threading

    back = threading.Thread(target=_copy, args=(b, a), daemon=True)
    back.start()
    _copy(a, b)
    back.join()
    a.close()
    b.close()


def _copy(src: socket.socket, dst: socket.socket) -> None:
    import socket

    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:  # reset, or closed by the other direction or by the relay's shutdown
        pass
    for sock, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
        with contextlib.suppress(OSError):
            sock.shutdown(how)


def _serve(listener: socket.socket, unix_path: str) -> NoReturn:
    """Forward each connection accepted on `listener` to the Unix socket `unix_path`, forever."""
    import socket
    import threading

    while True:
        conn, _ = listener.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(unix_path)
        except OSError:
            conn.close()
            upstream.close()
            continue
        threading.Thread(target=pump, args=(conn, upstream), daemon=True).start()


def _start_relay(listen: str, unix_path: str, ready_fd: int | None) -> None:
    """Listen on `listen` (HOST:PORT) now, and serve it from a detached grandchild process."""
    import socket

    host, _, port = listen.rpartition(":")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(64)
    child = os.fork()
    if child == 0:
        if os.fork() == 0:  # the grandchild is reparented to bubblewrap's pid 1, which reaps it
            os.setsid()
            if ready_fd is not None:
                os.close(ready_fd)
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            try:
                _serve(listener, unix_path)
            finally:
                os._exit(1)
        os._exit(0)
    os.waitpid(child, 0)
    listener.close()  # the payload must not hold the listening socket


def main(argv: list[str]) -> NoReturn:
    """Apply limits, start the relay if asked, then exec the payload (exit 127 if it cannot)."""
    import resource

    if "--" not in argv:
        sys.exit("usage: pump.py [--rlimit N=V]... [--listen H:P --unix S]... -- ARGV")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    listen: str | None = None
    relays: list[tuple[str, str]] = []  # (HOST:PORT inside, the Unix socket it goes to)
    ready_fd: int | None = None
    while options:
        flag, value, *options = options
        if flag == "--rlimit":
            name, _, number = value.partition("=")
            limit = getattr(resource, _RLIMITS[name])
            resource.setrlimit(limit, (int(number), int(number)))
        elif flag == "--listen":
            listen = value
        elif flag == "--unix" and listen:
            relays.append((listen, value))
            listen = None
        elif flag == "--ready-fd":
            ready_fd = int(value)
        else:
            sys.exit(f"pump.py: unknown option {flag}")
    for address, unix_path in relays:
        _start_relay(address, unix_path, ready_fd)
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    # Python ignores these two; the payload must get the usual defaults.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    try:
        os.execvp(command[0], command)
    except OSError as err:
        print(f"kubelab sandbox: cannot run {command[0]}: {err.strerror}", file=sys.stderr)
        os._exit(127)


if __name__ == "__main__":
    main(sys.argv[1:])
