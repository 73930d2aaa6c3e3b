"""graders.progress(): every lab's saved score, read from a temporary $KUBELAB_DATA."""

from __future__ import annotations

from pathlib import Path

import pytest

import graders
from kubelab import labs
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
