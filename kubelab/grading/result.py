"""What a grading run produces: one result per check, and the report that holds them.

The JSON form is a contract (the CLI's ``--json``, the workshop board and instructors' gradebooks
read it), so its shape is fixed here and nowhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

NOT_CONVERGED = "not-converged"


def _number(value: float) -> int | float:
    """Return whole numbers as int so JSON shows 3, not 3.0."""
    return int(value) if float(value).is_integer() else round(value, 2)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: passed or not, points, what was seen, and what to do next."""

    id: str
    title: str
    passed: bool
    points: float
    max_points: float
    message: str
    # Every failed requirement of the check's verdict as (what was seen, its own hint); `message`
    # joins them and `hint` is the first one's (with the docs link). Empty without a verdict.
    problems: tuple[tuple[str, str], ...] = field(default=(), kw_only=True)
    hint: str | None = None
    # The cluster did not settle before the deadline, so nothing was judged: a grading error
    # (graded again), never a failed requirement.
    not_converged: bool = False

    @property
    def outcome(self) -> str:
        """Return "passed", "failed" or "not-converged"."""
        if self.not_converged:
            return NOT_CONVERGED
        return "passed" if self.passed else "failed"

    def to_dict(self) -> dict[str, Any]:
        """Return the result in the JSON contract's shape."""
        return {
            "id": self.id,
            "title": self.title,
            "passed": self.passed,
            "outcome": self.outcome,
            "points": _number(self.points),
            "max_points": _number(self.max_points),
            "message": self.message,
            "hint": self.hint,
            "problems": [{"message": m, "hint": h} for m, h in self.problems],
        }


@dataclass(frozen=True)
class Report:
    """All results of one grading run of a lab in a namespace."""

    lab: str
    title: str
    namespace: str
    checks: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def score(self) -> float:
        """Return the points earned."""
        return sum(c.points for c in self.checks)

    @property
    def max_score(self) -> float:
        """Return the points available in the checks that ran."""
        return sum(c.max_points for c in self.checks)

    @property
    def passed(self) -> bool:
        """Tell whether every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def not_converged(self) -> tuple[str, ...]:
        """Return the ids of the checks that could not be judged (the cluster did not settle)."""
        return tuple(c.id for c in self.checks if c.not_converged)

    def to_dict(self) -> dict[str, Any]:
        """Return the report in the JSON contract's shape."""
        return {
            "lab": self.lab,
            "namespace": self.namespace,
            "score": _number(self.score),
            "max_score": _number(self.max_score),
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_json(self) -> str:
        """Return the report as JSON text."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, title: str = "") -> Report:
        """Read a report back from its JSON contract (the lab title is not part of it)."""
        checks = tuple(
            CheckResult(
                id=str(c["id"]),
                title=str(c["title"]),
                passed=bool(c["passed"]),
                points=float(c["points"]),
                max_points=float(c["max_points"]),
                message=str(c["message"]),
                problems=tuple((str(p["message"]), str(p["hint"])) for p in c.get("problems", [])),
                hint=c.get("hint"),
                not_converged=c.get("outcome") == NOT_CONVERGED,
            )
            for c in data["checks"]
        )
        return cls(str(data["lab"]), title, str(data["namespace"]), checks)

    def _repr_html_(self) -> str:
        """Render as an HTML scorecard in Jupyter."""
        from kubelab.grading.render import html

        return html(self)

    def __str__(self) -> str:
        from kubelab.grading.render import text

        return text(self, color=False)
