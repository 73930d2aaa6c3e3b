"""A throwaway nbgrader course over the repository's labs, for the release and autograde tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kubelab import paths

BIN = Path(sys.executable).parent  # nbgrader runs `alembic` from PATH: use this venv's


def make_course(root: Path) -> Path:
    """Write an nbgrader_config.py that uses kubelab's settings with `root` as the course root."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(
        "from pathlib import Path\n"
        "from kubelab.course import configure_nbgrader\n"
        f"configure_nbgrader(get_config(), root=Path({str(root)!r}),"
        f" labs_dir=Path({str(paths.LABS_DIR)!r}))\n"
    )
    return root


def nbgrader(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run an nbgrader command in the course; return its output or fail with it."""
    full = dict(env or os.environ)
    full["PATH"] = os.pathsep.join([str(BIN), full.get("PATH", "")])
    proc = subprocess.run(
        [str(BIN / "nbgrader"), *args],
        cwd=root,
        env=full,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    return output
