"""nbgrader release of every lab: no solution leaks, and grade cells agree with lab.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubelab import labs
from tests.nbgrader_course import make_course, nbgrader

LABS = labs.all_labs()


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_course(tmp_path_factory.mktemp("course"))
    for lab in LABS:
        nbgrader(root, "generate_assignment", lab.id, "--force")
    return root / "release"


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_release_leaks_no_solution(released: Path, lab: labs.Lab) -> None:
    out = released / lab.id
    assert (out / "lab.ipynb").is_file()
    assert not (out / "solution").exists()
    text = (out / "lab.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    nb = json.loads(text)
    sources = "\n".join("".join(c["source"]) for c in nb["cells"])
    for solution_file in (lab.directory / "solution").rglob("*.yaml"):
        distinctive = [
            line.strip()
            for line in solution_file.read_text().splitlines()
            if len(line.strip()) > 25 and line.strip() not in sources
        ]
        starter_texts = "\n".join(p.read_text() for p in (out / "starter").rglob("*.yaml"))
        leaked = [line for line in distinctive if line in sources and line not in starter_texts]
        assert not leaked, leaked
    assert 'MANIFESTS = "solution"' not in sources
    # The starter is released exactly as written.
    for f in (lab.directory / "starter").rglob("*"):
        if f.is_file():
            assert (out / f.relative_to(lab.directory)).read_text() == f.read_text()


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_grade_cells_match_lab_yaml(released: Path, lab: labs.Lab) -> None:
    nb = json.loads((released / lab.id / "lab.ipynb").read_text())
    grades = [
        (c["metadata"]["nbgrader"]["grade_id"], c["metadata"]["nbgrader"]["points"])
        for c in nb["cells"]
        if c["metadata"].get("nbgrader", {}).get("grade")
    ]
    assert grades == [(t.id, t.points) for t in lab.tasks]
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("grade"):
            assert "".join(cell["source"]) == f'grader.require("{meta["grade_id"]}")'
