"""Build kubelab's wheel from the checkout's files and install it into a fresh venv elsewhere.

The wheel is built offline (``--no-build-isolation`` with the setuptools the test extras pin)
from a copy of the files git knows, so whatever else sits in the checkout (notebook tests' work
folders, caches) cannot leak into it. The venv is made by the base interpreter (a venv made from
.venv's python would be a venv of a venv) without pip; kubelab goes in with ``--no-deps`` and a
``.pth`` line adds .venv's site-packages after the venv's own, so the dependencies are the ones
.venv resolved, nothing is downloaded, and ``import kubelab`` finds the installed wheel, not the
checkout (.venv's editable-install hook is a ``.pth`` in that folder, and ``.pth`` files in a
folder added by a ``.pth`` line are not read).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from kubelab import paths


@dataclass
class Installed:
    """A venv outside the checkout with the built wheel installed."""

    wheel: Path
    bin: Path
    build_seconds: float
    install_seconds: float

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        """Return a learner's environment: the venv first on PATH, nothing of the checkout."""
        drop = ("VIRTUAL_ENV", "KUBECONFIG", "PYTHONPATH", "KUBELAB_NO_KUBECONFIG")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env["PATH"] = os.pathsep.join([str(self.bin), env.get("PATH", "")])
        env["KUBELAB_CACHE"] = str(paths.cache_home())  # the sim build, not a rebuild
        env["KUBELAB_DATA"] = str(home / "data")
        env["HOME"] = str(home)
        env["KUBELAB_NO_KUBECONFIG"] = "1"
        return env | extra


def tracked_files() -> list[str]:
    """Return the checkout's files that git tracks or would add (not ignored), existing ones."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=paths.REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({f for f in out.split("\0") if f and (paths.REPO_ROOT / f).is_file()})


def build_and_install(tmp: Path) -> Installed:
    """Build the wheel from a copy of the tracked files in `tmp`, install it into `tmp`/venv."""
    src = tmp / "src"
    for name in tracked_files():
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(paths.REPO_ROOT / name, target)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    started = time.monotonic()
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp / "dist", src],
        check=True,
        capture_output=True,
        timeout=300,
    )
    build_seconds = time.monotonic() - started
    (wheel,) = (tmp / "dist").glob("kubelab-*.whl")

    venv = tmp / "venv"
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    started = time.monotonic()
    subprocess.run([base, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "dotvenv-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [*pip, "--python", python, "install", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return Installed(wheel, venv / "bin", build_seconds, time.monotonic() - started)
