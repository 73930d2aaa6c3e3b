"""One row of `kubelab cluster check`: a requirement, what was found, its status, what to do."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from kubelab.i18n import N_, _

# The statuses are compared as they are; the table shows them translated.
OK = N_("ok")
WARN = N_("warn")  # works, with limits the row names
MISSING = N_("missing")  # the course needs it: install it (often `kubelab cluster prepare` can)
NO_ACCESS = N_("no access")  # these credentials may not look: needs cluster-admin
FAILING = (MISSING, NO_ACCESS)

NEEDS_ADMIN = N_("needs cluster-admin")


@dataclass(frozen=True)
class Finding:
    """What one requirement looks like on this cluster."""

    requirement: str
    found: str
    status: str
    todo: str = ""

    @property
    def failing(self) -> bool:
        """Tell whether this row keeps the cluster from being ready for the course."""
        return self.status in FAILING


def table(findings: Iterable[Finding]) -> str:
    """Render the findings as an aligned table, one line per requirement."""
    rows = [(_("REQUIREMENT"), _("FOUND"), _("STATUS"), _("WHAT TO DO"))]
    rows += [(f.requirement, _one_line(f.found), _(f.status), _one_line(f.todo)) for f in findings]
    widths = [max(width(r[i]) for r in rows) for i in range(3)]
    lines = []
    for r in rows:
        cells = [pad(r[i], widths[i]) for i in range(3)] + [r[3]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def width(text: str) -> int:
    """Return how many terminal columns `text` takes (a Chinese character takes two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, columns: int) -> str:
    """Return `text` padded with spaces to `columns` terminal columns (`str.ljust` by width)."""
    return text + " " * (columns - width(text))


def _one_line(text: str) -> str:
    return " ".join(text.split())
