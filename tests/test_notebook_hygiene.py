"""Notebooks are committed clean: valid nbformat, no outputs, no execution counts."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(
    path
    for folder in ("notebooks", "labs")
    for path in (ROOT / folder).rglob("*.ipynb")
    if ".ipynb_checkpoints" not in path.parts
)


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks found under notebooks/ or labs/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_valid_and_has_no_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    dirty = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            dirty.append(f"cell {i} has outputs")
        if cell.get("execution_count") is not None:
            dirty.append(f"cell {i} has execution_count {cell['execution_count']}")
    assert not dirty, (
        f"{path.relative_to(ROOT)} is not clean ({'; '.join(dirty)}): clear it with"
        " `jupyter nbconvert --clear-output --inplace` (or nbstripout) before committing"
    )


def test_a_notebooks_work_folder_is_named_for_it() -> None:
    """tests/cluster/test_notebooks.py removes only `work-NN` after notebook NN: other notebooks
    run at the same time in the same folder on other xdist workers."""
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        folders = set(re.findall(r"work-[0-9a-z-]+", nb.read_text()))
        assert folders <= {f"work-{nb.name[:2]}"}, (nb.name, folders)


def test_notebooks_import_graders_from_the_installed_package() -> None:
    """An installed kubelab has `kubelab.graders` only: `import graders` works in a checkout and
    nowhere else, so a learner's workspace would fail at its first cell."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        for cell in nb.cells:
            if cell.cell_type == "code":
                bare = re.findall(r"^\s*(?:import graders\b|from graders\b)", cell.source, re.M)
                assert not bare, f"{path.relative_to(ROOT)}: use `from kubelab import graders`"
