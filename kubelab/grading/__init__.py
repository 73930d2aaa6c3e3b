"""Grading labs against live cluster state: checks, the runner, reports and saved progress.

Grader modules import `Checks`, `Context`, `Verdict` from here; learners use `graders.load`.
The names are loaded on first use: `kubelab labs` reads saved progress from this package and must
not pay for the kubernetes client (0.2-0.3 s) that checks and contexts import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubelab.grading.checks import Checks, Missing, Verdict
    from kubelab.grading.context import Context
    from kubelab.grading.result import CheckResult, Report

__all__ = ["CheckResult", "Checks", "Context", "Missing", "Report", "Verdict"]

_HOME = {
    "Checks": "checks",
    "Missing": "checks",
    "Verdict": "checks",
    "Context": "context",
    "CheckResult": "result",
    "Report": "result",
}


def __getattr__(name: str) -> Any:
    """Import `name` from its module the first time it is asked for."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value
