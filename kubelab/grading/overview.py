"""Where a learner stands in the whole course: every lab's saved score, in a notebook or a terminal.

`graders.progress()` returns an `Overview` that Jupyter shows as a table (one row per lab: score,
a bar, when it was last checked, a tick or cross per task) and `print` shows as text, the same
as `kubelab labs`. It only reads the saved progress (`saved_progress`); it never grades.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from kubelab import labs
from kubelab.grading import saved_progress
from kubelab.grading.saved_progress import LabProgress
from kubelab.i18n import _


@dataclass(frozen=True)
class TaskMark:
    """One task of a lab and the outcome of its latest check (None: never checked)."""

    id: str
    title: str
    passed: bool | None


@dataclass(frozen=True)
class LabRow:
    """One lab in the overview."""

    id: str
    title: str
    progress: LabProgress
    tasks: tuple[TaskMark, ...]


def _symbol(passed: bool | None) -> str:
    return "·" if passed is None else ("✔" if passed else "✘")


def _when(checked_at: str | None) -> str:
    return checked_at[:16].replace("T", " ") if checked_at else "not checked yet"


class Overview:
    """Every lab's saved progress; shown as HTML in Jupyter, as text by print."""

    def __init__(self, rows: list[LabRow]) -> None:
        self.rows = rows

    @property
    def score(self) -> float:
        """Points earned over all labs."""
        return sum(r.progress.score for r in self.rows)

    @property
    def max_score(self) -> float:
        """Points available over all labs."""
        return sum(r.progress.max_score for r in self.rows)

    def __str__(self) -> str:
        if not self.rows:
            return "no labs found"
        lines = []
        for r in self.rows:
            p = r.progress
            filled = round(10 * p.score / p.max_score) if p.max_score else 0
            ticks = "".join(_symbol(t.passed) for t in r.tasks)
            lines.append(
                f"{r.id:<22} {p.score:>4g}/{p.max_score:<4g} {'█' * filled}{'░' * (10 - filled)}"
                f"  {ticks:<8} {_when(p.checked_at)}"
            )
        lines.append(f"total {self.score:g}/{self.max_score:g} points")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        """The overview as an HTML table for Jupyter."""
        if not self.rows:
            return "<p>no labs found</p>"
        rows = []
        for r in self.rows:
            p = r.progress
            share = p.score / p.max_score if p.max_score else 0.0
            colour = "#43a047" if share == 1 else "#fb8c00"
            bar = (
                '<div style="background:#eee;width:120px;height:10px;border-radius:5px">'
                f'<div style="background:{colour};width:{share * 100:.0f}%;height:10px;'
                'border-radius:5px"></div></div>'
            )
            ticks = " ".join(
                f'<span title="{html.escape(t.id)}: {html.escape(t.title)}" style="color:'
                f'{"#999" if t.passed is None else ("#2e7d32" if t.passed else "#c62828")}">'
                f"{_symbol(t.passed)}</span>"
                for t in r.tasks
            )
            rows.append(
                f'<tr><td style="text-align:left"><code>{html.escape(r.id)}</code><br><small>'
                f"{html.escape(r.title)}"
                f'</small></td><td style="text-align:right;white-space:nowrap">'
                f"{p.score:g} / {p.max_score:g}</td><td>{bar}</td>"
                f'<td style="text-align:left;font-size:1.1em">{ticks}</td>'
                f'<td style="white-space:nowrap">{html.escape(_when(p.checked_at))}</td></tr>'
            )
        return (
            '<div class="kubelab-progress">'
            f"<p><b>Your progress</b> · {self.score:g} / {self.max_score:g} points over "
            f"{len(self.rows)} labs (✔ passed, ✘ failed, · not checked yet)</p>"
            '<table style="border-collapse:collapse">'
            '<thead><tr><th style="text-align:left">lab</th><th>points</th><th></th>'
            '<th style="text-align:left">tasks</th><th>last checked</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
            "<p><small>Check a lab with <code>graders.load(&quot;02&quot;).check_all()</code>"
            " or <code>kubelab check 02</code>.</small></p></div>"
        )


def row(lab: labs.Lab) -> LabRow:
    """Return one lab's row from the saved progress."""
    passed = saved_progress.passed_tasks(lab)
    marks = tuple(TaskMark(t.id, _(t.title), passed.get(t.id)) for t in lab.tasks)
    return LabRow(lab.id, _(lab.title), saved_progress.of(lab), marks)


def progress(root: Path | None = None) -> Overview:
    """Return the saved progress of every lab in course order (reads files only, no cluster)."""
    return Overview([row(lab) for lab in labs.all_labs(root)])
