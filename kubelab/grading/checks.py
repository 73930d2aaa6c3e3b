"""How a lab's grader module declares its checks, and what a check returns.

A grader module (``graders/labNN_slug.py``) creates ``checks = Checks("NN-slug")`` and decorates
one function per task. Each function reads the cluster through a `Context` and returns a
`Verdict`: every requirement it tested, met or not, with expected vs observed and a hint. The
runner turns the verdict into points, so partial credit follows from the requirements met.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubelab.api import Resource
    from kubelab.grading.context import Context


class Missing(Exception):
    """An object a check needs does not exist; the check fails with this message and hint.

    `resource` and `name` say which object, when known: the runner then looks for it in the
    other namespaces (a learner who applied without -n finds it in `default`)."""

    def __init__(
        self, message: str, hint: str, *, resource: Resource | None = None, name: str = ""
    ) -> None:
        super().__init__(message)
        self.hint = hint
        self.resource = resource
        self.name = name


@dataclass
class Verdict:
    """The requirements one check tested; each failed one keeps its message and hint."""

    success: str = ""
    total: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)

    def expect(self, ok: bool, problem: str, hint: str) -> bool:
        """Record one requirement; `problem` says expected vs observed, `hint` the next step."""
        self.total += 1
        if not ok:
            self.problems.append((problem, hint))
        return ok

    def ok(self, message: str) -> Verdict:
        """Set the message shown when every requirement is met, and return the verdict."""
        self.success = message
        return self

    @property
    def met(self) -> int:
        """Return how many requirements were met."""
        return self.total - len(self.problems)


CheckFn = Callable[["Context"], Verdict]


@dataclass(frozen=True)
class Check:
    """One registered check: the task it grades, its function and its reference page."""

    task_id: str
    fn: CheckFn
    docs: str


class Checks:
    """The checks of one lab, keyed by task id (which is also the nbgrader grade_id)."""

    def __init__(self, lab_id: str) -> None:
        self.lab_id = lab_id
        self.by_task: dict[str, Check] = {}

    def check(self, task_id: str, *, docs: str) -> Callable[[CheckFn], CheckFn]:
        """Register the decorated function as the check for `task_id`."""

        def register(fn: CheckFn) -> CheckFn:
            if task_id in self.by_task:
                raise ValueError(f"{self.lab_id}: two checks for task {task_id}")
            self.by_task[task_id] = Check(task_id, fn, docs)
            return fn

        return register
