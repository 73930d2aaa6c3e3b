"""A report as a person reads it: a table in the terminal, a scorecard in a notebook."""

from __future__ import annotations

import html as _html
import re
import shutil
import textwrap

from kubelab.grading.result import CheckResult, Report, _number
from kubelab.i18n import _, ngettext

_GREEN, _RED, _YELLOW, _DIM, _RESET = "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[0m"
_CYAN = "\033[36m"
_URL = re.compile(r"(https?://[^\s)]+)")
_WRAP = "overflow-wrap:anywhere;word-break:break-word"


def _mark(c: CheckResult) -> str:
    if c.not_converged:
        return "⧖"  # not judged: neither passed nor failed
    if c.passed:
        return "✔"
    return "◐" if c.points > 0 else "✘"


def _points(c: CheckResult) -> str:
    scored = "-" if c.not_converged else f"{_number(c.points)}"
    return f"{scored}/{_number(c.max_points)}"


def _footer(report: Report) -> str:
    unsettled = len(report.not_converged)
    if not unsettled:
        return ""
    return " · " + ngettext(
        "{n} not converged (the cluster did not settle in time: not judged, grade again)",
        "{n} not converged (the cluster did not settle in time: not judged, grade again)",
        unsettled,
    ).format(n=unsettled)


def _wrap(line: str, width: int) -> list[str]:
    """Wrap at spaces only, so URLs and field paths stay whole (and clickable)."""
    wrapped = textwrap.wrap(line, max(width, 30), break_long_words=False, break_on_hyphens=False)
    return wrapped or [""]


def _notes(c: CheckResult) -> list[tuple[str, str | None]]:
    """What to show under a check: each failed requirement with its own hint when there are
    several (the first hint carries the docs link), else the message and the hint."""
    if len(c.problems) < 2:
        return [(c.message, c.hint)]
    return [(f"• {what}", c.hint if i == 0 else hint) for i, (what, hint) in enumerate(c.problems)]


def text(report: Report, *, color: bool = False, width: int | None = None) -> str:
    """Render the report as a plain-text table (ANSI colours when `color`)."""
    cols = width or min(shutil.get_terminal_size((100, 24)).columns, 120)
    idw = max([len(c.id) for c in report.checks] + [4])
    lines = [
        _("{lab} · {title} · namespace {namespace}").format(
            lab=report.lab, title=_(report.title), namespace=report.namespace
        )
    ]
    indent = " " * (idw + 13)
    for c in report.checks:
        colour = _GREEN if c.passed else (_YELLOW if c.points > 0 else _RED)
        colour = _CYAN if c.not_converged else colour
        pts = _points(c).rjust(5)
        head = f"  {_mark(c)} {c.id.ljust(idw)}  {pts}  "
        first = (colour + head + _RESET) if color else head
        for n, (what, hint) in enumerate(_notes(c)):
            body = _wrap(what, cols - len(indent))
            lines.append((first if n == 0 else indent) + body[0])
            lines.extend(indent + rest for rest in body[1:])
            for h in _wrap(_("hint: {hint}").format(hint=hint), cols - len(indent)) if hint else []:
                lines.append(indent + (_DIM + h + _RESET if color else h))
    passed = sum(c.passed for c in report.checks)
    summary = _("{passed}/{checks} checks passed · {score}/{max_score} points").format(
        passed=passed,
        checks=len(report.checks),
        score=_number(report.score),
        max_score=_number(report.max_score),
    )
    lines.append(f"  {summary}{_footer(report)}")
    return "\n".join(lines)


def _link(text_: str) -> str:
    escaped = _html.escape(text_)
    return _URL.sub(r'<a href="\1" target="_blank" rel="noopener">\1</a>', escaped)


def _html_notes(c: CheckResult, hint_html: str) -> str:
    """The message cell: the message and its hint, or each failed requirement with its own."""
    if len(c.problems) < 2:
        return _html.escape(c.message) + hint_html
    return "".join(
        f"<div>{_html.escape(what)}"
        + (f'<div style="color:#555;margin-top:2px">💡 {_link(hint)}</div>' if hint else "")
        + "</div>"
        for what, hint in _notes(c)
    )


def html(report: Report) -> str:
    """Render the report as an HTML scorecard for Jupyter."""
    rows = []
    for c in report.checks:
        bg = "#e8f5e9" if c.passed else ("#fff8e1" if c.points > 0 else "#ffebee")
        bg = "#e3f2fd" if c.not_converged else bg
        unsettled = _("not converged")
        label = f"<br><small><b>{unsettled}</b></small>" if c.not_converged else ""
        hint = f'<div style="color:#555;margin-top:2px">💡 {_link(c.hint)}</div>' if c.hint else ""
        rows.append(
            f'<tr style="background:{bg}">'
            f'<td style="text-align:center">{_mark(c)}</td>'
            f'<td style="{_WRAP}"><code>{_html.escape(c.id)}</code><br>'
            f"<small>{_html.escape(_(c.title))}</small></td>"
            f'<td style="text-align:right;white-space:nowrap">'
            f"{_points(c).replace('/', ' / ')}{label}</td>"
            f'<td style="text-align:left;{_WRAP}">{_html_notes(c, hint)}</td></tr>'
        )
    headings = (_("check"), _("points"), _("what the cluster shows"))
    share = report.score / report.max_score if report.max_score else 0.0
    bar = (
        '<div style="background:#eee;width:240px;height:10px;border-radius:5px;'
        'display:inline-block">'
        f'<div style="background:#43a047;width:{share * 100:.0f}%;height:10px;border-radius:5px">'
        "</div></div>"
    )
    return (
        '<div class="kubelab-report">'
        f"<p><b>{_html.escape(report.lab)}</b> · {_html.escape(_(report.title))} · "
        + _("namespace {namespace}").format(
            namespace=f"<code>{_html.escape(report.namespace)}</code>"
        )
        + " · "
        + _("{score} points").format(
            score=f"<b>{_number(report.score)} / {_number(report.max_score)}</b>"
        )
        + f" {bar}"
        f"{_html.escape(_footer(report))}</p>"
        # Fixed columns and text that breaks anywhere: a long URL or field path wraps inside the
        # notebook's width instead of pushing the table (and the docs link) out of sight.
        '<table style="border-collapse:collapse;width:100%;table-layout:fixed">'
        '<colgroup><col style="width:2.5em"><col style="width:25%"><col style="width:6em"><col>'
        "</colgroup>"
        f"<thead><tr><th></th><th>{headings[0]}</th><th>{headings[1]}</th>"
        f'<th style="text-align:left">{headings[2]}</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
