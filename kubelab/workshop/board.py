"""The leader's board: participants x labs, from the results participants' own checks posted.

The board never grades anyone: it reads the `kubelab-progress` ConfigMaps that each `kubelab check`
in a participant namespace leaves behind (`scores`), so it trusts participants' own reports. It is
a workshop board for seeing who is stuck, not a gradebook.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TextIO

from kubelab import api, labs
from kubelab.cluster.findings import pad, width
from kubelab.errors import KubelabError
from kubelab.i18n import _
from kubelab.lab_namespaces import LAB_LABEL, MANAGED_BY, PARTICIPANT
from kubelab.workshop import scores

NOT_CHECKED = "·"  # a cell whose lab was never checked


@dataclass(frozen=True)
class Cell:
    """One participant's standing in one lab."""

    max_score: float
    score: float | None = None  # None: never checked
    checked_at: str | None = None


@dataclass(frozen=True)
class Row:
    """One participant and their cells, by lab id."""

    participant: str
    cells: dict[str, Cell]

    @property
    def score(self) -> float:
        """Return the points earned over every lab."""
        return sum(c.score or 0 for c in self.cells.values())

    @property
    def max_score(self) -> float:
        """Return the points available over this participant's labs."""
        return sum(c.max_score for c in self.cells.values())

    @property
    def last_checked(self) -> str | None:
        """Return when this participant last ran a check (ISO 8601), or None."""
        return max((c.checked_at for c in self.cells.values() if c.checked_at), default=None)


@dataclass(frozen=True)
class Board:
    """Every participant's row, and the labs the workshop uses in course order."""

    labs: list[labs.Lab]
    rows: list[Row]


def build(namespaces: list[api.Json], posted: list[scores.Posted], course: list[labs.Lab]) -> Board:
    """Put participant namespaces and the results posted in them into rows."""
    by_id = {lab.id: lab for lab in course}
    results = {p.namespace: p for p in posted}
    cells: dict[str, dict[str, Cell]] = {}
    for ns in namespaces:
        meta = ns.get("metadata") or {}
        labels = meta.get("labels") or {}
        who, lab = labels.get(PARTICIPANT), by_id.get(labels.get(LAB_LABEL, ""))
        if not who or lab is None:
            continue
        result = results.get(str(meta.get("name")))
        cell = Cell(float(lab.max_score))
        if result is not None and result.lab == lab.id:
            earned = sum(min(result.tasks.get(t.id, 0.0), t.points) for t in lab.tasks)
            cell = Cell(float(lab.max_score), earned, result.checked_at)
        cells.setdefault(str(who), {})[lab.id] = cell
    used = {lab_id for row in cells.values() for lab_id in row}
    return Board(
        [lab for lab in course if lab.id in used],
        [Row(who, cells[who]) for who in sorted(cells)],
    )


def read(client: api.Api) -> Board:
    """Read the board from the cluster (with the leader's credentials)."""
    namespaces = client.list(api.NAMESPACES, labels=f"{PARTICIPANT},{MANAGED_BY}=kubelab")
    return build(namespaces, scores.collect(client), labs.all_labs())


def _parse(stamp: str) -> datetime | None:
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def ago(stamp: str | None, now: datetime) -> str:
    """Say how long ago an ISO 8601 time was ("12s ago"), or "not checked" for None."""
    if not stamp:
        return _("not checked")
    when = _parse(stamp)
    if when is None:
        return stamp
    seconds = max(0, int((now - when).total_seconds()))
    if seconds < 60:
        return _("{seconds}s ago").format(seconds=seconds)
    if seconds < 3600:
        return _("{minutes}m ago").format(minutes=seconds // 60)
    if seconds < 86400:
        return _("{hours}h {minutes}m ago").format(
            hours=seconds // 3600, minutes=f"{seconds % 3600 // 60:02d}"
        )
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _points(score: float, max_score: float) -> str:
    return f"{score:g}/{max_score:g}"


def render(board: Board, now: datetime, *, color: bool = False) -> str:
    """Return the board as a text table: score/max per lab, a total, and the last check."""
    if not board.rows:
        return _("no workshop participants on this cluster (start with `kubelab workshop up`)")
    header = [_("participant"), *(lab.number for lab in board.labs), _("total"), _("last check")]
    table: list[list[tuple[str, bool]]] = []  # (text, full marks)
    for row in board.rows:
        line = [(row.participant, False)]
        for lab in board.labs:
            cell = row.cells.get(lab.id)
            if cell is None:
                line.append(("", False))
            elif cell.score is None:
                line.append((NOT_CHECKED, False))
            else:
                line.append((_points(cell.score, cell.max_score), cell.score >= cell.max_score))
        line.append((_points(row.score, row.max_score), row.score >= row.max_score > 0))
        line.append((ago(row.last_checked, now), False))
        table.append(line)
    widths = [
        max(width(header[i]), *(width(line[i][0]) for line in table)) for i in range(len(header))
    ]
    out = ["  ".join(pad(h, w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for line in table:
        cells = []
        for (text, full), columns in zip(line, widths, strict=True):
            padded = pad(text, columns)
            cells.append(f"\033[32m{padded}\033[0m" if color and full else padded)
        out.append("  ".join(cells).rstrip())
    done = sum(1 for row in board.rows if row.max_score and row.score >= row.max_score)
    out.append(
        "\n"
        + _(
            "{n} participants, {done} with full marks; {mark} = not checked yet; scores are what"
            " participants' own checks reported"
        ).format(n=len(board.rows), done=done, mark=NOT_CHECKED)
    )
    return "\n".join(out)


def to_json(board: Board) -> dict[str, Any]:
    """Return the board as plain data (for `kubelab workshop status --json`)."""
    return {
        "labs": [{"id": lab.id, "max_score": lab.max_score} for lab in board.labs],
        "participants": [
            {
                "name": row.participant,
                "score": scores.number(row.score),
                "max_score": scores.number(row.max_score),
                "last_checked": row.last_checked,
                "labs": {
                    lab_id: {
                        "score": None if cell.score is None else scores.number(cell.score),
                        "max_score": scores.number(cell.max_score),
                        "checked_at": cell.checked_at,
                    }
                    for lab_id, cell in row.cells.items()
                },
            }
            for row in board.rows
        ],
    }


def watch(client: api.Api, *, interval: float, stream: TextIO | None = None) -> None:
    """Redraw the board every `interval` seconds until interrupted (Ctrl-C).

    On a terminal the board is redrawn in place; elsewhere each refresh is printed after the last.
    A refresh that fails (the API server restarting) keeps the last board and says why.
    """
    out = stream or sys.stdout
    tty = out.isatty()
    shown = ""
    while True:
        now = datetime.now(timezone.utc)
        try:
            shown = render(read(client), now, color=tty)
            note = _("updated {time}").format(time=now.astimezone().strftime("%H:%M:%S"))
        except KubelabError as err:
            note = _("refresh failed at {time}: {error}").format(
                time=now.astimezone().strftime("%H:%M:%S"), error=err
            )
        footer = _("{note} · every {seconds}s · Ctrl-C to stop").format(
            note=note, seconds=f"{interval:g}"
        )
        if tty:
            out.write("\033[H\033[2J" + shown + "\n\n" + footer + "\n")
        else:
            out.write(shown + "\n" + footer + "\n\n")
        out.flush()
        time.sleep(interval)
