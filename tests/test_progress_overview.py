"""graders.progress(): every lab's saved score, read from a temporary $KUBELAB_DATA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubelab import graders, labs
from kubelab.grading import saved_progress
from kubelab.grading.result import CheckResult, Report


@pytest.fixture(autouse=True)
def own_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Progress goes to a fresh folder, and no cluster is reachable (nothing is posted)."""
    monkeypatch.setenv("KUBELAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))


def check(lab: labs.Lab, passed: dict[str, bool]) -> None:
    """Save a report of `lab` in which the named tasks passed (full points) or failed (none)."""
    results = tuple(
        CheckResult(t.id, t.title, ok, t.points if ok else 0, t.points, "seen")
        for t in lab.tasks
        if (ok := passed.get(t.id)) is not None
    )
    saved_progress.record(Report(lab.id, lab.title, "ns", results))


def test_nothing_checked_yet_shows_every_lab_at_zero() -> None:
    overview = graders.progress()
    assert [r.id for r in overview.rows] == [lab.id for lab in labs.all_labs()]
    assert overview.score == 0 and overview.max_score == sum(
        lab.max_score for lab in labs.all_labs()
    )
    assert all(t.passed is None for r in overview.rows for t in r.tasks)
    assert str(overview).count("not checked yet") == len(overview.rows)


def test_a_partial_check_shows_its_score_and_ticks() -> None:
    lab = labs.find("02")
    first, second, *rest = lab.tasks
    check(lab, {first.id: True, second.id: False})
    overview = graders.progress()
    row = next(r for r in overview.rows if r.id == lab.id)
    assert row.progress.score == first.points
    assert [t.passed for t in row.tasks] == [True, False, *[None] * len(rest)]
    assert row.progress.checked_at is not None
    assert overview.score == first.points

    page = overview._repr_html_()
    assert page.count("<tr>") == len(overview.rows) + 1  # a header and one row per lab
    assert f"{first.points:g} / {lab.max_score:g}" in page
    assert f"width:{100 * first.points / lab.max_score:.0f}%" in page  # the bar
    assert "✔" in page and "✘" in page
    assert f'title="{first.id}: ' in page  # each tick names its task

    text = str(overview)
    line = next(x for x in text.splitlines() if x.startswith(lab.id))
    assert "✔✘" in line and "not checked yet" not in line
    assert text.splitlines()[-1] == f"total {first.points:g}/{overview.max_score:g} points"


def test_a_later_check_replaces_the_earlier_result() -> None:
    lab = labs.find("01")
    check(lab, {t.id: False for t in lab.tasks})
    check(lab, {t.id: True for t in lab.tasks})
    row = next(r for r in graders.progress().rows if r.id == lab.id)
    assert row.progress.score == lab.max_score
    assert all(t.passed for t in row.tasks)
    assert "#43a047" in graders.progress()._repr_html_()  # a full bar turns green


def test_titles_are_escaped(tmp_path: Path) -> None:
    root = tmp_path / "labs"
    (root / "01-demo").mkdir(parents=True)
    (root / "01-demo" / "lab.yaml").write_text(
        "id: 01-demo\ntitle: 'A <b> lab'\nnamespace: demo\n"
        "tasks:\n  - {id: one, title: 'x & y', points: 2}\n"
    )
    page = graders.progress(root)._repr_html_()
    assert "A &lt;b&gt; lab" in page and "x &amp; y" in page


def _record(lab: labs.Lab, namespace: str, passed: bool) -> None:
    results = tuple(
        CheckResult(t.id, t.title, passed, t.points if passed else 0, t.points, "seen")
        for t in lab.tasks
    )
    saved_progress.record(Report(lab.id, lab.title, namespace, results))


def test_a_check_of_another_namespace_keeps_the_learners_score() -> None:
    lab = labs.find("02")
    _record(lab, lab.namespace, passed=True)
    _record(lab, "scratch", passed=False)  # e.g. `kubelab check 02 -n scratch`
    assert saved_progress.of(lab).score == lab.max_score
    assert all(saved_progress.passed_tasks(lab).values())
    assert saved_progress.of(lab, "scratch").score == 0
    assert not any(saved_progress.passed_tasks(lab, "scratch").values())


def test_a_namespace_of_its_own_is_shown_when_the_labs_was_never_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = labs.find("02")
    _record(lab, "alice-lab-02", passed=True)  # a workshop participant's copy
    assert saved_progress.of(lab).score == lab.max_score
    monkeypatch.setenv("KUBELAB_NAMESPACE", "scratch")
    _record(lab, "scratch", passed=False)
    assert saved_progress.of(lab).score == 0  # $KUBELAB_NAMESPACE is the learner's choice


def test_progress_saved_by_lab_only_is_still_read(tmp_path: Path) -> None:
    lab = labs.find("02")
    first = lab.tasks[0]
    old = {  # the file as kubelab wrote it before progress was kept per namespace
        "labs": {
            lab.id: {
                "namespace": lab.namespace,
                "checked_at": "2026-01-02T03:04:05+0000",
                "checks": {first.id: {"passed": True, "points": first.points, "max_points": 2}},
            }
        }
    }
    saved_progress.progress_file().parent.mkdir(parents=True, exist_ok=True)
    saved_progress.progress_file().write_text(json.dumps(old))
    assert saved_progress.of(lab).score == first.points
    assert saved_progress.of(lab).checked_at == "2026-01-02T03:04:05+0000"
    _record(lab, "scratch", passed=False)
    assert saved_progress.of(lab).score == first.points  # the old record is the learner's
    assert saved_progress.passed_tasks(lab) == {first.id: True}
    assert saved_progress.of(lab, "scratch").score == 0


def test_the_file_keeps_the_per_lab_record_an_older_kubelab_reads() -> None:
    lab = labs.find("02")
    _record(lab, lab.namespace, passed=True)
    _record(lab, "scratch", passed=False)
    entry = json.loads(saved_progress.progress_file().read_text())["labs"][lab.id]
    # an older kubelab (one record per lab) reads and updates this without a KeyError
    assert entry["namespace"] == lab.namespace
    assert all(c["passed"] for c in entry["checks"].values())


def test_a_newer_per_lab_record_written_by_an_older_kubelab_wins() -> None:
    lab = labs.find("02")
    first = lab.tasks[0]
    _record(lab, lab.namespace, passed=False)
    data = json.loads(saved_progress.progress_file().read_text())
    data["labs"][lab.id].update(  # what an older kubelab writes when it checks afterwards
        checked_at="2999-01-01T00:00:00+0000",
        checks={first.id: {"passed": True, "points": first.points, "max_points": first.points}},
    )
    saved_progress.progress_file().write_text(json.dumps(data))
    assert saved_progress.of(lab).score == first.points
