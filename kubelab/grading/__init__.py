"""Grading labs against live cluster state: checks, the runner, reports and saved progress.

Grader modules import `Checks`, `Context`, `Verdict` from here; learners use `graders.load`.
"""

from kubelab.grading.checks import Checks, Missing, Verdict
from kubelab.grading.context import Context
from kubelab.grading.result import CheckResult, Report

__all__ = ["CheckResult", "Checks", "Context", "Missing", "Report", "Verdict"]
