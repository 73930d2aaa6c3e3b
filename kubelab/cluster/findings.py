"""One row of `kubelab cluster check`: a requirement, what was found, its status, what to do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

OK = "ok"
WARN = "warn"  # works, with limits the row names
MISSING = "missing"  # the course needs it: install it (often `kubelab cluster prepare` can)
NO_ACCESS = "no access"  # these credentials may not look: needs cluster-admin
FAILING = (MISSING, NO_ACCESS)

NEEDS_ADMIN = "needs cluster-admin"


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
    rows = [("REQUIREMENT", "FOUND", "STATUS", "WHAT TO DO")]
    rows += [(f.requirement, _one_line(f.found), f.status, _one_line(f.todo)) for f in findings]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for r in rows:
        cells = [r[i].ljust(widths[i]) for i in range(3)] + [r[3]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(text.split())
