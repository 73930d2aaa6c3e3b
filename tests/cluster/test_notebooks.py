"""Every teaching and lab notebook runs top to bottom on a fresh kernel against the sim cluster.

Each notebook runs under `pytest --nbval-lax` in a child process (its own kernel, its own
environment), in a namespace of its own, with the test cluster's kubeconfig and the venv's
kubectl first on PATH, as a learner's JupyterLab has them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import Kubectl

ROOT = Path(__file__).resolve().parents[2]
# Every teaching notebook, and every lab's nbgrader source notebook (with its solutions).
NOTEBOOKS = sorted(
    str(p.relative_to(ROOT))
    for p in [*ROOT.glob("notebooks/[0-9][0-9]-*.ipynb"), *ROOT.glob("labs/*/lab.ipynb")]
)
TIMEOUT = 600  # seconds for one whole notebook
TAIL = 60  # lines of the child's output shown on failure


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs(notebook: str, kubeconfig: Path, kubectl: Kubectl, tmp_path: Path) -> None:
    path = ROOT / notebook
    assert path.is_file(), f"{notebook} is missing"
    run_notebook(path, path.parent, kubeconfig, kubectl, tmp_path)


def run_notebook(path: Path, cwd: Path, kubeconfig: Path, kubectl: Kubectl, data: Path) -> None:
    """Run the notebook at `path` (which is in `cwd`) under nbval; fail with its output's tail."""
    bin_dir = str(Path(sys.executable).parent)
    # A namespace is a DNS label: a translated lab notebook (lab.zh-CN) has a dot in its stem.
    stem = path.stem[:20].lower().replace("_", "-").replace(".", "-")
    namespace = f"nb-{stem}-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "KUBELAB_NAMESPACE": namespace,
        "KUBELAB_DATA": str(data),  # progress saved by check_all() is not the developer's
    }
    notebook = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", path.name],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so a timeout can stop the kernel it starts, too
    )
    try:
        output, _ = child.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        pytest.fail(f"{notebook} did not finish within {TIMEOUT}s:\n{_tail(output)}")
    finally:
        # A notebook that failed half-way has not run its clean-up cell: remove its work folder,
        # its namespace, its node, and any cordon it left (module 03 drains nodes), or later tests
        # suffer. Only its own folder (work-NN): notebooks run at once on other xdist workers,
        # in the same folder, and removing theirs broke them mid-run.
        shutil.rmtree(cwd / f"work-{path.name[:2]}", ignore_errors=True)
        kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
        # ...and any node it added (module 09 makes one fail), labelled with its namespace.
        kubectl("delete", "nodes", "-l", f"kubelab.dev/notebook={namespace}", check=False)
        for node in kubectl("get", "nodes", "-o", "name", check=False).stdout.split():
            kubectl("uncordon", node, check=False)
    assert child.returncode == 0, f"{notebook} failed (exit {child.returncode}):\n{_tail(output)}"


def _tail(output: str | None) -> str:
    """Return the last lines of a child's output."""
    return "\n".join((output or "").splitlines()[-TAIL:])
