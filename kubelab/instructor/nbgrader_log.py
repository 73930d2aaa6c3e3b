"""nbgrader's log of one submission: kept beside its result, and read for what a person must know.

`nbgrader autograde` repairs some tampering with a warning (an edited grade cell is put back as
released; changed points are reset) and refuses other tampering with a traceback (a forged or
duplicated grade cell: "Notebook failed to validate", or a misleading "old version of the nbgrader
metadata format"). `explain` turns those lines into sentences for the gradebook and the feedback
page; the full log stays in the course folder for the instructor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

LOG_FILE = "nbgrader-autograde.log"
MAX_LOG_BYTES = 512 * 1024
_HEAD = 64 * 1024  # the start says what nbgrader did; the end, how it failed

_CHANGED = re.compile(
    r"Attribute '(?P<attr>\w+)' for cell (?P<cell>\S+) has changed! "
    r"\(should be: (?P<want>[^,]*), got: (?P<got>[^)]*)\)"
)
_UNKNOWN = re.compile(r"Cell '(?P<cell>[^']+)' does not exist in the database")
_TWICE = re.compile(r"Cell with id '(?P<cell>[^']+)' exists multiple times")
_GENERIC = (
    "There was an error processing",
    "Please see the",
    "Removing failed",
    "Traceback",
)


@dataclass
class Explanation:
    """What nbgrader's log says about a submission, in plain words."""

    notes: list[str] = field(default_factory=list)  # tampering nbgrader found (and repaired)
    refused: str = ""  # why nbgrader refused the notebook; "" when it did not

    @property
    def tampered(self) -> bool:
        """Tell whether nbgrader found grade cells changed, forged or duplicated."""
        return bool(self.notes)


def keep(text: str, folder: Path) -> Path:
    """Write nbgrader's output to `folder`/LOG_FILE, its start and end when it is too long."""
    data = text.encode(errors="replace")
    if len(data) > MAX_LOG_BYTES:
        cut = len(data) - MAX_LOG_BYTES
        marker = f"\n[... {cut:,} bytes of nbgrader's log left out by kubelab ...]\n".encode()
        data = data[:_HEAD] + marker + data[-(MAX_LOG_BYTES - _HEAD) :]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_FILE
    path.write_bytes(data)
    return path


def _kind(cell: str, tasks: set[str]) -> str:
    return "grade cell" if cell in tasks else "locked cell"


def _notes(text: str, tasks: set[str]) -> list[str]:
    notes: list[str] = []
    for line in text.splitlines():
        if found := _CHANGED.search(line):
            cell, attr = found["cell"], found["attr"]
            what = f"the notebook's {_kind(cell, tasks)} `{cell}`"
            if attr == "checksum":
                note = f"{what} was changed"
            elif attr == "points":
                note = (
                    f"the points of {what} were changed ({found['got']} instead of {found['want']})"
                )
            else:
                note = f"{what} had its nbgrader metadata changed ({attr})"
        elif found := _UNKNOWN.search(line):
            note = (
                f"the notebook has a cell claiming to be grade cell `{found['cell']}`, which the "
                "released lab does not have (a forged grade cell)"
            )
        elif found := _TWICE.search(line):
            note = f"the notebook's grade cell `{found['cell']}` appears more than once (copied)"
        else:
            continue
        if note not in notes:
            notes.append(note)
    return notes


def _last_error(text: str) -> str:
    """Return nbgrader's last specific error line (not its generic ones)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "| ERROR]" in line:
            message = line.split("| ERROR]", 1)[1].strip()
            if message and not message.startswith(_GENERIC):
                return message
    for line in reversed(lines):  # a traceback's last line: "SomeError: what"
        if re.match(r"^[\w.]+(Error|Exception): ", line):
            return line
    return ""


def explain(text: str, tasks: set[str], *, failed: bool) -> Explanation:
    """Read nbgrader's output; `tasks` are the lab's grade cell ids, `failed` whether it failed."""
    found = Explanation(_notes(text, tasks))
    if not failed:
        return found
    error = _last_error(text)
    if "use an old version" in error or "use an newer version" in error:
        # nbgrader's schema check fires when a cell's grading metadata was wiped or forged
        error = "the notebook's nbgrader metadata is not what was released"
    if found.tampered:
        found.refused = (
            "; ".join(found.notes)
            + "; nbgrader refuses notebooks with altered or forged grade cells"
            + (f" ({error.rstrip('.')})" if error else "")
        )
    else:
        found.refused = f"nbgrader autograde failed: {error}" if error else ""
    return found
