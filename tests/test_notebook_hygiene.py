"""Notebooks are committed clean: valid nbformat, no outputs, no execution counts."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

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
        folders = set(re.findall(r"(?<![0-9A-Za-z])work-[0-9a-z-]+", nb.read_text()))
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


# --- Teaching-notebook conventions (issue 17, "Active learning") -------------------------------
#
# Every module's teaching notebook (notebooks/<lab id>.ipynb: 00-first-objects and 01..09; not
# the course map or the summary) gives its time and prerequisites up front, asks the learner to
# predict before it shows, ends with questions whose answers stay hidden until asked and a
# troubleshooting section, and keeps test asserts out of the cells learners read.
# `teaching_problems` returns one line per broken rule, naming the notebook and the rule.

TEACHING_NOTEBOOKS = sorted(
    ROOT / "notebooks" / f"{lab_dir.name}.ipynb"
    for lab_dir in (ROOT / "labs").iterdir()
    if (lab_dir / "lab.yaml").is_file()
)
TIME = re.compile(r"^\*\*Time:\*\* about \d+(?:-\d+)? minutes\b", re.M)
PREREQUISITES = re.compile(r"^\*\*Prerequisites:\*\* \S", re.M)
PREDICT = re.compile(r"^\*\*Predict:\*\* \S", re.M)
CHECK_HEADING = re.compile(r"^## Check your understanding\s*$", re.M)
TROUBLESHOOTING_HEADING = re.compile(r"^## Troubleshooting\s*$", re.M)
ANSWER = re.compile(r"<details>\s*<summary>Answer</summary>.*?</details>", re.S)
DOCS_LINK = "https://kubernetes.io/docs/"


def _section(cells: list[Any], heading: re.Pattern[str]) -> str | None:
    """Return the Markdown from `heading` to the next `## ` heading, or None if it is missing."""
    text = "\n\n".join(c.source for c in cells if c.cell_type == "markdown")
    found = heading.search(text)
    if found is None:
        return None
    return re.split(r"^## ", text[found.end() :], maxsplit=1, flags=re.M)[0]


def _python(source: str) -> ast.Module:
    """Parse a code cell as IPython runs it."""
    from IPython.core.inputtransformer2 import TransformerManager

    # `!cmd`, `x = !cmd`, `%magic` and `%%cell magics` become plain calls (a `%%writefile` body a
    # string argument), so only the cell's Python is Python here.
    return ast.parse(TransformerManager().transform_cell(source))


def _asserts(tree: ast.Module) -> list[int]:
    """Return the line numbers of `assert` statements in a parsed code cell."""
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]


def _object_key(doc: dict[str, Any]) -> tuple[str, str, str]:
    """Return what makes two manifests the same object: kind, name and everything else."""
    rest = {k: v for k, v in doc.items() if k not in ("apiVersion", "metadata")}
    name = str((doc.get("metadata") or {}).get("name"))
    return str(doc.get("kind")), name, json.dumps(rest, sort_keys=True, default=str)


def _manifests(tree: ast.Module) -> list[dict[str, Any]]:
    """Return the objects a code cell writes: YAML in `%%writefile` bodies and string literals."""
    docs: list[dict[str, Any]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "kind:" in node.value:
            try:
                docs += [d for d in yaml.safe_load_all(node.value) if isinstance(d, dict)]
            except yaml.YAMLError:
                continue  # prose or a template, not a manifest
    return docs


def solution_objects(lab_id: str) -> list[dict[str, Any]]:
    """Return the objects of a lab's reference solution (not its Kustomizations)."""
    return [
        doc
        for path in sorted((ROOT / "labs" / lab_id / "solution").rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict) and doc.get("kind") != "Kustomization"
    ]


def teaching_problems(
    nb: Any, name: str, *, lab_id: str | None = None, solution: list[dict[str, Any]] | None = None
) -> list[str]:
    """Return one line per convention of notebooks/nb-conventions that `nb` breaks.

    `lab_id` and `solution` (the lab's reference objects) are the module's lab, for the rule that
    the notebook teaches on another case than its lab asks for.
    """
    cells = list(nb.cells)
    problems: list[str] = []
    markdown = [c for c in cells if c.cell_type == "markdown"]
    if not markdown or not markdown[0].source.startswith("# "):
        problems.append(f"{name}: the first cell is not a Markdown title (`# NN · ...`)")
    # Rule 1: time and prerequisites, in the title cell under its heading or the next Markdown cell.
    head = "\n".join(
        [
            markdown[0].source.split("\n", 1)[-1] if markdown else "",
            *(c.source for c in markdown[1:2]),
        ]
    )
    if not TIME.search(head):
        problems.append(
            f"{name}: no `**Time:** about N minutes` line in the Markdown cell after the title"
        )
    if not PREREQUISITES.search(head):
        problems.append(
            f"{name}: no `**Prerequisites:** ...` line in the Markdown cell after the title"
        )
    # Rule 2: at least two predict-then-run moments, each directly before a code cell. The
    # `**Predict:**` paragraph may close a longer Markdown cell, as long as the run comes next.
    predicts = [
        i for i, c in enumerate(cells) if c.cell_type == "markdown" and PREDICT.search(c.source)
    ]
    if len(predicts) < 2:
        problems.append(
            f"{name}: {len(predicts)} `**Predict:**` Markdown cell(s), at least 2 wanted"
        )
    for n, i in enumerate(predicts, 1):
        if i + 1 >= len(cells) or cells[i + 1].cell_type != "code":
            problems.append(
                f"{name}: `**Predict:**` cell {n} (cell {i}) is not followed directly by a code"
                " cell"
            )
    # Rule 3: check your understanding, 3 to 5 questions, answers hidden in <details>.
    check = _section(cells, CHECK_HEADING)
    if check is None:
        problems.append(f"{name}: no `## Check your understanding` section")
    else:
        answers = len(ANSWER.findall(check))
        if check.count("<details>") != answers:
            problems.append(
                f"{name}: `## Check your understanding` has a `<details>` without"
                " `<summary>Answer</summary>` or without `</details>`"
            )
        elif not 3 <= answers <= 5:
            problems.append(
                f"{name}: `## Check your understanding` has {answers} answer(s) in"
                " `<details><summary>Answer</summary>...</details>`, 3 to 5 wanted"
            )
    # Rule 4: troubleshooting, symptom -> cause -> fix, each with the kubectl command that shows it.
    trouble = _section(cells, TROUBLESHOOTING_HEADING)
    if trouble is None:
        problems.append(f"{name}: no `## Troubleshooting` section")
    elif len([line for line in trouble.splitlines() if "kubectl" in line]) < 3:
        problems.append(
            f"{name}: `## Troubleshooting` has fewer than 3 entries naming a kubectl command"
        )
    # Rule 5: no assert in any code cell.
    # Rule 6: no object of the lab's solution, no run of the lab's grader.
    answers = {_object_key(doc): doc for doc in solution or []}
    own_lab = rf"""graders\.load\(\s*["']({lab_id}|{(lab_id or "")[:2]})["']"""
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        try:
            tree = _python(cell.source)
        except SyntaxError as err:
            problems.append(f"{name}: code cell {i} does not parse ({err.msg}, line {err.lineno})")
            continue
        for line in _asserts(tree):
            problems.append(
                f"{name}: code cell {i} line {line} has an `assert` (move the check into a test)"
            )
        for doc in _manifests(tree):
            if _object_key(doc) in answers:
                kind, obj, _ = _object_key(doc)
                problems.append(
                    f"{name}: code cell {i} writes the lab's solution {kind} {obj}"
                    " (teach on another case than the lab asks for)"
                )
        if lab_id and (
            re.search(own_lab, cell.source)
            or re.search(r"\brunner\.run\(", cell.source)
            or re.search(rf"kubelab check {lab_id[:2]}\b", cell.source)
        ):
            problems.append(f"{name}: code cell {i} runs the lab's grader (the lab's answer key)")
    # Rule 7: facts taught with a link to the Kubernetes docs.
    if not any(DOCS_LINK in c.source for c in markdown):
        problems.append(f"{name}: no link to {DOCS_LINK} in any Markdown cell")
    return problems


def test_every_module_has_a_teaching_notebook() -> None:
    missing = [p.name for p in TEACHING_NOTEBOOKS if not p.is_file()]
    assert len(TEACHING_NOTEBOOKS) >= 10 and not missing, missing


@pytest.mark.parametrize("path", TEACHING_NOTEBOOKS, ids=lambda p: p.stem)
def test_teaching_notebook_follows_the_conventions(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    lab = path.stem
    problems = teaching_problems(
        nb, f"notebooks/{path.name}", lab_id=lab, solution=solution_objects(lab)
    )
    assert not problems, "\n".join(problems)


_SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: shop
spec:
  selector:
    app: shop
  ports:
    - port: 80
      targetPort: http
"""
SOLUTION = [yaml.safe_load(_SERVICE)]  # the example lab's answer
_ANSWER = "\n\nQ?\n\n<details><summary>Answer</summary>\n\nA.\n</details>"


def _conforming() -> Any:
    """Return a small notebook that meets every convention."""
    v4 = nbformat.v4
    return v4.new_notebook(
        cells=[
            v4.new_markdown_cell("# 42 · Example\n\nA module that follows the conventions."),
            v4.new_markdown_cell(
                "**Time:** about 40 minutes\n**Prerequisites:** module 01; kubectl"
            ),
            v4.new_code_cell("import subprocess\nNS = 'learn-42'"),
            v4.new_markdown_cell(
                "**Predict:** how many pods will the ReplicaSet make? Write it down."
            ),
            v4.new_code_cell("!kubectl get pods -n {NS}\n%time x = 1"),
            v4.new_markdown_cell("Three: see [ReplicaSet](https://kubernetes.io/docs/concepts/)."),
            v4.new_markdown_cell(
                "Deleting a pod is what a node failure looks like to the ReplicaSet.\n\n"
                "**Predict:** what happens when you delete one?"
            ),
            v4.new_code_cell("%%writefile work-42/x.yaml\nassert this is yaml, not python\n"),
            v4.new_code_cell("if True:\n    pods = !kubectl get pods -o name\n    print(pods)"),
            v4.new_code_cell(
                f"%%writefile work-42/svc.yaml\n{_SERVICE.replace('shop', 'greeter')}"
            ),
            v4.new_markdown_cell(
                "## Check your understanding\n\n"
                + "".join(f"{n}. Question {n}?{_ANSWER}\n\n" for n in (1, 2))
            ),
            v4.new_markdown_cell(
                "3. Question 3?\n\n<details><summary>Answer</summary>\n\nA3.\n</details>"
            ),
            v4.new_markdown_cell(
                "## Troubleshooting\n\n"
                "- pods Pending -> no node fits -> lower requests (`kubectl describe pod`)\n"
                "- 0/1 Ready -> probe fails -> fix the path (`kubectl get endpointslices`)\n"
                "- ImagePullBackOff -> bad tag -> fix it (`kubectl get events`)\n"
            ),
            v4.new_markdown_cell("## Clean up"),
            v4.new_code_cell("!kubectl delete namespace {NS}"),
        ]
    )


def _drop(nb: Any, start: str) -> Any:
    nb.cells = [c for c in nb.cells if not c.source.startswith(start)]
    return nb


def _edit(nb: Any, start: str, old: str, new: str) -> Any:
    for cell in nb.cells:
        if cell.source.startswith(start):
            cell.source = cell.source.replace(old, new)
    return nb


def _insert_after(nb: Any, start: str, cell: Any) -> Any:
    i = next(i for i, c in enumerate(nb.cells) if c.source.startswith(start))
    nb.cells.insert(i + 1, cell)
    return nb


BROKEN: dict[str, tuple[Any, str]] = {
    "no time": (lambda nb: _edit(nb, "**Time:**", "**Time:** about 40 minutes\n", ""), "**Time:**"),
    "time without minutes": (
        lambda nb: _edit(nb, "**Time:**", "about 40 minutes", "a while"),
        "**Time:**",
    ),
    "no prerequisites": (
        lambda nb: _edit(nb, "**Time:**", "**Prerequisites:**", "Needs:"),
        "**Prerequisites:**",
    ),
    "time too late": (
        lambda nb: _insert_after(
            _edit(nb, "**Time:**", "**Time:** about 40 minutes\n", ""),
            "import subprocess",
            nbformat.v4.new_markdown_cell("**Time:** about 40 minutes"),
        ),
        "**Time:**",
    ),
    "title without heading": (
        lambda nb: _edit(nb, "# 42", "# 42 · Example", "Example"),
        "the first cell is not a Markdown title",
    ),
    "one predict": (lambda nb: _drop(nb, "Deleting a pod"), "at least 2 wanted"),
    "predict inside a sentence": (
        lambda nb: _edit(nb, "Deleting a pod", "**Predict:** what", "Now **Predict:** what"),
        "1 `**Predict:**` Markdown cell(s), at least 2 wanted",
    ),
    "predict before markdown": (
        lambda nb: _insert_after(nb, "Deleting a pod", nbformat.v4.new_markdown_cell("Now run:")),
        "is not followed directly by a code cell",
    ),
    "predict at the end": (
        lambda nb: (nb.cells.append(nbformat.v4.new_markdown_cell("**Predict:** and now?")), nb)[1],
        "is not followed directly by a code cell",
    ),
    "no check section": (
        lambda nb: _edit(nb, "## Check", "## Check your understanding", "## Questions"),
        "no `## Check your understanding` section",
    ),
    "two answers": (lambda nb: _drop(nb, "3. Question 3"), "has 2 answer(s)"),
    "six answers": (
        lambda nb: _edit(nb, "3. Question", "A3.\n</details>", "A3.\n</details>" + _ANSWER * 3),
        "has 6 answer(s)",
    ),
    "answer not hidden": (
        lambda nb: _edit(nb, "3. Question", "<summary>Answer</summary>", "<summary>Hint</summary>"),
        "has a `<details>` without `<summary>Answer</summary>`",
    ),
    "no troubleshooting": (
        lambda nb: _drop(nb, "## Troubleshooting"),
        "no `## Troubleshooting` section",
    ),
    "troubleshooting without commands": (
        lambda nb: _edit(nb, "## Troubleshooting", "`kubectl get events`", "the events"),
        "fewer than 3 entries",
    ),
    "assert in a cell": (
        lambda nb: _edit(nb, "import subprocess", "NS =", "assert NS\nNS ="),
        "code cell 2 line 2 has an `assert`",
    ),
    "assert beside a shell line": (
        lambda nb: _edit(nb, "if True:", "print(pods)", "assert pods, 'no pods'"),
        "has an `assert`",
    ),
    "the lab's solution object": (
        lambda nb: _insert_after(
            nb, "**Predict:** how", nbformat.v4.new_code_cell(f"%%writefile a.yaml\n{_SERVICE}")
        ),
        "writes the lab's solution Service shop",
    ),
    "the lab's solution object in a string": (
        lambda nb: _edit(nb, "import subprocess", "NS =", f"SVC = {_SERVICE!r}\nNS ="),
        "code cell 2 writes the lab's solution Service shop",
    ),
    "the lab's grader": (
        lambda nb: _edit(nb, "import subprocess", "NS =", "g = graders.load('42')\nNS ="),
        "code cell 2 runs the lab's grader",
    ),
    "the lab's checks run by hand": (
        lambda nb: _edit(nb, "if True:", "print(pods)", "print(runner.run(LAB, namespace=NS))"),
        "runs the lab's grader",
    ),
    "no docs link": (
        lambda nb: _edit(nb, "Three:", "https://kubernetes.io/docs/concepts/", "#"),
        "no link to https://kubernetes.io/docs/",
    ),
}


def test_a_conforming_notebook_passes() -> None:
    problems = teaching_problems(
        _conforming(), "notebooks/42-example.ipynb", lab_id="42-example", solution=SOLUTION
    )
    assert problems == []


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_each_broken_convention_is_named_in_one_line(case: str) -> None:
    breaks, expected = BROKEN[case]
    problems = teaching_problems(
        breaks(_conforming()), "notebooks/42-example.ipynb", lab_id="42-example", solution=SOLUTION
    )
    assert len(problems) == 1, problems
    assert problems[0].startswith("notebooks/42-example.ipynb: ")
    assert expected in problems[0], problems


# --- Every index of the course lists the same modules ------------------------------------------

MODULES = sorted(p.parent.name for p in (ROOT / "labs").glob("*/lab.yaml"))
NOT_MODULES = {"00-course-map", "10-course-summary"}  # notebooks about the course as a whole
MODULE = r"[0-9]{2}-[a-z0-9-]+"


def _markdown(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def _modules_section(text: str) -> str:
    return re.split(r"^## ", text.split("\n## The modules", 1)[-1], maxsplit=1, flags=re.M)[0]


def module_indexes() -> dict[str, list[str]]:
    """Return, per place that lists the course's modules, the module ids it lists."""
    course_map = _markdown(ROOT / "notebooks" / "00-course-map.ipynb")
    summary = _markdown(ROOT / "notebooks" / "10-course-summary.ipynb")
    table = _modules_section(course_map) if "\n## The modules" in course_map else ""
    by_number = {m[:2]: m for m in MODULES}
    found = {
        "notebooks/ (a teaching notebook per module)": [
            p.stem
            for p in (ROOT / "notebooks").glob("*.ipynb")
            if re.fullmatch(MODULE, p.stem) and p.stem not in NOT_MODULES
        ],
        "00-course-map.ipynb, knowledge map": [
            by_number.get(n, n)
            for n in re.findall(r"^ {4}([0-9]{2}) ", course_map.split("mindmap", 1)[-1], re.M)
        ],
        "00-course-map.ipynb, ## The modules: notebooks": re.findall(
            rf"\]\(({MODULE})\.ipynb\)", table
        ),
        "00-course-map.ipynb, ## The modules: labs": re.findall(
            rf"\]\(\.\./labs/({MODULE})/", table
        ),
        "10-course-summary.ipynb": re.findall(rf"\]\(({MODULE})\.ipynb\)", summary),
        "notebooks/README.md": re.findall(
            rf"^\| `({MODULE})\.ipynb` \|", (ROOT / "notebooks" / "README.md").read_text(), re.M
        ),
        "labs/README.md": re.findall(
            rf"^\| \[({MODULE})\]\(", (ROOT / "labs" / "README.md").read_text(), re.M
        ),
        "README.md, The course": re.findall(
            rf"\]\(labs/({MODULE})/\)", (ROOT / "README.md").read_text()
        ),
    }
    return {where: sorted(set(ids) - NOT_MODULES) for where, ids in found.items()}


def test_there_are_modules() -> None:
    assert len(MODULES) >= 10 and MODULES[0].startswith("00-"), MODULES


@pytest.mark.parametrize("where", list(module_indexes()))
def test_every_index_lists_the_same_modules_as_labs(where: str) -> None:
    listed = module_indexes()[where]
    missing = sorted(set(MODULES) - set(listed))
    extra = sorted(set(listed) - set(MODULES))
    assert not missing and not extra, f"{where}: missing {missing}, not a module {extra}"


def test_the_notebooks_readme_lists_every_notebook() -> None:
    readme = (ROOT / "notebooks" / "README.md").read_text()
    listed = set(re.findall(r"^\| `([^`]+\.ipynb)` \|", readme, re.M))
    assert listed == {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}


def test_the_course_pages_link_the_glossary_and_the_summary() -> None:
    pages = {
        "README.md": (ROOT / "README.md").read_text(),
        "notebooks/README.md": (ROOT / "notebooks" / "README.md").read_text(),
        "notebooks/00-course-map.ipynb": _markdown(ROOT / "notebooks" / "00-course-map.ipynb"),
    }
    for page, text in pages.items():
        assert "glossary.md)" in text, f"{page} does not link the glossary"
        assert "10-course-summary.ipynb" in text, f"{page} does not name the course summary"


@pytest.mark.parametrize(
    "page",
    ["notebooks/00-course-map.ipynb", "notebooks/10-course-summary.ipynb", "docs/glossary.md"],
)
def test_relative_links_resolve(page: str) -> None:
    """The glossary sits in docs/ of the repository and of a learner's workspace alike."""
    path = ROOT / page
    text = _markdown(path) if path.suffix == ".ipynb" else path.read_text()
    targets = re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", text)
    assert targets, page
    broken = [t for t in targets if not (path.parent / t).exists()]
    assert not broken, f"{page}: links to missing files {broken}"


def test_the_summary_has_a_section_per_module_with_references() -> None:
    nb = nbformat.read(ROOT / "notebooks" / "10-course-summary.ipynb", as_version=4)
    for module in MODULES:
        cell = next(
            (c.source for c in nb.cells if c.source.startswith(f"## {module[:2]} · ")), None
        )
        assert cell is not None, f"10-course-summary.ipynb: no `## {module[:2]} · ...` section"
        for part in ("**You can now:**", "**Key objects:**", "**Remember:**", "**References:**"):
            assert part in cell, f"10-course-summary.ipynb, module {module}: no {part}"
        refs = cell.split("**References:**", 1)[1]
        assert re.search(r"\]\(https://", refs), f"module {module}: no reference link"
    assert any(c.source.startswith("## Where to go next") for c in nb.cells)
