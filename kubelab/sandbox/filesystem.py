"""The sandbox's file tree: bubblewrap's binds, the answers hidden, a fresh home."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

from kubelab import paths, tools
from kubelab.errors import KubelabError
from kubelab.i18n import _
from kubelab.sandbox.limits import Limits

HOME = "/home/learner"
WORK = f"{HOME}/work"
KUBECONFIG = f"{HOME}/.kube/config"


def _bwrap() -> str:
    """Return the path of bwrap, or raise saying how to install it."""
    found = shutil.which("bwrap")
    if found is None:
        raise KubelabError(
            _(
                "grading runs submissions in bubblewrap, which is not installed: install it with"
                " `apt install bubblewrap` (or your distribution's bubblewrap package)"
            )
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
