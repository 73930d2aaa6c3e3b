"""The instructor's outputs: a gradebook CSV and one feedback page per student and lab.

Both are made from the result files that grading leaves in
``<course>/autograded/<student>/<lab>/kubelab-result.json``, so they can be made again at any
time (`kubelab grade report`) without touching the cluster.
"""

from __future__ import annotations

import csv
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelab.grading.render import html as report_html
from kubelab.grading.result import CheckResult, Report
from kubelab.labs import Lab, Task

RESULT_FILE = "kubelab-result.json"


def result_path(course: Path, lab: Lab, student: str) -> Path:
    """Return where one submission's result file lives."""
    return course / "autograded" / student / lab.id / RESULT_FILE


@dataclass(frozen=True)
class Row:
    """One submission's line in the gradebook, with the check result behind each task's points."""

    student: str
    lab: Lab
    checks: tuple[CheckResult, ...]  # one per task, in the lab's order
    status: str  # graded | timeout | kernel-died | crashed | error | grader-error
    message: str
    namespace: str = ""

    @property
    def points(self) -> dict[str, float]:
        """Return task id -> points."""
        return {c.id: c.points for c in self.checks}

    @property
    def total(self) -> float:
        """Return the points earned."""
        return sum(c.points for c in self.checks)

    @property
    def max_total(self) -> float:
        """Return the points available."""
        return float(sum(t.points for t in self.lab.tasks))


def _missing(task: Task, why: str) -> CheckResult:
    return CheckResult(task.id, task.title, False, 0.0, float(task.points), why)


def row_from_result(lab: Lab, student: str, data: dict[str, Any]) -> Row:
    """Turn a result file's content into a gradebook row.

    A task scores what the cluster showed after the run, but only if the run reached its grade
    cell: a notebook that hung or died before a task gets 0 for it, as nbgrader would give.
    """
    run = data.get("run") or {}
    report = Report.from_dict(data["report"], title=lab.title) if data.get("report") else None
    reached = set(data.get("reached") or [])
    status = str(run.get("status") or "error")
    message = str(run.get("message") or "")
    if data.get("grader_error"):
        message = "; ".join(m for m in (message, str(data["grader_error"])) if m)
    if data.get("error"):
        status, message = "error", str(data["error"])
    elif status == "finished":
        status = "graded" if report else "grader-error"
    found = {c.id: c for c in report.checks} if report else {}
    checks = []
    for task in lab.tasks:
        if task.id not in reached:
            checks.append(
                _missing(task, f"not run: the notebook stopped before this cell ({status})")
            )
        elif task.id not in found:
            checks.append(_missing(task, f"not graded: {message or status}"))
        else:
            checks.append(found[task.id])
    return Row(student, lab, tuple(checks), status, message, str(data.get("namespace", "")))


def read_row(course: Path, lab: Lab, student: str) -> Row:
    """Read one submission's row; a missing or unreadable result is a row too."""
    path = result_path(course, lab, student)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        data = {"error": f"no result ({err.__class__.__name__})"}
    return row_from_result(lab, student, data)


def write_error(course: Path, lab: Lab, student: str, message: str) -> Path:
    """Record that a submission could not be graded at all (it still gets its row)."""
    path = result_path(course, lab, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"student": student, "lab": lab.id, "error": message}))
    return path


def write_csv(rows: list[Row], path: Path) -> Path:
    """Write the gradebook: one line per submission, one column per task of every lab in it."""
    tasks: list[str] = []
    for lab in sorted({r.lab.id: r.lab for r in rows}.values(), key=lambda lab: lab.id):
        tasks += [f"{lab.id[:2]}:{t.id}" for t in lab.tasks]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["student", "lab", *tasks, "total", "max", "status", "message"])
        for r in sorted(rows, key=lambda r: (r.student, r.lab.id)):
            cells = {f"{r.lab.id[:2]}:{k}": f"{v:g}" for k, v in r.points.items()}
            out.writerow(
                [
                    r.student,
                    r.lab.id,
                    *(cells.get(t, "") for t in tasks),
                    f"{r.total:g}",
                    f"{r.max_total:g}",
                    r.status,
                    r.message,
                ]
            )
    return path


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
td,th{{padding:.4rem;vertical-align:top}} .status{{padding:.6rem;border-radius:6px}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""


def feedback_html(row: Row) -> str:
    """Render one student's feedback page for one lab: every check's message and hint."""
    title = f"{row.lab.id} · {row.lab.title} · {row.student}"
    parts = ["<p>Points come from the cluster's state after your notebook ran.</p>"]
    if row.status != "graded":
        parts.append(
            '<p class="status" style="background:#fff3e0">Grading ended early: '
            f"<b>{html.escape(row.status)}</b> {html.escape(row.message)}. A task whose cell "
            "was never reached scores 0.</p>"
        )
    parts.append(report_html(Report(row.lab.id, row.lab.title, row.namespace, row.checks)))
    return _PAGE.format(title=html.escape(title), body="\n".join(parts))


def write_feedback(row: Row, root: Path) -> Path:
    """Write ``<root>/<student>/<lab>.html``."""
    path = root / row.student / f"{row.lab.id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(feedback_html(row))
    return path
