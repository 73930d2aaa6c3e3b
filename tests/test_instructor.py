"""Instructor grading without a cluster: collecting submissions safely, the namespace names, how
grade cells are scored, and the gradebook and feedback made from result files."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbgrader.utils import determine_grade

from kubelab import labs
from kubelab.grading.result import CheckResult, Report
from kubelab.instructor import gradebook, nbgrader_log, output_caps, submissions
from kubelab.instructor.commands import course_root
from kubelab.instructor.output_caps import is_grade_cell
from kubelab.instructor.sandboxed_execute import grade_cell_outputs

LAB = labs.find("02-deployment")
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def _zip(path: Path, files: dict[str, str], *, link: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def test_collect_takes_folders_and_zips_into_nbgraders_layout(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "alice" / LAB.id / "starter").mkdir(parents=True)
    (inbox / "alice" / LAB.id / "lab.ipynb").write_text(NOTEBOOK)
    (inbox / "alice" / LAB.id / "starter" / "a.yaml").write_text("kind: x\n")
    (inbox / "bob").mkdir()
    (inbox / "bob" / "lab.ipynb").write_text(NOTEBOOK)
    (inbox / "bob" / "secret-link").symlink_to("/etc/passwd")
    _zip(inbox / "carol.zip", {"carol-work/lab.ipynb": NOTEBOOK, "carol-work/starter/b.yaml": "1"})
    course = tmp_path / "course"

    done = submissions.collect(course, LAB, inbox)

    assert done.students == ["alice", "bob", "carol"]
    sub = course / "submitted"
    assert (sub / "alice" / LAB.id / "starter" / "a.yaml").read_text() == "kind: x\n"
    assert (sub / "carol" / LAB.id / "starter" / "b.yaml").read_text() == "1"
    assert not (sub / "bob" / LAB.id / "secret-link").exists()
    assert any("secret-link" in s for s in done.skipped)
    assert submissions.submitted(course, LAB) == ["alice", "bob", "carol"]


@pytest.mark.parametrize(
    ("files", "link", "needle"),
    [
        ({"lab.ipynb": NOTEBOOK, "../escape.txt": "x"}, None, "unsafe path"),
        ({"lab.ipynb": NOTEBOOK, "/abs.txt": "x"}, None, "unsafe path"),
        ({"lab.ipynb": NOTEBOOK}, "starter/link", "symlink"),
        ({"readme.txt": "no notebook"}, None, "no notebook"),
    ],
)
def test_collect_refuses_zips_that_could_escape(
    tmp_path: Path, files: dict[str, str], link: str | None, needle: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _zip(inbox / "mallory.zip", files, link=link)
    course = tmp_path / "course"
    done = submissions.collect(course, LAB, inbox)
    assert done.students == []
    assert len(done.skipped) == 1 and needle in done.skipped[0], done.skipped
    assert not (course / "submitted" / "mallory" / LAB.id).exists()
    assert not (tmp_path / "escape.txt").exists() and not (course / "escape.txt").exists()


def test_collect_refuses_a_zip_bomb_and_keeps_the_older_submission(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    course = tmp_path / "course"
    _zip(inbox / "dave.zip", {"lab.ipynb": NOTEBOOK})
    assert submissions.collect(course, LAB, inbox).students == ["dave"]
    with zipfile.ZipFile(inbox / "dave.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("lab.ipynb", NOTEBOOK)
        zf.writestr("big.bin", b"\0" * (submissions.MAX_BYTES + 1))
    done = submissions.collect(course, LAB, inbox)
    assert done.students == [] and "too large" in done.skipped[0]
    assert (course / "submitted" / "dave" / LAB.id / "lab.ipynb").is_file()


def test_bad_student_ids_are_skipped_or_refused(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "bad name").mkdir(parents=True)
    done = submissions.collect(tmp_path / "course", LAB, inbox)
    assert done.students == [] and "not a student id" in done.skipped[0]
    with pytest.raises(Exception, match="bad student id"):
        submissions.check_student("../root")


def test_each_submission_gets_its_own_valid_namespace() -> None:
    names = {submissions.namespace_for(LAB, s) for s in ("alice", "Alice", "a" * 63, "x.y@z")}
    assert len(names) == 4
    for name in names:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63


def _grade_cell(
    task: str, points: int, outputs: list[nbformat.NotebookNode]
) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(f'grader.require("{task}")')
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": task, "points": points}
    cell.outputs = outputs
    return cell


def _report(*checks: CheckResult) -> Report:
    return Report(LAB.id, LAB.title, "grade-02-x", checks)


def test_grade_cells_get_the_clusters_points_as_nbgrader_reads_them() -> None:
    full = CheckResult("deployment", "Deployment", True, 3, 3, "3 replicas ready")
    part = CheckResult("resources", "Resources", False, 1, 2, "no memory limit", "set one")
    none = CheckResult("probes", "Probes", False, 0, 2, "no probes", "add a readinessProbe")
    report = _report(full, part, none)
    scored = {
        task: determine_grade(_grade_cell(task, pts, grade_cell_outputs(task, True, report, "")))
        for task, pts in (("deployment", 3), ("resources", 2), ("probes", 2))
    }
    assert scored == {"deployment": (3, 3), "resources": (1, 2), "probes": (0, 2)}
    html = grade_cell_outputs("resources", True, report, "")[0]["data"]["text/html"]
    assert "no memory limit" in html and "set one" in html
    # Not reached (time limit) or no grader result: an error output, so nbgrader gives 0.
    for outputs in (
        grade_cell_outputs("deployment", False, report, "timeout"),
        grade_cell_outputs("deployment", True, None, "the grader could not finish"),
    ):
        assert determine_grade(_grade_cell("deployment", 3, outputs)) == (0, 3)


def _result(status: str, reached: list[str], report: Report | None) -> dict[str, object]:
    return {
        "student": "alice",
        "lab": LAB.id,
        "namespace": "grade-02-alice",
        "run": {"status": status, "message": "cell time limit" if status != "finished" else ""},
        "grader_error": "",
        "report": report.to_dict() if report else None,
        "reached": reached,
    }


def test_rows_count_only_tasks_the_run_reached() -> None:
    checks = [CheckResult(t.id, t.title, True, t.points, t.points, "ok") for t in LAB.tasks]
    report = _report(*checks)
    every = [t.id for t in LAB.tasks]
    row = gradebook.row_from_result(LAB, "alice", _result("finished", every, report))
    assert row.status == "graded" and row.total == row.max_total == labs.find("02").max_score
    stopped = gradebook.row_from_result(LAB, "alice", _result("timeout", every[:2], report))
    assert stopped.status == "timeout"
    assert stopped.points == {t.id: (t.points if t.id in every[:2] else 0) for t in LAB.tasks}
    assert "not run" in stopped.checks[-1].message
    broken = gradebook.row_from_result(LAB, "alice", {"error": "namespace would not delete"})
    assert broken.status == "error" and broken.total == 0 and len(broken.checks) == len(LAB.tasks)


def test_gradebook_csv_and_feedback_pages(tmp_path: Path) -> None:
    course = tmp_path / "course"
    checks = [
        CheckResult(
            t.id,
            t.title,
            i % 2 == 0,
            t.points if i % 2 == 0 else 0,
            t.points,
            f"m-{t.id}",
            f"h-{t.id}",
        )
        for i, t in enumerate(LAB.tasks)
    ]
    path = gradebook.result_path(course, LAB, "alice")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_result("finished", [t.id for t in LAB.tasks], _report(*checks))))
    gradebook.write_error(course, LAB, "bob", "kernel would not start")
    rows = [gradebook.read_row(course, LAB, s) for s in ("alice", "bob", "carol")]
    out = gradebook.write_csv(rows, course / "gradebook.csv")
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["student"] for r in table] == ["alice", "bob", "carol"]
    assert table[0]["02:deployment"] == "3" and table[0]["02:resources"] == "0"
    assert table[0]["total"] == f"{sum(c.points for c in checks):g}" and table[0]["max"] == str(
        labs.find("02").max_score
    )
    assert table[1]["status"] == "error" and "kernel would not start" in table[1]["message"]
    assert table[2]["status"] == "error" and table[2]["total"] == "0"  # no result file at all
    page = gradebook.write_feedback(rows[0], course / "fb").read_text()
    for c in checks:
        assert f"m-{c.id}" in page and f"h-{c.id}" in page


def test_report_json_reads_back() -> None:
    report = _report(CheckResult("service", "Service", False, 1, 2, "port 80", "name it http"))
    assert Report.from_dict(json.loads(report.to_json()), title=LAB.title) == report


def test_course_root_writes_a_config_for_a_new_course(tmp_path: Path) -> None:
    root = course_root(tmp_path / "course")
    config = (root / "nbgrader_config.py").read_text()
    assert "configure_nbgrader" in config and str(root) in config
    assert os.access(root, os.W_OK)


def _printing(text: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("print(...)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return cell


def test_outputs_are_capped_in_bytes_per_cell_and_per_notebook() -> None:
    scorecard = nbformat.v4.new_output("display_data", data={"text/html": "<b>x</b>" * 40_000})
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _printing("é" * 5_000_000),  # ~10 MB: cut to the cell cap
        _printing("small\n"),  # kept whole
        _grade_cell("deployment", 3, [scorecard]),  # kubelab's own output: never cut
        *[_printing("y" * 200_000) for _ in range(5)],  # over the notebook cap by the 4th
        nbformat.v4.new_markdown_cell("prose"),
    ]
    cuts = output_caps.cap_outputs(nb, per_cell=100_000, per_notebook=500_000, skip=is_grade_cell)

    sizes = [sum(output_caps.output_bytes(o) for o in c.get("outputs", [])) for c in nb.cells[:-1]]
    assert sizes[0] < 100_000 + 300 and nb.cells[1].outputs[0]["text"] == "small\n"
    assert nb.cells[2].outputs == [scorecard]
    assert (
        nb.cells[0].outputs[-1]["text"].startswith("output truncated: this cell printed 10,000,0")
    )
    assert "kubelab keeps at most 100,000 per cell" in nb.cells[0].outputs[-1]["text"]
    kept = sum(sizes) - sizes[2]
    assert kept <= 500_000 + 6 * 300  # the notebook's cap, plus one short note per cut cell
    notebook_cuts = [c for c in cuts if c.per == "notebook"]
    assert notebook_cuts and "kubelab keeps at most 500,000 per notebook" in notebook_cuts[0].note()
    assert cuts[0].cell == 0 and all(c.printed > c.kept for c in cuts)
    json.loads(nbformat.writes(nb))  # still a valid notebook
    nbformat.validate(nb)


def test_the_byte_caps_are_nbgrader_configuration() -> None:
    from traitlets.config import Config

    config = Config({"LimitOutputBytes": {"max_cell_bytes": 1_000, "max_notebook_bytes": 5_000}})
    nb = nbformat.v4.new_notebook()
    nb.cells = [_printing("z" * 50_000)]
    nb, resources = output_caps.LimitOutputBytes(config=config).preprocess(nb, {})
    assert output_caps.output_bytes(nb.cells[0].outputs[0]) <= 1_000
    assert resources[output_caps.RESOURCE_KEY][0]["cap"] == 1_000


# Lines as nbgrader 0.9 prints them for tampered notebooks (tests/cluster/test_bulk_grading.py
# makes them for real).
FORGED = """[AutogradeApp | WARNING] Cell 'bonus' does not exist in the database
[AutogradeApp | ERROR] Traceback (most recent call last):
    jsonschema.exceptions.ValidationError: nbgrader cell does not have a grade_id: x
[AutogradeApp | ERROR] Notebook failed to validate; the nbgrader metadata may be corrupted.
[AutogradeApp | ERROR] There was an error processing assignment: /c/submitted/eve/02-deployment
[AutogradeApp | WARNING] Removing failed assignment: /c/autograded/eve/02-deployment
[AutogradeApp | ERROR] There was an error processing assignment '02-deployment' for student 'eve'
[AutogradeApp | ERROR] Please see the the above traceback for details on the specific errors.
"""
DUPLICATED = """[AutogradeApp | WARNING] Cell with id 'deployment' exists multiple times!
[AutogradeApp | WARNING] Removing failed assignment: /c/autograded/eve/02-deployment
[AutogradeApp | ERROR] One or more notebooks in the assignment use an old version
"""
ALTERED = """[AutogradeApp | WARNING] Attribute 'checksum' for cell deployment has changed! \
(should be: 113fbadf87ab96dafce1afd26018c3b9, got: a149f2b965d8fa8e31e23c015a7333fe)
[AutogradeApp | WARNING] Attribute 'points' for cell probes has changed! \
(should be: 2.0, got: 100.0)
[AutogradeApp | WARNING] Attribute 'checksum' for cell setup has changed! (should be: a, got: b)
"""
TASKS = {t.id for t in LAB.tasks}


def test_nbgraders_refusals_and_repairs_are_told_in_plain_words() -> None:
    forged = nbgrader_log.explain(FORGED, TASKS, failed=True)
    assert forged.refused.startswith(
        "the notebook has a cell claiming to be grade cell `bonus`, which the released lab "
        "does not have (a forged grade cell); nbgrader refuses notebooks with altered or forged "
        "grade cells (Notebook failed to validate"
    )
    duplicated = nbgrader_log.explain(DUPLICATED, TASKS, failed=True)
    assert "grade cell `deployment` appears more than once" in duplicated.refused
    assert "not what was released" in duplicated.refused and "old version" not in duplicated.refused
    altered = nbgrader_log.explain(ALTERED, TASKS, failed=False)
    assert not altered.refused and altered.notes == [
        "the notebook's grade cell `deployment` was changed",
        "the points of the notebook's grade cell `probes` were changed (100.0 instead of 2.0)",
        "the notebook's locked cell `setup` was changed",
    ]
    other = nbgrader_log.explain(
        "[X | ERROR] No notebooks found, did you forget", TASKS, failed=True
    )
    assert other.refused == "nbgrader autograde failed: No notebooks found, did you forget"
    assert nbgrader_log.explain("", TASKS, failed=False) == nbgrader_log.Explanation()


def test_nbgraders_log_is_kept_with_its_start_and_end(tmp_path: Path) -> None:
    text = "start\n" + "x" * (2 * nbgrader_log.MAX_LOG_BYTES) + "\nTraceback: the end\n"
    kept = nbgrader_log.keep(text, tmp_path / "alice").read_text()
    assert len(kept.encode()) <= nbgrader_log.MAX_LOG_BYTES + 200
    assert kept.startswith("start") and kept.endswith("the end\n") and "left out" in kept


def test_rows_of_refused_unsettled_and_retried_submissions(tmp_path: Path) -> None:
    every = [t.id for t in LAB.tasks]
    checks = [CheckResult(t.id, t.title, True, t.points, t.points, "ok") for t in LAB.tasks]
    checks[1] = CheckResult(
        "resources", "R", False, 0, 2, "not converged: waited", "grade again", not_converged=True
    )
    data = _result("finished", every, _report(*checks))
    row = gradebook.row_from_result(LAB, "alice", data)
    assert row.status == "not-converged" and row.points["resources"] == 0
    assert "resources could not be judged" in row.message and "grade again" in row.message
    twice = gradebook.row_from_result(LAB, "alice", {**data, "attempts": 2})
    assert twice.status == "not-converged" and twice.retried
    assert "still so when graded again alone" in twice.message
    checks[1] = CheckResult("resources", "R", True, 2, 2, "ok")
    settled = _result("finished", every, _report(*checks))
    second = gradebook.row_from_result(LAB, "alice", {**settled, "attempts": 2})
    assert second.status == "graded" and second.total == labs.find("02").max_score
    assert "graded again alone after not converging" in second.message

    course = tmp_path / "course"
    refusal = nbgrader_log.explain(FORGED, TASKS, failed=True).refused
    log = gradebook.log_path(LAB, "eve")
    gradebook.write_error(course, LAB, "eve", refusal, status=gradebook.REFUSED, log=log)
    path = gradebook.result_path(course, LAB, "carol")
    path.parent.mkdir(parents=True)
    cut = output_caps.Cut(3, 10_000_000, 262_000, 262_144, "cell").to_dict()
    path.write_text(
        json.dumps(
            {
                **settled,
                "deleted_grade_cells": ["service"],
                "truncated": [cut],
                "nbgrader": {"notes": ["the notebook's grade cell `deployment` was changed"]},
                "log": gradebook.log_path(LAB, "carol"),
            }
        )
    )
    rows = [gradebook.read_row(course, LAB, s) for s in ("carol", "eve")]
    table = {
        r["student"]: r for r in csv.DictReader(gradebook.write_csv(rows, course / "g.csv").open())
    }
    assert table["eve"]["status"] == "refused" and table["eve"]["total"] == "0"
    assert (
        "forged grade cell" in table["eve"]["message"] and "exited" not in table["eve"]["message"]
    )
    assert table["eve"]["log"] == f"autograded/eve/{LAB.id}/nbgrader-autograde.log"
    carol = table["carol"]["message"]
    assert "grade cell `deployment` was changed; nbgrader put the released cells back" in carol
    assert "grade cell `service` was deleted: it scores 0" in carol
    assert (
        "output truncated: cell 3 printed 10,000,000 bytes; kubelab keeps at most 262,144" in carol
    )
    eve_page = gradebook.feedback_html(rows[1])
    assert "Your notebook was not graded" in eve_page and "forged grade cell" in eve_page
    assert "nbgrader-autograde.log" in eve_page
    assert "kubelab keeps at most 262,144 per cell" in gradebook.feedback_html(rows[0])
    unsettled_page = gradebook.feedback_html(twice)
    assert "Not graded yet" in unsettled_page and "not converged" in unsettled_page
