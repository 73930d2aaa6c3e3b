"""The package's layers hold: no module imports from a layer above its own.

The layers are an import-linter contract in pyproject.toml (`[tool.importlinter]`); this test runs
it in the suite, so `./run-tests` fails on a new upward import, in one line that names it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kubelab import paths

PYPROJECT = paths.REPO_ROOT / "pyproject.toml"
_RULE = re.compile(r"^(\S+) is not allowed to import (\S+):$")
_HOP = re.compile(r"^\s*-?\s*(\S+) -> (\S+) \(l\.([\d, ]+)\)$")


def _source(root: Path, module: str) -> str:
    """Return the file of `module` under `root`, relative to it."""
    base = Path(*module.split("."))
    package = base / "__init__.py"
    return package.as_posix() if (root / package).is_file() else f"{base.as_posix()}.py"


def broken_layers(root: Path) -> list[str]:
    """Run the import contracts of `root`'s pyproject.toml on the `kubelab` and `graders`
    packages under `root`; return one line per broken import."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; "
            "sys.exit(lint_imports_command())",
            "--no-cache",
        ],
        cwd=root,
        env=dict(os.environ, PYTHONPATH=str(root), COLUMNS="500", NO_COLOR="1", TERM="dumb"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode == 0:
        return []
    breaks: list[str] = []
    rule = ""
    chain: list[str] = []
    for line in [*proc.stdout.splitlines(), ""]:
        if m := _RULE.match(line.strip()):
            rule = f"{m.group(1)} may not import {m.group(2)}"
        elif m := _HOP.match(line):
            if line.lstrip().startswith("-") and chain:
                breaks.append(f"{' -> '.join(chain)} ({rule})")
                chain = []
            importer, imported, lines = m.groups()
            where = f"{_source(root, importer)}:{lines.split(',')[0]}"
            chain.append(f"{where} imports {imported}")
        elif not line.strip() and chain:
            breaks.append(f"{' -> '.join(chain)} ({rule})")
            chain = []
    if not breaks:  # not a broken layer: the contract itself failed (a missing module, bad TOML)
        tail = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        breaks.append(f"import-linter could not check the layers: {' '.join(tail[-3:])}")
    return sorted(breaks)


def test_the_package_keeps_its_layers() -> None:
    breaks = broken_layers(paths.REPO_ROOT)
    if breaks:
        pytest.fail("layer contract broken: " + "; ".join(breaks), pytrace=False)


@pytest.mark.parametrize(
    ("module", "bad_import", "rule"),
    [
        # the grading engine importing the workshop board, as it once did
        (
            "kubelab/grading/render.py",
            "kubelab.workshop.board",
            "kubelab.grading may not import kubelab.workshop",
        ),
        # the JSON client importing the cluster backends, as it once did
        ("kubelab/api.py", "kubelab.cluster.sim", "kubelab.api may not import kubelab.cluster"),
        # a grader importing a notebook view
        ("graders/__init__.py", "kubelab.views", "graders may not import kubelab.views"),
    ],
)
def test_an_upward_import_is_named_in_one_line(
    tmp_path: Path, module: str, bad_import: str, rule: str
) -> None:
    # A copy of the package with one upward import added at the end of `module`.
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    for package in ("kubelab", "graders"):
        shutil.copytree(
            paths.REPO_ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    path = tmp_path / module
    text = path.read_text()
    line = len(text.splitlines()) + 1
    parent, _, name = bad_import.rpartition(".")
    path.write_text(text + f"from {parent} import {name}  # noqa: E402\n")

    breaks = broken_layers(tmp_path)

    # The import itself, and chains through it where another contract sees it (graders import
    # the engine): every line ends at the bad import.
    assert f"{module}:{line} imports {bad_import} ({rule})" in breaks
    assert all(f"{module}:{line} imports {bad_import} (" in b for b in breaks)


def test_the_course_names_preprocessors_that_exist() -> None:
    # course.py names kubelab's nbgrader preprocessors as strings (it sits below the instructor
    # code): each name must import, as nbconvert will when it registers them.
    from nbconvert.preprocessors import Preprocessor
    from nbgrader.preprocessors import NbGraderPreprocessor
    from traitlets.config import Config
    from traitlets.utils.importstring import import_item

    from kubelab import course

    config = Config()
    course.configure_nbgrader(config, root=paths.REPO_ROOT)
    bulk = [
        arg.partition("=")[2]
        for arg in course.sandboxed_autograde(Path("/nonexistent/spec.json"))
        if arg.startswith("--Autograde.autograde_preprocessors=")
    ]
    for named, expected in (
        (config.Autograde.autograde_preprocessors, [course.LIMIT_OUTPUT_BYTES]),
        (bulk, course.SANDBOXED_STEPS),
    ):
        ours = [s for s in named if s.startswith("kubelab.")]
        assert ours == expected
        for name in named:
            base = NbGraderPreprocessor if name in ours else Preprocessor
            assert issubclass(import_item(name), base), name
    assert issubclass(import_item(course.GRADING_STEP), NbGraderPreprocessor)
