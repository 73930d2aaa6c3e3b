"""Every lab has the same shape, and its ids agree everywhere: lab.yaml, grader, nbgrader cells."""

from __future__ import annotations

import json

import pytest
import yaml

from kubelab import labs, paths
from kubelab.grading import runner

LABS = labs.all_labs()


def test_labs_exist_in_course_order() -> None:
    assert [lab.id for lab in LABS] == sorted(lab.id for lab in LABS)
    assert "02-deployment" in [lab.id for lab in LABS]


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_lab_folder_shape(lab: labs.Lab) -> None:
    for name in ("README.md", "lab.yaml", "lab.ipynb"):
        assert (lab.directory / name).is_file(), name
    for name in ("starter", "solution"):
        assert (lab.directory / name).is_dir(), name


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_check_ids_equal_task_ids_equal_grade_ids(lab: labs.Lab) -> None:
    checks = runner.load_checks(lab)  # raises if the grader's ids differ from lab.yaml's
    assert list(checks.by_task) == [t.id for t in lab.tasks]
    nb = json.loads((lab.directory / "lab.ipynb").read_text())
    grades = [
        (c["metadata"]["nbgrader"]["grade_id"], c["metadata"]["nbgrader"]["points"])
        for c in nb["cells"]
        if c["metadata"].get("nbgrader", {}).get("grade")
    ]
    assert grades == [(t.id, t.points) for t in lab.tasks]


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_every_task_has_a_marked_gap_in_the_starter(lab: labs.Lab) -> None:
    files = sorted((lab.directory / "starter").rglob("*"))
    starter = "\n".join(p.read_text() for p in files if p.suffix in (".yaml", ".py"))
    for task in lab.tasks:
        assert f"TODO({task.id})" in starter, task.id


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_readme_names_every_task(lab: labs.Lab) -> None:
    readme = (lab.directory / "README.md").read_text()
    for task in lab.tasks:
        assert f"`{task.id}`" in readme, task.id


def test_the_labs_index_lists_every_lab_with_its_namespace_tasks_and_points() -> None:
    index = (paths.LABS_DIR / "README.md").read_text()
    rows = {
        cells[0]: cells[1:]
        for line in index.splitlines()
        if line.startswith("| [")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    expected = {
        f"[{lab.id}]({lab.id}/)": [lab.namespace, str(len(lab.tasks)), str(lab.max_score)]
        for lab in LABS
    }
    assert rows == expected


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_the_course_map_in_the_readme_names_every_task(lab: labs.Lab) -> None:
    readme = (paths.REPO_ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if f"](labs/{lab.id}/)" in line)
    assert all(f"`{t.id}`" in row for t in lab.tasks), row


def test_module_00s_notebook_teaches_with_other_objects_than_its_lab_asks_for() -> None:
    """The lab tests transfer: none of the objects its solution creates is built in the notebook."""
    lab = labs.find("00-first-objects")
    notebook = (paths.REPO_ROOT / "notebooks" / "00-first-objects.ipynb").read_text()
    names = {
        doc["metadata"]["name"]
        for path in sorted((lab.directory / "solution").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") != "Kustomization"
    }
    assert len(names) == 6, names  # the Secret is made with kubectl, not a file
    assert not {n for n in names if n in notebook}
