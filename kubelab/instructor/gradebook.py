"""The instructor's outputs: a gradebook CSV and one feedback page per student and lab.

Both are made from the result files that grading leaves in
``<course>/autograded/<student>/<lab>/kubelab-result.json`` (nbgrader's log beside it), so they can
be made again at any time (`kubelab grade report`) without touching the cluster.
"""

from __future__ import annotations

import csv
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelab import i18n
from kubelab.grading.render import html as report_html
from kubelab.grading.result import NOT_CONVERGED, CheckResult, Report
from kubelab.i18n import _
from kubelab.instructor.nbgrader_log import LOG_FILE
from kubelab.labs import Lab, Task

RESULT_FILE = "kubelab-result.json"
REFUSED = "refused"  # nbgrader refused the notebook (altered or forged grade cells)


def result_path(course: Path, lab: Lab, student: str) -> Path:
    """Return where one submission's result file lives."""
    return course / "autograded" / student / lab.id / RESULT_FILE


@dataclass(frozen=True)
class Row:
    """One submission's line in the gradebook, with the check result behind each task's points."""

    student: str
    lab: Lab
    checks: tuple[CheckResult, ...]  # one per task, in the lab's order
    # graded | not-converged | refused | timeout | kernel-died | crashed | error | grader-error
    status: str
    message: str
    namespace: str = ""
    notes: tuple[str, ...] = ()  # what else the instructor and learner should know, in words
    log: str = ""  # nbgrader's log, relative to the course folder
    retried: bool = False  # graded a second time, alone, after not converging

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


def log_path(lab: Lab, student: str) -> str:
    """Return where nbgrader's log of one submission is, relative to the course folder."""
    return f"autograded/{student}/{lab.id}/{LOG_FILE}"


def _notes(data: dict[str, Any], status: str) -> tuple[str, ...]:
    found = [str(n) for n in (data.get("nbgrader") or {}).get("notes") or []]
    if found and status != REFUSED:
        found[-1] += _("; nbgrader put the released cells back, and the cluster's state was graded")
    found += [
        _("the notebook's grade cell `{task}` was deleted: it scores 0").format(task=task)
        for task in data.get("deleted_grade_cells") or []
    ]
    for cut in data.get("truncated") or []:
        per_cell = cut.get("per") == "cell"
        found.append(
            (
                _(
                    "output truncated: cell {cell} printed {printed} bytes; kubelab keeps at most"
                    " {cap} per cell"
                )
                if per_cell
                else _(
                    "output truncated: cell {cell} printed {printed} bytes; kubelab keeps at most"
                    " {cap} per notebook"
                )
            ).format(
                cell=cut.get("cell"),
                printed=f"{cut.get('printed', 0):,}",
                cap=f"{cut.get('cap', 0):,}",
            )
        )
    return tuple(found)


def row_from_result(lab: Lab, student: str, data: dict[str, Any]) -> Row:
    """Turn a result file's content into a gradebook row.

    A task scores what the cluster showed after the run, but only if the run reached its grade
    cell: a notebook that hung or died before a task gets 0 for it, as nbgrader would give. A
    check that did not converge scores nothing and makes the row's status `not-converged`.
    """
    run = data.get("run") or {}
    report = Report.from_dict(data["report"], title=lab.title) if data.get("report") else None
    reached = set(data.get("reached") or [])
    status = str(run.get("status") or "error")
    message = str(run.get("message") or "")
    if data.get("grader_error"):
        message = "; ".join(m for m in (message, str(data["grader_error"])) if m)
    unsettled = (
        [c.id for c in report.checks if c.not_converged and c.id in reached] if report else []
    )
    retried = int(data.get("attempts") or 1) > 1
    if data.get("error"):
        status, message = str(data.get("status") or "error"), str(data["error"])
    elif status == "finished" and unsettled:
        status = NOT_CONVERGED
        message = (
            _(
                "not converged: {tasks} could not be judged (the cluster did not settle before"
                " the deadline), so they score nothing; still so when graded again alone: grade"
                " them by hand or again later"
            )
            if retried
            else _(
                "not converged: {tasks} could not be judged (the cluster did not settle before"
                " the deadline), so they score nothing; grade again"
            )
        ).format(tasks=", ".join(unsettled))
    elif status == "finished":
        status = "graded" if report else "grader-error"
    if retried and status != NOT_CONVERGED:
        message = "; ".join(m for m in (message, _("graded again alone after not converging")) if m)
    found = {c.id: c for c in report.checks} if report else {}
    checks = []
    for task in lab.tasks:
        if task.id not in reached:
            checks.append(
                _missing(
                    task,
                    _("not run: the notebook stopped before this cell ({status})").format(
                        status=status
                    ),
                )
            )
        elif task.id not in found:
            checks.append(_missing(task, _("not graded: {why}").format(why=message or status)))
        else:
            checks.append(found[task.id])
    return Row(
        student,
        lab,
        tuple(checks),
        status,
        message,
        str(data.get("namespace", "")),
        notes=_notes(data, status),
        log=str(data.get("log") or ""),
        retried=retried,
    )


def read_row(course: Path, lab: Lab, student: str) -> Row:
    """Read one submission's row; a missing or unreadable result is a row too."""
    path = result_path(course, lab, student)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        data = {"error": _("no result ({error})").format(error=err.__class__.__name__)}
    return row_from_result(lab, student, data)


def write_error(
    course: Path, lab: Lab, student: str, message: str, *, status: str = "error", **extra: Any
) -> Path:
    """Record that a submission could not be graded at all (it still gets its row)."""
    path = result_path(course, lab, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"student": student, "lab": lab.id, "error": message, "status": status, **extra}
    path.write_text(json.dumps(data, indent=2))
    return path


def annotate(course: Path, lab: Lab, student: str, **fields: Any) -> None:
    """Add `fields` to a submission's result file (nbgrader's findings, its log, attempts)."""
    path = result_path(course, lab, student)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # no result to add to: its row says so
    data.update(fields)
    path.write_text(json.dumps(data, indent=2))


def write_csv(rows: list[Row], path: Path) -> Path:
    """Write the gradebook: one line per submission, one column per task of every lab in it."""
    tasks: list[str] = []
    for lab in sorted({r.lab.id: r.lab for r in rows}.values(), key=lambda lab: lab.id):
        tasks += [f"{lab.id[:2]}:{t.id}" for t in lab.tasks]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["student", "lab", *tasks, "total", "max", "status", "message", "log"])
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
                    "; ".join(m for m in (r.message, *r.notes) if m),
                    r.log,
                ]
            )
    return path


_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
td,th{{padding:.4rem;vertical-align:top}} .status{{padding:.6rem;border-radius:6px}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""


def feedback_html(row: Row) -> str:
    """Render one student's feedback page for one lab: every check's message and hint."""
    title = f"{row.lab.id} · {_(row.lab.title)} · {row.student}"
    parts = ["<p>" + _("Points come from the cluster's state after your notebook ran.") + "</p>"]
    if row.status == REFUSED:
        parts.append(
            '<p class="status" style="background:#ffebee">'
            + _(
                "Your notebook was not graded: {message}. Hand in the notebook as it was"
                " released, with only your answers changed."
            ).format(message=html.escape(row.message))
            + "</p>"
        )
    elif row.status == NOT_CONVERGED:
        parts.append(
            '<p class="status" style="background:#e3f2fd">'
            + _(
                "Not graded yet: {message}. This is not your fault and no points were taken."
            ).format(message=html.escape(row.message))
            + "</p>"
        )
    elif row.status != "graded":
        parts.append(
            '<p class="status" style="background:#fff3e0">'
            + _(
                "Grading ended early: {status} {message}. A task whose cell was never reached"
                " scores 0."
            ).format(status=f"<b>{html.escape(row.status)}</b>", message=html.escape(row.message))
            + "</p>"
        )
    elif row.retried:
        parts.append(f'<p class="status">{html.escape(row.message)}.</p>')
    if row.notes:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in row.notes)
        parts.append(f'<div class="status" style="background:#fff8e1"><ul>{items}</ul></div>')
    parts.append(report_html(Report(row.lab.id, row.lab.title, row.namespace, row.checks)))
    if row.log:
        parts.append(
            "<p><small>"
            + _(
                "nbgrader's log of this grading: {path} in your instructor's course folder."
            ).format(path=f"<code>{html.escape(row.log)}</code>")
            + "</small></p>"
        )
    return _PAGE.format(lang=i18n.current(), title=html.escape(title), body="\n".join(parts))


def write_feedback(row: Row, root: Path) -> Path:
    """Write ``<root>/<student>/<lab>.html``."""
    path = root / row.student / f"{row.lab.id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(feedback_html(row))
    return path
