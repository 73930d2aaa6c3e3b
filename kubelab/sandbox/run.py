"""Start a payload in a fresh sandbox and collect how it ended."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from kubelab import tools
from kubelab.errors import KubelabError
from kubelab.i18n import _
from kubelab.sandbox.cgroups import _CGROUP_PREFIX, _JOIN_CGROUPS, _JOIN_FAILED, _Cgroup
from kubelab.sandbox.filesystem import HOME, WORK, _bwrap, _filesystem, _optional, _system_binds
from kubelab.sandbox.limits import DEFAULT_LIMITS, Limits, Outcome
from kubelab.sandbox.relay import (
    _RELAY_SCRIPT,
    SOCKET_DIR,
    _api_address,
    _ApiRelay,
    _gateway_address,
)

_TAIL_BYTES = 64 * 1024


_available = False


def check_available() -> None:
    """Raise a one-line KubelabError saying how to fix it if sandboxes cannot run here."""
    global _available
    if _available:
        return
    namespaces = ["--unshare-all", "--unshare-user", *_optional("--disable-userns")]
    probe = subprocess.run(
        [_bwrap(), *namespaces, *_system_binds(), "true"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if probe.returncode != 0:
        raise KubelabError(
            _(
                "bubblewrap cannot create a sandbox here ({reason}): allow unprivileged user"
                " namespaces (`sysctl kernel.unprivileged_userns_clone=1`; on Ubuntu >= 23.10"
                " install bubblewrap's AppArmor profile or set"
                " `kernel.apparmor_restrict_unprivileged_userns=0`)"
            ).format(reason=tools.last_line(probe.stderr))
        )
    if os.geteuid() == 0:
        group = _Cgroup.create(DEFAULT_LIMITS)
        if group is None:
            raise KubelabError(
                _(
                    "as root, grading needs a writable cgroup to cap a submission's processes"
                    " (root ignores RLIMIT_NPROC): run it as a normal user, or with"
                    " /sys/fs/cgroup writable"
                )
            )
        group.destroy()
    _available = True


def base_env(**extra: str) -> dict[str, str]:
    """Return a minimal environment for a payload (this venv's bin first on PATH), plus `extra`."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": HOME,
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
    }
    env.update(extra)
    return env


def run(
    argv: Sequence[str],
    *,
    workdir: Path,
    api_server: str | None,
    env: Mapping[str, str],
    ro_files: Mapping[str, Path] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    gateway: str | None = None,
) -> Outcome:
    """Run `argv` in a fresh sandbox and return how it ended (see the module docstring).

    `workdir` (a host directory) is `WORK` inside and the cwd; `api_server` (the kubeconfig's
    server URL, or host:port, on 127.0.0.1/localhost) is the only network address the payload can
    reach; `env` is its whole environment (start from `base_env`); `ro_files` binds host files
    read-only at the given sandbox paths (best under `HOME`); `gateway` (an http URL) is relayed
    to `inside_url(gateway)`.
    """
    if not argv:
        raise KubelabError("the sandbox needs a command to run")
    if not workdir.is_dir():
        raise KubelabError(f"sandbox work directory {workdir} does not exist")
    for source in (ro_files or {}).values():
        if not source.exists():
            raise KubelabError(f"{source}, to be shown in the sandbox, does not exist")
    address = _api_address(api_server) if api_server else None
    relayed = _gateway_address(gateway) if gateway else None
    if address and relayed and address[1] == relayed[1]:
        raise KubelabError(f"the Gateway ({gateway}) and the API server share port {address[1]}")
    check_available()
    with tempfile.TemporaryDirectory(prefix=_CGROUP_PREFIX) as scratch:
        return _run(
            list(argv), workdir, address, env, ro_files or {}, limits, Path(scratch), relayed
        )


def _run(
    argv: list[str],
    workdir: Path,
    address: tuple[str, int] | None,
    env: Mapping[str, str],
    ro_files: Mapping[str, Path],
    limits: Limits,
    scratch: Path,
    gateway: tuple[str, int] | None = None,
) -> Outcome:
    (scratch / "empty").mkdir(mode=0o555)
    (scratch / "empty-file").touch(mode=0o444)
    helper = [sys.executable, "-I", "-S", str(_RELAY_SCRIPT)]
    for name, value in (
        ("as", limits.memory_bytes),
        ("cpu", limits.cpu_seconds),
        ("nproc", limits.processes),
        ("fsize", limits.file_bytes),
        ("core", 0),
    ):
        helper += ["--rlimit", f"{name}={value}"]
    with contextlib.ExitStack() as cleanup:
        network: list[str] = []
        targets = {"api": address, "gateway": gateway}
        for name, target in targets.items():
            if target is None:
                continue
            if not network:
                (scratch / "run").mkdir(mode=0o700)
                network = ["--ro-bind", str(scratch / "run"), SOCKET_DIR]
            relay = _ApiRelay(scratch / "run" / f"{name}.sock", *target)
            cleanup.callback(relay.close)
            helper += ["--listen", f"127.0.0.1:{target[1]}", "--unix", f"{SOCKET_DIR}/{name}.sock"]
        sandbox = [
            _bwrap(),
            "--unshare-all",
            "--unshare-user",  # --unshare-all only tries it, and skips it as root
            *_optional("--disable-userns"),  # bubblewrap >= 0.8
            "--cap-drop",
            "ALL",
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "learner",
            *_filesystem(workdir, ro_files, limits, scratch),
            *network,
            "--remount-ro",
            "/",
            "--chdir",
            WORK,
            "--clearenv",
            *[arg for name, value in env.items() for arg in ("--setenv", name, value)],
        ]
        group = _Cgroup.create(limits)
        if group is None and os.geteuid() == 0:
            raise KubelabError("could not create a cgroup for the sandbox (see check_available)")
        join: list[str] = []
        if group is not None:
            cleanup.callback(group.destroy)
            procs = [str(path) for path in group.procs_files]
            join = ["/bin/sh", "-c", _JOIN_CGROUPS, "sh", *procs, "--"]
        ready_read, ready_write = os.pipe()
        ready = cleanup.enter_context(os.fdopen(ready_read, "rb"))
        helper += ["--ready-fd", str(ready_write), "--"]
        command = [*join, *sandbox, *helper, *argv]
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={"PATH": os.defpath},
                pass_fds=(ready_write,),
            )
        finally:
            os.close(ready_write)
        assert proc.stdout is not None and proc.stderr is not None
        stdout, stderr = bytearray(), bytearray()
        readers = [_drain(proc.stdout, stdout), _drain(proc.stderr, stderr)]
        # A timer, not wait(timeout=...), which polls with sleeps of up to 50 ms.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(limits.wall_seconds, expire)
        timer.daemon = True
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:  # interrupted: the whole sandbox goes
                proc.kill()
                proc.wait()
            if group is not None:
                group.destroy()
            for reader in readers:
                reader.join(timeout=5)
        seconds = time.monotonic() - start
        started = ready.read(1) == b"1"
        timed_out = expired.is_set()
    err_text = bytes(stderr[-_TAIL_BYTES:]).decode("utf-8", "replace")
    if not started and not timed_out:
        if proc.returncode == 125 and _JOIN_FAILED in err_text:
            raise KubelabError(f"could not put the sandbox in its cgroup: {err_text.strip()}")
        raise KubelabError(f"the sandbox did not start: {tools.last_line(err_text)}")
    return Outcome(
        returncode=None if timed_out else proc.returncode,
        timed_out=timed_out,
        stdout=bytes(stdout[-_TAIL_BYTES:]).decode("utf-8", "replace"),
        stderr=err_text,
        seconds=seconds,
    )


def _drain(stream: IO[bytes], keep: bytearray) -> threading.Thread:
    """Read `stream` to its end in a thread, keeping only its last bytes in `keep`."""

    def read() -> None:
        with stream:
            while chunk := os.read(stream.fileno(), 65536):
                keep.extend(chunk)
                if len(keep) > 2 * _TAIL_BYTES:
                    del keep[:-_TAIL_BYTES]

    thread = threading.Thread(target=read, daemon=True, name="kubelab-sandbox-output")
    thread.start()
    return thread
