"""A throwaway nbgrader course over the repository's labs, for the release and autograde tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from nbgrader.api import Gradebook

from kubelab.course import write_course_config

BIN = Path(sys.executable).parent  # nbgrader runs `alembic` from PATH: use this venv's


def make_course(root: Path) -> Path:
    """Make `root` an nbgrader course over the repository's labs (kubelab's own settings)."""
    write_course_config(root)
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


def submit(course: Path, lab_id: str, student: str) -> Path:
    """Hand in the released assignment unchanged as `student`; return the submission folder."""
    target = course / "submitted" / student / lab_id
    shutil.copytree(course / "release" / lab_id, target)
    return target


def answer(notebook: Path, grade_id: str, source: str) -> None:
    """Replace the source of the cell with this grade_id, as a learner's answer."""
    nb = json.loads(notebook.read_text())
    cell = next(
        c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id
    )
    cell["source"] = source
    notebook.write_text(json.dumps(nb))


def autograde(
    course: Path, lab_id: str, student: str, *, kubeconfig: Path, namespace: str, home: Path
) -> None:
    """Autograde one submission against the test cluster in its own namespace."""
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), KUBELAB_NAMESPACE=namespace)
    env["HOME"] = str(home)  # the learner's progress file is theirs, not ours
    nbgrader(course, "autograde", lab_id, "--student", student, "--force", env=env)


def scores(course: Path, lab_id: str, student: str) -> dict[str, float]:
    """Return the points nbgrader recorded for each grade cell of one submission."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission(lab_id, student)
        return {g.name: float(g.score) for g in sub.notebooks[0].grades}


def submit_solution(course: Path, lab_id: str, student: str, solution: Path) -> Path:
    """Hand in the release with the reference answer as the learner's starter/ files."""
    target = submit(course, lab_id, student)
    shutil.rmtree(target / "starter")
    shutil.copytree(solution, target / "starter")
    return target


def autograde_all(
    course: Path,
    lab_id: str,
    students: list[str],
    *,
    kubeconfig: Path,
    home: Path,
    delete_namespace: Callable[[str], object],
) -> dict[str, dict[str, float]]:
    """Autograde each submission in a namespace of its own; return every student's scores."""
    namespaces = []
    found = {}
    try:
        for student in students:
            ns = f"nbg-{student}-{uuid.uuid4().hex[:4]}"
            namespaces.append(ns)
            autograde(course, lab_id, student, kubeconfig=kubeconfig, namespace=ns, home=home)
            found[student] = scores(course, lab_id, student)
    finally:
        for ns in namespaces:
            delete_namespace(ns)
    return found
