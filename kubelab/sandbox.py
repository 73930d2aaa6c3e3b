"""Run untrusted code (a learner's notebook, a fresh `kubelab check`) in a bubblewrap sandbox.

Instructor bulk grading executes every submission, and a hostile one must harm nothing. `run`
starts the payload under bubblewrap (``bwrap``, Debian package ``bubblewrap``) with:

- Filesystem: ``/`` is not bound. Read-only: /usr (with the /bin, /sbin, /lib* links), /etc minus
  what other users may not read (shadow files, private keys), this Python (``sys.base_prefix``),
  its venv (``sys.prefix``) and kubelab's package, graders and labs (checkout or wheel) at
  their own paths, every ``labs/*/solution`` replaced by an empty directory. `HOME` is a fresh
  tmpfs, and so are /tmp and /dev/shm (each at most half of `Limits.memory_bytes`); the caller's
  work directory is bound read-write at `WORK` and is the cwd; `ro_files` adds read-only files
  (e.g. a confined kubeconfig at `KUBECONFIG`). Everything else is read-only, and the
  instructor's files (course folder, gradebook, ~/.cache/kubelab with the admin kubeconfigs,
  other submissions) are simply not there.
- Namespaces: all new (user, pid, net, ipc, uts, cgroup), no capabilities, no nested user
  namespaces, a new session, and exactly the environment `env`, nothing inherited.
- Network: loopback only. With `api_server` set, `kubelab.sandbox_relay` listens inside on the
  server's own 127.0.0.1:PORT (so the kubeconfig's URL and the certificate's IP SAN still hold)
  and forwards each connection over a Unix socket to a thread here that connects it to the real
  server; TLS passes through untouched. With `gateway` set (kind: where the cluster's Gateway
  answers, `kubelab.cluster_record`), a second relay listens on 127.0.0.1 at the Gateway's port
  (`inside_url` says where), so lab 05's grader can send its real requests. Nothing else (etcd,
  JupyterLab, other hosts, the internet) is reachable.
- Limits (`Limits`): the wall clock kills the whole sandbox (bwrap's pid namespace dies with its
  first process); each process gets RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE and no core dumps; one
  fresh cgroup per run (v2, or the v1 pids/memory/cpu hierarchies) caps its tasks, its total
  memory (tmpfs included) and its CPU share, and is removed afterwards. Parallel runs each get
  their own, so one cannot starve another.
  Without a writable cgroup (a non-root instructor) RLIMIT_NPROC caps the processes instead: on
  Linux >= 5.14 it counts per user namespace, so it stops a fork bomb without touching the
  instructor's or another sandbox's count (older kernels count all of the instructor's
  processes). Memory is then bounded per process only, and the CPU share not at all. Root ignores
  RLIMIT_NPROC, so as root a writable cgroup is required (`check_available` says so).

API::

    check_available() -> None            # raise a one-line KubelabError when it cannot work
    base_env(**extra) -> dict[str, str]  # PATH (venv bin first), HOME, LANG, TMPDIR, plus extra
    run(argv, *, workdir, api_server, env, ro_files=None, limits=DEFAULT_LIMITS) -> Outcome
    HOME, WORK, KUBECONFIG               # in-sandbox paths: throwaway home, work dir (the cwd),
                                         # where to bind a learner's kubeconfig

`Outcome.returncode` is the payload's exit code (128+N if signal N killed it, e.g. 137 after an
out-of-memory kill) or None when the wall limit stopped it (`timed_out`); stdout and stderr keep
their last 64 KiB. A kubeconfig given in `ro_files` must be self-contained (its CA embedded as
certificate-authority-data): the files it might point to are not in the sandbox. Not bounded:
how many files the payload writes into its work directory (each at most `Limits.file_bytes`), so
give it one on a filesystem that may fill up. Linux only.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from kubelab import paths, tools
from kubelab.errors import KubelabError
from kubelab.sandbox_relay import pump

HOME = "/home/learner"
WORK = f"{HOME}/work"
KUBECONFIG = f"{HOME}/.kube/config"
SOCKET_DIR = "/run/kubelab"

_RELAY_SCRIPT = Path(__file__).with_name("sandbox_relay.py")
_TAIL_BYTES = 64 * 1024
_MAX_CONNECTIONS = 64
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_CGROUP_PREFIX = "kubelab-sandbox-"
_JOIN_FAILED = "kubelab-sandbox: cannot join cgroup"
# Joins the cgroups named before `--`, then becomes bwrap: everything bwrap starts is inside.
_JOIN_CGROUPS = (
    'while [ "$1" != -- ]; do echo $$ >"$1" || { echo "' + _JOIN_FAILED + ' $1" >&2; exit 125; }; '
    'shift; done; shift; exec "$@"'
)


@dataclass(frozen=True)
class Limits:
    """What one sandbox run may use."""

    wall_seconds: float = 600
    cpu_seconds: int = 900  # per process (RLIMIT_CPU)
    memory_bytes: int = 3 * 2**30  # per process (RLIMIT_AS) and, with a cgroup, in total
    processes: int = 512  # tasks, threads included (cgroup pids.max, else RLIMIT_NPROC)
    cpus: float = 1.0  # CPU share (cgroup only)
    file_bytes: int = 2**30  # largest file it may write (RLIMIT_FSIZE)


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Outcome:
    """How a sandboxed run ended."""

    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    seconds: float


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
            f"bubblewrap cannot create a sandbox here ({tools.last_line(probe.stderr)}): allow "
            "unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1`; on Ubuntu "
            ">= 23.10 install bubblewrap's AppArmor profile or set "
            "`kernel.apparmor_restrict_unprivileged_userns=0`)"
        )
    if os.geteuid() == 0:
        group = _Cgroup.create(DEFAULT_LIMITS)
        if group is None:
            raise KubelabError(
                "as root, grading needs a writable cgroup to cap a submission's processes (root "
                "ignores RLIMIT_NPROC): run it as a normal user, or with /sys/fs/cgroup writable"
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


def _api_address(server: str) -> tuple[str, int]:
    """Return (host, port) of an API server URL or host:port, which must be on this machine."""
    parts = urlsplit(server if "://" in server else f"https://{server}")
    try:
        port = parts.port or (80 if parts.scheme == "http" else 443)
    except ValueError as err:
        raise KubelabError(f"cannot read the API server address {server!r}: {err}") from err
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise KubelabError(
            f"the grading sandbox can only reach an API server on 127.0.0.1, not {server}: "
            "grade against the local sim cluster"
        )
    return parts.hostname, port


# --- filesystem ---------------------------------------------------------------------------


def _bwrap() -> str:
    """Return the path of bwrap, or raise saying how to install it."""
    found = shutil.which("bwrap")
    if found is None:
        raise KubelabError(
            "grading runs submissions in bubblewrap, which is not installed: "
            "install it with `apt install bubblewrap` (or your distribution's bubblewrap package)"
        )
    return found


@functools.cache
def _bwrap_options() -> frozenset[str]:
    """Return the options this bubblewrap knows (older ones lack --size and --disable-userns)."""
    help_text = tools.run([_bwrap(), "--help"], check=False, timeout=10).stdout
    return frozenset(re.findall(r"--[a-z-]+", help_text))


def _optional(option: str, *values: str) -> list[str]:
    """Return `option` with its values if this bubblewrap supports it, else nothing."""
    return [option, *values] if option in _bwrap_options() else []


def _system_binds() -> list[str]:
    """Bind /usr read-only, and /bin, /sbin, /lib* as the links or directories they are."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), top]
        elif path.is_dir():
            args += ["--ro-bind", top, top]
    return args


@functools.cache
def _private_under(top: str) -> tuple[tuple[str, bool], ...]:
    """Return (path, is_dir) of what under `top` other users may not read, to hide it."""
    hidden: list[tuple[str, bool]] = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in list(dirnames):
            full = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                mode = os.lstat(full).st_mode
                if stat.S_ISDIR(mode) and mode & 0o005 != 0o005:
                    hidden.append((full, True))
                    dirnames.remove(name)
        for name in filenames:
            full = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                mode = os.lstat(full).st_mode
                if stat.S_ISREG(mode) and not mode & 0o004:
                    hidden.append((full, False))
    return tuple(hidden)


def _filesystem(
    workdir: Path, ro_files: Mapping[str, Path], limits: Limits, scratch: Path
) -> list[str]:
    """Return the bwrap arguments that build the sandbox's file tree."""
    empty_dir, empty_file = str(scratch / "empty"), str(scratch / "empty-file")
    args = [*_system_binds(), "--ro-bind", "/etc", "/etc"]
    for path, is_dir in _private_under("/etc"):
        args += ["--ro-bind", empty_dir if is_dir else empty_file, path]
    # The fresh /dev and /tmp come before the code binds: a checkout or venv under /tmp (a CI
    # clone) must stay visible, not be hidden under the new tmpfs.
    args += ["--proc", "/proc", "--dev", "/dev"]
    size = _optional("--size", str(max(limits.memory_bytes // 2, 64 * 2**20)))  # bwrap >= 0.8
    args += [*size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]
    args += [*size, "--tmpfs", "/tmp"]
    bound = [Path("/usr"), Path("/etc")]
    for tree in (sys.base_prefix, sys.prefix, paths.PACKAGE_DIR, paths.GRADERS_DIR, paths.LABS_DIR):
        top = Path(tree)
        if top.is_dir() and not any(top == b or b in top.parents for b in bound):
            args += ["--ro-bind", str(top), str(top)]
            bound.append(top)
    for solution in sorted(paths.LABS_DIR.glob("*/solution")):
        args += ["--ro-bind", empty_dir, str(solution)]
    # The instructor's lab notebooks hold the answers between BEGIN/END SOLUTION markers.
    for notebook in sorted(paths.LABS_DIR.glob("*/*.ipynb")):
        args += ["--ro-bind", empty_file, str(notebook)]
    args += [*size, "--tmpfs", HOME, "--bind", str(workdir.resolve()), WORK]
    for dest, source in ro_files.items():
        args += ["--ro-bind", str(source.resolve()), dest]
    return args


# --- network --------------------------------------------------------------------------------


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


class _Cgroup:
    """One fresh cgroup for one run (v2, or one per v1 hierarchy), destroyed afterwards."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs

    @property
    def procs_files(self) -> list[Path]:
        """The files a process writes its pid to in order to join."""
        return [group / "cgroup.procs" for group in self.dirs]

    @classmethod
    def create(cls, limits: Limits) -> _Cgroup | None:
        """Make a cgroup capping tasks (and memory and CPU where possible); None if we cannot."""
        name = f"{_CGROUP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        if (_CGROUP_ROOT / "cgroup.controllers").is_file():
            return cls._create_v2(name, limits)
        return cls._create_v1(name, limits)

    @classmethod
    def _create_v2(cls, name: str, limits: Limits) -> _Cgroup | None:
        parent = _v2_parent(_own_cgroups().get("", "/"))
        if parent is None:
            return None
        _sweep(parent)
        group = parent / name
        try:
            group.mkdir()
            (group / "pids.max").write_text(str(limits.processes))
        except OSError:
            cls([group]).destroy()
            return None
        quota = int(limits.cpus * 100_000)
        for file, value in (("memory.max", limits.memory_bytes), ("memory.swap.max", 0)):
            _try_write(group / file, str(value))
        _try_write(group / "cpu.max", f"{quota} 100000")
        return cls([group])

    @classmethod
    def _create_v1(cls, name: str, limits: Limits) -> _Cgroup | None:
        quota = str(int(limits.cpus * 100_000))
        settings = {  # per controller: the files to write, the first one required
            "pids": [("pids.max", str(limits.processes))],
            "memory": [
                ("memory.limit_in_bytes", str(limits.memory_bytes)),
                ("memory.memsw.limit_in_bytes", str(limits.memory_bytes)),  # if swap is counted
            ],
            "cpu": [("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", quota)],
        }
        mounts, own = _v1_mounts(), _own_cgroups()
        made = cls([])
        for controller, files in settings.items():
            parent = _v1_parent(mounts, own, controller)
            group = parent / name if parent else None
            try:
                if parent is None or group is None:
                    raise OSError("not mounted or not writable")
                _sweep(parent)
                group.mkdir()
                made.dirs.append(group)
                (group / files[0][0]).write_text(files[0][1])
            except OSError:
                if controller == "pids":  # the one limit a root sandbox cannot do without
                    made.destroy()
                    return None
                continue
            for file, value in files[1:]:
                _try_write(group / file, value)
        return made

    def pids(self) -> set[int]:
        """Return the pids (as seen from here) still in the cgroup."""
        found: set[int] = set()
        for procs in self.procs_files:
            with contextlib.suppress(OSError, ValueError):
                found |= {int(pid) for pid in procs.read_text().split()}
        return found

    def destroy(self) -> None:
        """Kill whatever is left in the cgroup, then remove it."""
        deadline = time.monotonic() + 5
        if self.dirs:
            _try_write(self.dirs[0] / "cgroup.kill", "1")  # v2 >= 5.14: all at once
        while (left := self.pids()) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        for group in self.dirs:
            while True:
                try:
                    group.rmdir()
                except FileNotFoundError:
                    break
                except OSError:  # its last tasks are still exiting
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.002)
                    continue
                break
        self.dirs = []


def _try_write(path: Path, value: str) -> None:
    with contextlib.suppress(OSError):
        path.write_text(value)


def _own_cgroups() -> dict[str, str]:
    """Return this process's cgroup path per v1 controller ("" for the v2 hierarchy)."""
    own: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                own[controller] = path
    return own


def _v1_mounts() -> dict[str, tuple[Path, str]]:
    """Return, per v1 controller, where its hierarchy is mounted and which cgroup it shows."""
    mounts: dict[str, tuple[Path, str]] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields, _, tail = line.partition(" - ")
            left, right = fields.split(), tail.split()
            if len(left) > 4 and len(right) > 2 and right[0] == "cgroup":
                for option in right[2].split(","):
                    mounts.setdefault(option, (Path(left[4]), left[3]))
    return mounts


def _v1_parent(
    mounts: dict[str, tuple[Path, str]], own: dict[str, str], controller: str
) -> Path | None:
    """Return our own cgroup in `controller`'s v1 hierarchy (children stay under its limits)."""
    if controller not in mounts:
        return None
    mountpoint, shown = mounts[controller]
    path = own.get(controller, "/")
    relative = path[len(shown) :] if path.startswith(shown) else ""
    parent = mountpoint / relative.lstrip("/")
    return parent if os.access(parent, os.W_OK) else None


def _v2_parent(own: str) -> Path | None:
    """Return a writable v2 cgroup whose children get the pids controller, enabling it if we may.

    Our own cgroup cannot be it unless it is the root (a cgroup with processes cannot enable
    controllers for children), so the nearest ancestor that already delegates pids is used.
    """
    here = _CGROUP_ROOT / own.strip("/")
    # Nearest first, ending at the root; just the root when we are in it.
    chain = [p for p in here.parents if p == _CGROUP_ROOT or _CGROUP_ROOT in p.parents]
    for parent in chain or [_CGROUP_ROOT]:
        with contextlib.suppress(OSError):
            enabled = (parent / "cgroup.subtree_control").read_text().split()
            if "pids" in enabled and os.access(parent, os.W_OK):
                return parent
    with contextlib.suppress(OSError):
        available = (_CGROUP_ROOT / "cgroup.controllers").read_text().split()
        for controller in ("pids", "memory", "cpu"):
            if controller in available:
                _try_write(_CGROUP_ROOT / "cgroup.subtree_control", f"+{controller}")
        if "pids" in (_CGROUP_ROOT / "cgroup.subtree_control").read_text().split():
            return _CGROUP_ROOT
    return None


def _sweep(parent: Path) -> None:
    """Remove empty sandbox cgroups left by kubelab processes that are gone (killed mid-run)."""
    for group in parent.glob(f"{_CGROUP_PREFIX}*"):
        owner = group.name[len(_CGROUP_PREFIX) :].split("-")[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            with contextlib.suppress(OSError):
                group.rmdir()  # fails, harmlessly, while anything is still inside
