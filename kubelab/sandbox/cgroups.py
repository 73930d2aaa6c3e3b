"""One fresh cgroup per sandbox run (v2, or the v1 pids/memory/cpu hierarchies): caps its tasks,
memory and CPU share, and is removed afterwards."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from pathlib import Path

from kubelab.sandbox.limits import Limits

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_CGROUP_PREFIX = "kubelab-sandbox-"
_JOIN_FAILED = "kubelab-sandbox: cannot join cgroup"
# Joins the cgroups named before `--`, then becomes bwrap: everything bwrap starts is inside.
_JOIN_CGROUPS = (
    'while [ "$1" != -- ]; do echo $$ >"$1" || { echo "' + _JOIN_FAILED + ' $1" >&2; exit 125; }; '
    'shift; done; shift; exec "$@"'
)


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
