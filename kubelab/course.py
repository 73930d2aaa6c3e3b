"""The course as nbgrader sees it: labs are assignments, starter manifests are answers.

`nbgrader_config.py` at the repository root calls `configure_nbgrader`; tests call it with a
temporary course root, so the settings that make the round trip work live in one place.

Those settings run notebooks in-process, as nbgrader does, for an instructor's own trusted runs.
kubelab's bulk grader runs `nbgrader autograde` once per submission with `sandboxed_autograde`'s
settings on the command line, which traitlets ranks above every config file: the sandboxed steps
in place of `Execute`, and the submission's spec for them. Nothing travels in the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubelab import paths


def starter_files(labs_dir: Path) -> dict[str, list[str]]:
    """Return, per lab, the starter files a learner edits (relative to the lab folder)."""
    return {
        lab.name: sorted(
            f.relative_to(lab).as_posix() for f in (lab / "starter").rglob("*") if f.is_file()
        )
        for lab in sorted(labs_dir.glob("[0-9][0-9]-*"))
        if (lab / "starter").is_dir()
    }


def configure_nbgrader(c: Any, *, root: Path, labs_dir: Path = paths.LABS_DIR) -> None:
    """Apply kubelab's nbgrader settings to the traitlets config `c`."""
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.source_directory = str(labs_dir)
    # Each lab has one notebook, lab.ipynb (nbgrader's default "*" would make a translated twin,
    # lab.zh-CN.ipynb, a second notebook of the assignment; `ignore` below keeps it unreleased).
    c.CourseDirectory.notebook_id = "lab"
    # Never released: reference answers, caches, feedback.
    c.CourseDirectory.ignore = [
        ".ipynb_checkpoints",
        "*.pyc",
        "__pycache__",
        "feedback",
        "solution",
        # A lab's translated notebooks (lab.zh-CN.ipynb) are the learner's language edition of
        # lab.ipynb, not a second notebook of the assignment.
        "lab.*.ipynb",
    ]
    # A learner's answers are the manifests under starter/: autograde must grade theirs instead of
    # putting the released copies back (nbgrader overwrites files that exist in the source).
    c.Autograde.exclude_overwriting = starter_files(labs_dir)
    # Answers here are manifests and kubectl commands, so a cleared answer must be harmless.
    c.ClearSolutions.code_stub = {"python": "# YOUR ANSWER HERE"}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    # Grade cells wait for rollouts: give every cell room, but not forever.
    c.Execute.timeout = 300
    # nbgrader's own autograde steps, with outputs capped in bytes right after execution (its
    # LimitOutput counts lines only).
    c.Autograde.autograde_preprocessors = _in_place_of_execute([EXECUTE, LIMIT_OUTPUT_BYTES])


# kubelab's own preprocessors are named, not imported: nbconvert imports a named one when it
# registers it, and this module stays below the instructor code that defines them.
_STEPS = "kubelab.instructor.sandboxed_execute"
EXECUTE = "nbgrader.preprocessors.Execute"
GRADING_STEP = f"{_STEPS}.GradingStep"  # the sandboxed steps' base: its `spec` reaches them all
SANDBOXED_EXECUTE = f"{_STEPS}.SandboxedExecute"
GRADE_FROM_CLUSTER = f"{_STEPS}.GradeFromCluster"
LIMIT_OUTPUT_BYTES = "kubelab.instructor.output_caps.LimitOutputBytes"
WRITE_GRADING_RESULT = f"{_STEPS}.WriteGradingResult"
# In place of Execute, one preprocessor per job: run, score from the cluster, cap, record.
SANDBOXED_STEPS = [SANDBOXED_EXECUTE, GRADE_FROM_CLUSTER, LIMIT_OUTPUT_BYTES, WRITE_GRADING_RESULT]


def _in_place_of_execute(steps: list[str]) -> list[str]:
    """Return nbgrader's autograde preprocessors by name, with `steps` in place of Execute."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    names: list[str] = []
    for step in Autograde.class_traits()["autograde_preprocessors"].default():
        names += steps if step is Execute else [f"{step.__module__}.{step.__qualname__}"]
    return names


def sandboxed_autograde(spec: Path) -> list[str]:
    """Return the command-line settings of one `nbgrader autograde` run by kubelab's bulk grader:
    the sandboxed steps in place of nbgrader's Execute, configured with the submission's `spec`."""
    steps = _in_place_of_execute(SANDBOXED_STEPS)
    return [
        *(f"--Autograde.autograde_preprocessors={step}" for step in steps),
        f"--{GRADING_STEP.rpartition('.')[2]}.spec={spec}",
    ]


def write_course_config(root: Path, labs_dir: Path = paths.LABS_DIR) -> Path:
    """Make `root` an nbgrader course over `labs_dir` (writes its nbgrader_config.py)."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "nbgrader_config.py"
    config.write_text(
        '"""nbgrader course made by kubelab: every lab in labs/ is an assignment."""\n'
        "from pathlib import Path\n\n"
        "from kubelab.course import configure_nbgrader\n\n"
        f"configure_nbgrader(get_config(), root=Path({str(root)!r}),"
        f" labs_dir=Path({str(labs_dir)!r}))  # type: ignore[name-defined]  # noqa: F821\n"
    )
    return config
