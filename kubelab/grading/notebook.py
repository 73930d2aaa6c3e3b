"""The learner's grading API inside a notebook: ``grader = graders.load("02-deployment")``.

`check` and `check_all` show a scorecard; `require` is for nbgrader grade cells. Nothing here
writes to stderr, because nbgrader scores a grade cell with any stderr output as zero; and errors
show as one line (`_render_traceback_`), not a traceback wall.
"""

from __future__ import annotations

import sys

from kubelab import api, lab_namespaces, labs
from kubelab import apply as _apply
from kubelab.grading import runner, saved_progress
from kubelab.grading.result import Report
from kubelab.i18n import _


class TaskFailed(Exception):
    """A required task earned no points; shown in a notebook as one red line."""

    def _render_traceback_(self) -> list[str]:
        """Show one line instead of a traceback (IPython hook)."""
        return [f"\033[31m✘ {self}\033[0m"]


class NotConverged(TaskFailed):
    """A required task could not be judged: the cluster did not settle before the deadline."""

    def _render_traceback_(self) -> list[str]:
        """Show one line instead of a traceback (IPython hook)."""
        return [f"\033[36m⧖ {self}\033[0m"]


def _show(report: Report) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:  # plain Python: print the table instead
        print(report)
        return
    if get_ipython() is None:
        print(report)
    else:
        display(HTML(report._repr_html_()))  # type: ignore[no-untyped-call]


class LabGrader:
    """Grades one lab in one namespace; results are also saved as the learner's progress."""

    def __init__(
        self,
        lab: labs.Lab,
        *,
        namespace: str | None = None,
        kubeconfig: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.lab = lab
        self.namespace = namespace or lab_namespaces.default_namespace(lab.namespace, kubeconfig)
        self.kubeconfig = kubeconfig
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<grader for {self.lab.id} in namespace {self.namespace}>"

    def _run(self, only: list[str] | None) -> Report:
        report = runner.run(
            self.lab,
            namespace=self.namespace,
            only=only,
            timeout=self.timeout,
            kubeconfig=self.kubeconfig,
            stream=sys.stdout,
        )
        saved_progress.record(report, kubeconfig=self.kubeconfig)
        return report

    def setup(self) -> str:
        """Create the lab namespace if it does not exist yet (never deletes anything)."""
        client = api.Api(self.kubeconfig)
        try:
            created = lab_namespaces.ensure(client, self.lab, self.namespace)
        finally:
            client.close()
        said = (
            _("namespace {namespace} created") if created else _("namespace {namespace} is ready")
        )
        print(said.format(namespace=self.namespace))
        return self.namespace

    def reset(self) -> str:
        """Return the lab namespace to its start state (your files are not touched)."""
        client = api.Api(self.kubeconfig)
        try:
            return lab_namespaces.reset(client, self.lab, self.namespace, stream=sys.stdout)
        finally:
            client.close()

    def apply(self, target: str) -> None:
        """Apply a manifest file, folder or Kustomize folder into the lab namespace."""
        for line in _apply.apply(target, namespace=self.namespace, kubeconfig=self.kubeconfig):
            print(line)

    def check(self, task_id: str) -> Report:
        """Run the check of one task and return its scorecard."""
        self.lab.task(task_id)
        return self._run([task_id])

    def check_all(self) -> Report:
        """Run every check of the lab and return the scorecard."""
        return self._run(None)

    def require(self, task_id: str) -> float:
        """For nbgrader grade cells: show the result, fail the cell on zero, return the points."""
        report = self.check(task_id)
        _show(report)
        result = report.checks[0]
        if result.not_converged:
            raise NotConverged(
                _("{task}: {message}. Run this cell again.").format(
                    task=task_id, message=result.message
                )
            )
        if result.points <= 0:
            raise TaskFailed(
                _("{task}: 0/{points} points. {message}").format(
                    task=task_id, points=f"{result.max_points:g}", message=result.message
                )
            )
        return result.points


def load(
    lab: str,
    *,
    namespace: str | None = None,
    kubeconfig: str | None = None,
    timeout: float | None = None,
) -> LabGrader:
    """Return the grader of a lab ("02-deployment" or "02")."""
    return LabGrader(labs.find(lab), namespace=namespace, kubeconfig=kubeconfig, timeout=timeout)
