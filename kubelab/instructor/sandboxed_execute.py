"""nbgrader's execute step, replaced: run the submission in the sandbox, then grade the cluster.

`kubelab grade autograde` runs `nbgrader autograde` once per submission with these preprocessors
in place of nbgrader's `Execute`, one per job, in this order (kubelab/course.py names them):

1. `SandboxedExecute` copies the submission to a throwaway work folder and runs it, cell by cell,
   inside the sandbox (kubelab/sandbox/), as the submission's confined ServiceAccount; the
   notebook keeps the outputs (and which cells ran), `resources` how the run ended;
2. `GradeFromCluster` runs a fresh `kubelab check --json` in a second sandbox, in that work folder:
   scores come from the cluster's state, never from what the learner's kernel printed (a kernel
   can redefine `grader.require`). It rewrites every grade cell's output from that report, so
   nbgrader records those points and the feedback shows each check's message and hint; a grade
   cell the run never reached (time limit, dead kernel) gets an error output and 0, as nbgrader
   would give it;
3. `LimitOutputBytes` (kubelab/instructor/output_caps.py) caps every other cell's outputs in bytes;
4. `WriteGradingResult` writes the outcome to the submission's result file, which the gradebook
   reads: with what was cut, and which grade cells the notebook no longer has.

They share what one step learns with the next through nbgrader's `resources` dict (the keys
below). What they need arrives as traitlets configuration, as for any nbgrader preprocessor:
`GradingStep.spec`, the path of a JSON file written by kubelab/instructor/bulk.py, set on
nbgrader's command line for that one run (`--GradingStep.spec=...`), which also names the pipeline.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from kubelab import labs, sandbox
from kubelab.grading.result import Report
from kubelab.instructor.notebook_runner import STATUS_KEY
from kubelab.instructor.output_caps import RESOURCE_KEY as TRUNCATED_KEY
from kubelab.instructor.output_caps import is_grade_cell

_IN, _OUT = ".kubelab-submitted.ipynb", ".kubelab-executed.ipynb"
MAX_NOTEBOOK_BYTES = 64 * 2**20  # an executed lab notebook is well under 1 MiB

# resources[...]: what one step hands to the next (all JSON-ready but the work folder)
WORK_KEY = "kubelab_work"  # tempfile.TemporaryDirectory: the submission's copy, as the run left it
RUN_KEY = "kubelab_run"  # how the run ended: {"status", "message"?, "seconds", ...}
REPORT_KEY = "kubelab_report"  # the cluster's report, as `Report.to_dict()`, or None
GRADER_ERROR_KEY = "kubelab_grader_error"  # why there is no report ("" when there is one)


@dataclass(frozen=True)
class Spec:
    """One submission's grading settings, handed from the bulk grader to nbgrader's process."""

    lab: str
    student: str
    namespace: str
    kubeconfig: str  # confined credentials on the instructor's disk, bound read-only
    api_server: str
    wall_seconds: float
    cell_timeout: int
    check_timeout: float
    result: str  # where the outcome JSON goes
    gateway_url: str = ""  # kind: the cluster's Gateway, relayed into the sandbox ("" on sim)

    def write(self, path: Path) -> Path:
        """Save the spec as JSON."""
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def read(cls, path: str | Path) -> Spec:
        """Load a spec written by `write`."""
        return cls(**json.loads(Path(path).read_text()))


def _sandbox_env(spec: Spec, **extra: str) -> dict[str, str]:
    if spec.gateway_url:  # graders send their requests to the relay, not to the real address
        extra["KUBELAB_GATEWAY_URL"] = sandbox.inside_url(spec.gateway_url)
    return sandbox.base_env(
        KUBECONFIG=sandbox.KUBECONFIG,
        KUBELAB_NAMESPACE=spec.namespace,
        NBGRADER_EXECUTION="autograde",
        PYTHONDONTWRITEBYTECODE="1",
        MPLBACKEND="Agg",
        **extra,
    )


def _last_json_line(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        return found if isinstance(found, dict) else None
    return None


def _execute(spec: Spec, nb: NotebookNode, work: Path) -> tuple[NotebookNode, dict[str, Any]]:
    """Run the notebook in the sandbox; return the executed notebook and how the run ended."""
    nbformat.write(nb, str(work / _IN))
    started = time.monotonic()
    ran = sandbox.run(
        [
            sys.executable,
            "-m",
            "kubelab.instructor.notebook_runner",
            _IN,
            _OUT,
            "--cell-timeout",
            str(spec.cell_timeout),
        ],
        workdir=work,
        api_server=spec.api_server,
        env=_sandbox_env(spec),
        ro_files={sandbox.KUBECONFIG: Path(spec.kubeconfig)},
        limits=sandbox.Limits(wall_seconds=spec.wall_seconds),
        gateway=spec.gateway_url or None,
    )
    outcome = _last_json_line(ran.stdout) or {}
    if ran.timed_out:
        outcome = {"status": "timeout", "message": f"time limit of {spec.wall_seconds:g}s"}
    elif not outcome:
        tail = (ran.stderr.strip().splitlines() or ["no output"])[-1][:300]
        outcome = {"status": "crashed", "message": f"exit {ran.returncode}: {tail}"}
    outcome["seconds"] = round(time.monotonic() - started, 1)
    # The executed copy was written inside the sandbox, so take only its outputs (and which cells
    # ran): sources and nbgrader metadata (points, grade ids) stay the ones nbgrader gave us.
    try:
        out = work / _OUT
        if out.stat().st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError("too large")
        executed = nbformat.read(str(out), as_version=4)
        if [c.cell_type for c in executed.cells] != [c.cell_type for c in nb.cells]:
            raise ValueError("cells changed")
    except Exception:  # never written, or mangled by the learner's code: keep no output
        return nb, outcome
    for mine, theirs in zip(nb.cells, executed.cells, strict=True):
        if mine.cell_type == "code":
            mine.outputs = theirs.get("outputs", [])
            mine.execution_count = theirs.get("execution_count")
            if theirs.get("metadata", {}).get(STATUS_KEY):
                mine.metadata[STATUS_KEY] = True
    return nb, outcome


def _check(spec: Spec, work: Path) -> tuple[Report | None, str]:
    """Grade the namespace with a fresh kubelab process in a fresh sandbox."""
    extra = {}
    controller = work / "starter" / "controller.py"  # lab 01 grades the learner's controller
    if controller.is_file():
        extra["KUBELAB_CONTROLLER"] = f"{sandbox.WORK}/starter/controller.py"
    argv = [sys.executable, "-I", "-m", "kubelab", "check", spec.lab, "-n", spec.namespace]
    argv += ["--json", "--timeout", f"{spec.check_timeout:g}"]
    ran = sandbox.run(
        argv,
        workdir=work,
        api_server=spec.api_server,
        env=_sandbox_env(spec, **extra),
        ro_files={sandbox.KUBECONFIG: Path(spec.kubeconfig)},
        limits=sandbox.Limits(wall_seconds=spec.check_timeout * 3 + 60),
        gateway=spec.gateway_url or None,
    )
    try:
        data = json.loads(ran.stdout)
        return Report.from_dict(data, title=labs.find(spec.lab).title), ""
    except (ValueError, KeyError, TypeError):
        why = "time limit" if ran.timed_out else (ran.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"the grader could not finish: {why[:300]}"


def _error(ename: str, text: str) -> NotebookNode:
    output: NotebookNode = nbformat.v4.new_output(
        "error", ename=ename, evalue=text, traceback=[f"\x1b[31m✘ {text}\x1b[0m"]
    )
    return output


def grade_cell_outputs(
    task: str, reached: bool, report: Report | None, why: str
) -> list[NotebookNode]:
    """Return the outputs a grade cell gets: the cluster's verdict, or why there is none."""
    if not reached:
        return [_error("NotRun", f"{task}: not run, the notebook stopped before this cell ({why})")]
    result = next((c for c in report.checks if c.id == task), None) if report else None
    if report is None or result is None:
        return [_error("NotGraded", f"{task}: not graded: {why or 'no result for this task'}")]
    card = Report(report.lab, report.title, report.namespace, (result,))
    outputs = [nbformat.v4.new_output("display_data", data={"text/html": card._repr_html_()})]
    if result.not_converged:  # nbgrader has no "ungraded": 0 here, the gradebook row says why
        outputs.append(_error("NotConverged", f"{task}: not graded: {result.message}"))
    elif result.points > 0:
        outputs.append(
            nbformat.v4.new_output(
                "execute_result", data={"text/plain": f"{result.points:g}"}, execution_count=None
            )
        )
    else:
        outputs.append(_error("TaskFailed", f"{task}: 0/{result.max_points:g}. {result.message}"))
    return outputs


def _apply_report(
    nb: NotebookNode, outcome: dict[str, Any], report: Report | None, why: str
) -> None:
    stopped = outcome.get("status", "finished") != "finished"
    reason = f"{outcome.get('status')}: {outcome.get('message', '')}".strip(": ")
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code" or not is_grade_cell(cell) or not grade_id:
            continue  # nbgrader refuses a grade cell without an id before this runs
        ran = bool(cell.metadata.get(STATUS_KEY)) or not stopped
        cell.outputs = grade_cell_outputs(grade_id, ran, report, why or reason)


def _grade_ids(nb: NotebookNode) -> list[str]:
    return [
        str(c.metadata["nbgrader"]["grade_id"])
        for c in nb.cells
        if is_grade_cell(c) and c.metadata["nbgrader"].get("grade_id")
    ]


def grading_result(
    spec: Spec,
    nb: NotebookNode,
    outcome: dict[str, Any],
    report: dict[str, Any] | None,
    why: str,
    truncated: list[dict[str, Any]],
) -> dict[str, Any]:
    """Return the result file's content for a graded notebook (`report` as `Report.to_dict()`)."""
    present = _grade_ids(nb)
    return {
        "student": spec.student,
        "lab": spec.lab,
        "namespace": spec.namespace,
        "run": outcome,
        "grader_error": why,
        "report": report,
        "reached": [
            c.metadata["nbgrader"]["grade_id"]
            for c in nb.cells
            if is_grade_cell(c)
            and c.metadata["nbgrader"].get("grade_id")
            and not (c.outputs and c.outputs[0].get("ename") == "NotRun")
        ],
        "deleted_grade_cells": [t.id for t in labs.find(spec.lab).tasks if t.id not in present],
        "truncated": truncated,
    }


class GradingStep(NbGraderPreprocessor):  # type: ignore[misc]
    """Base of kubelab's sandboxed autograde steps: the submission they grade, as configuration.

    Set once for all of them: ``--GradingStep.spec=<path>`` (traitlets applies a class's
    settings to its subclasses).
    """

    spec = Unicode(
        "", help="Path of the submission's grading spec (JSON), written by kubelab's bulk grader"
    ).tag(config=True)

    def read_spec(self) -> Spec:
        """Load the configured spec; fail in one line when there is none."""
        if not self.spec:
            raise ValueError(
                f"{type(self).__name__} needs GradingStep.spec: run it through "
                "`kubelab grade autograde`, not plain `nbgrader autograde`"
            )
        return Spec.read(self.spec)


def _handed(resources: Any, key: str, by: str) -> Any:
    """Return what an earlier step left in `resources` (nbconvert's resources answer '' for a
    missing key: say which step did not run instead)."""
    if key not in resources:
        raise ValueError(f"resources[{key!r}] is missing: {by} must run before this step")
    return resources[key]


class SandboxedExecute(GradingStep):
    """nbgrader preprocessor: run the notebook in the sandbox instead of in-process."""

    def preprocess(self, nb: NotebookNode, resources: Any) -> tuple[NotebookNode, Any]:
        """Run a work copy of the submission; keep its outputs, and the work folder for the next
        step, in `resources`."""
        spec = self.read_spec()
        tmp = tempfile.TemporaryDirectory(prefix="kubelab-grade-")
        try:
            work = Path(tmp.name) / "work"
            # symlinks=True: a link in a submission must never pull an instructor's file in.
            shutil.copytree(Path(resources["metadata"]["path"]), work, symlinks=True)
            executed, outcome = _execute(spec, nb, work)
        except BaseException:
            tmp.cleanup()
            raise
        resources[WORK_KEY] = tmp
        resources[RUN_KEY] = outcome
        return executed, resources


class GradeFromCluster(GradingStep):
    """nbgrader preprocessor: score the namespace afresh and write the scores into grade cells."""

    def preprocess(self, nb: NotebookNode, resources: Any) -> tuple[NotebookNode, Any]:
        """Check the cluster from the work folder `SandboxedExecute` left, then remove it."""
        spec = self.read_spec()
        with _handed(resources, WORK_KEY, "SandboxedExecute") as tmp:
            report, why = _check(spec, Path(tmp) / "work")
        del resources[WORK_KEY]
        _apply_report(nb, _handed(resources, RUN_KEY, "SandboxedExecute"), report, why)
        resources[REPORT_KEY] = report.to_dict() if report else None
        resources[GRADER_ERROR_KEY] = why
        return nb, resources


class WriteGradingResult(GradingStep):
    """nbgrader preprocessor: write the submission's result file, which the gradebook reads."""

    def preprocess(self, nb: NotebookNode, resources: Any) -> tuple[NotebookNode, Any]:
        """Write what the steps before found (run, report, cuts) and which grade cells are gone."""
        spec = self.read_spec()
        result = grading_result(
            spec,
            nb,
            _handed(resources, RUN_KEY, "SandboxedExecute"),
            _handed(resources, REPORT_KEY, "GradeFromCluster"),
            _handed(resources, GRADER_ERROR_KEY, "GradeFromCluster"),
            resources.get(TRUNCATED_KEY, []),  # none when LimitOutputBytes is switched off
        )
        Path(spec.result).write_text(json.dumps(result, indent=2))
        return nb, resources
