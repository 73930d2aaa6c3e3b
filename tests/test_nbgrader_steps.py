"""kubelab's sandboxed autograde steps: configured and sharing state the nbgrader way.

The bulk grader hands each `nbgrader autograde` its pipeline and the submission's spec as traitlets
configuration on the command line (kubelab/course.py `sandboxed_autograde`); the steps pass what
they learn along in nbgrader's `resources` (kubelab/instructor/sandboxed_execute.py). No cluster:
nbgrader's own application reads the settings here, as it does in a bulk run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbconvert.exporters.exporter import ResourcesDict
from traitlets.config import Config

from kubelab import course, labs
from kubelab.course import sandboxed_autograde, write_course_config
from kubelab.grading.result import CheckResult, Report
from kubelab.instructor import sandboxed_execute as steps
from kubelab.instructor.output_caps import RESOURCE_KEY as TRUNCATED_KEY
from kubelab.instructor.output_caps import is_grade_cell

LAB = labs.find("02-deployment")
NBGRADER_STEPS = [
    "IgnorePattern",
    "ClearMetadataPreprocessor",
    "LimitOutput",
    "SaveAutoGrades",
    "AssignLatePenalties",
    "CheckCellMetadata",
]

# nbgrader's own application parses the command line and loads the course's nbgrader_config.py;
# its Autograde converter then makes its exporter and registers the pipeline as it does before
# grading a notebook (nbgrader/converters/base.py `start`, autograde.py `_init_preprocessors`).
PROBE = """
import json, sys
from nbgrader.apps import NbGraderApp
from nbgrader.converters import Autograde

app = NbGraderApp()
app.initialize(sys.argv[1:])
converter = Autograde(coursedir=app.subapp.coursedir, parent=app.subapp)
converter.exporter = converter.exporter_class(parent=converter, config=converter.config)
converter._sanitizing = False
converter._init_preprocessors()
print(json.dumps([
    {"name": type(p).__name__, "spec": getattr(p, "spec", None),
     "caps": getattr(p, "max_cell_bytes", None)}
    for p in converter.exporter._preprocessors
]))
"""


def _autograde_as_nbgrader_reads_it(
    root: Path, *args: str, env: dict[str, str]
) -> list[dict[str, object]]:
    argv = [sys.executable, "-c", PROBE, "autograde", LAB.id, "--student", "s1", *args]
    proc = subprocess.run(
        argv, cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found: list[dict[str, object]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def test_the_bulk_grader_configures_its_steps_as_traitlets_settings(tmp_path: Path) -> None:
    root = tmp_path / "course"
    config = write_course_config(root)
    # The course's own settings configure a step of the pipeline: they still reach it.
    config.write_text(config.read_text() + "c = get_config()  # noqa: F821\n")
    config.write_text(config.read_text() + "c.LimitOutputBytes.max_cell_bytes = 1234\n")
    spec = tmp_path / "spec.json"
    env = {k: v for k, v in os.environ.items() if k != "KUBELAB_GRADE_SPEC"}

    run = _autograde_as_nbgrader_reads_it(root, *sandboxed_autograde(spec), env=env)

    # The sandboxed steps in place of Execute, one per job, then nbgrader's own, in its order:
    # the command line wins over the course's nbgrader_config.py, which names another pipeline.
    names = [p["name"] for p in run]
    assert names == [
        "SandboxedExecute",
        "GradeFromCluster",
        "LimitOutputBytes",
        "WriteGradingResult",
        *NBGRADER_STEPS,
    ]
    # One setting on their base class reaches every step that reads the spec.
    sandboxed = {str(p["name"]): p["spec"] for p in run if p["spec"] is not None}
    assert sandboxed == {
        "SandboxedExecute": str(spec),
        "GradeFromCluster": str(spec),
        "WriteGradingResult": str(spec),
    }
    assert [p["caps"] for p in run if p["name"] == "LimitOutputBytes"] == [1234]


def test_no_environment_variable_switches_the_pipeline(tmp_path: Path) -> None:
    root = tmp_path / "course"
    write_course_config(root)
    spec = tmp_path / "spec.json"
    # The variable the bulk grader used to set changes nothing now: without the command-line
    # settings, nbgrader runs its own steps (outputs capped in bytes after Execute).
    env = dict(os.environ, KUBELAB_GRADE_SPEC=str(spec))

    run = _autograde_as_nbgrader_reads_it(root, env=env)

    assert [p["name"] for p in run] == ["Execute", "LimitOutputBytes", *NBGRADER_STEPS]
    assert all(p["spec"] is None for p in run)


def test_the_course_config_and_the_bulk_settings_name_the_same_steps() -> None:
    config = Config()
    course.configure_nbgrader(config, root=Path("/nonexistent"))
    own = list(config.Autograde.autograde_preprocessors)
    bulk = [
        arg.partition("=")[2]
        for arg in sandboxed_autograde(Path("/s.json"))
        if arg.startswith("--Autograde.autograde_preprocessors=")
    ]
    # Only Execute differs: the same nbgrader steps around it, in the same order.
    at = own.index(course.EXECUTE)
    assert own[at:] == [course.EXECUTE, course.LIMIT_OUTPUT_BYTES, *own[at + 2 :]]
    assert bulk == [*own[:at], *course.SANDBOXED_STEPS, *own[at + 2 :]]


def _lab_notebook() -> nbformat.NotebookNode:
    nb = nbformat.read(str(LAB.directory / "lab.ipynb"), as_version=4)
    assert any(is_grade_cell(c) for c in nb.cells)
    return nb


def _resources(items: dict[str, object]) -> ResourcesDict:
    """Return nbconvert's resources as a preprocessor gets them (a missing key reads as '')."""
    resources = ResourcesDict()
    resources.update(items)
    return resources


def _spec(tmp_path: Path) -> Path:
    return steps.Spec(
        lab=LAB.id,
        student="s1",
        namespace="grade-02-s1",
        kubeconfig="/nonexistent",
        api_server="https://127.0.0.1:6443",
        wall_seconds=60,
        cell_timeout=30,
        check_timeout=10,
        result=str(tmp_path / "result.json"),
    ).write(tmp_path / "spec.json")


def test_the_result_file_is_written_from_what_earlier_steps_left(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    nb = _lab_notebook()
    first = next(c for c in nb.cells if is_grade_cell(c))
    deleted = first.metadata["nbgrader"]["grade_id"]
    nb.cells.remove(first)  # the learner deleted a grade cell
    check = CheckResult("deployment", "Deployment", True, 3, 3, "3 replicas ready")
    report = Report(LAB.id, LAB.title, "grade-02-s1", (check,))
    resources = _resources(
        {
            steps.RUN_KEY: {"status": "finished", "seconds": 1.5},
            steps.REPORT_KEY: report.to_dict(),
            steps.GRADER_ERROR_KEY: "",
            TRUNCATED_KEY: [{"cell": 3, "printed": 9, "kept": 1, "cap": 1, "per": "cell"}],
        }
    )
    config = Config()
    config.GradingStep.spec = str(spec)

    out, left = steps.WriteGradingResult(config=config).preprocess(nb, resources)

    assert out is nb and left is resources
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["run"] == {"status": "finished", "seconds": 1.5}
    assert result["report"] == report.to_dict() and result["grader_error"] == ""
    assert result["deleted_grade_cells"] == [deleted]
    assert result["truncated"] == resources[TRUNCATED_KEY]
    assert (result["student"], result["lab"], result["namespace"]) == ("s1", LAB.id, "grade-02-s1")


def test_a_step_says_which_step_or_setting_it_misses(tmp_path: Path) -> None:
    config = Config()
    config.GradingStep.spec = str(_spec(tmp_path))
    with pytest.raises(ValueError, match="GradeFromCluster must run before"):
        steps.WriteGradingResult(config=config).preprocess(
            _lab_notebook(), _resources({steps.RUN_KEY: {"status": "finished"}})
        )
    with pytest.raises(ValueError, match="SandboxedExecute must run before"):
        steps.GradeFromCluster(config=config).preprocess(_lab_notebook(), _resources({}))
    with pytest.raises(ValueError, match=r"needs GradingStep\.spec"):
        steps.SandboxedExecute().preprocess(_lab_notebook(), _resources({}))
    assert not (tmp_path / "result.json").exists()
