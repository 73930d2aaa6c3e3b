"""Lab 01 on the real sim cluster: the reference controller passes, the starter fails with hints,
and each known-wrong controller fails exactly the check it should.

The wrong controllers are the reference one with one behaviour changed by a text edit, so they
stay in step with it; each edit is asserted to apply.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelab import api, labs
from kubelab.grading import runner
from kubelab.grading.result import Report
from tests.conftest import Kubectl
from tests.lab_attempt import (
    LabAttempt,
    assert_every_check_fails_with_a_hint,
    failed,
    grades_the_same_in_chinese,
)

LAB = labs.find("01-control-loop")
SOLUTION = LAB.directory / "solution"
STARTER = LAB.directory / "starter"
CONFIGMAPSETS = api.Resource("kubelab.dev/v1", "configmapsets", "ConfigMapSet")
GRADE_TIMEOUT = 150  # a hanging controller costs 20 s per call; the machine is shared

Edits = list[tuple[str, str]]


class ControllerAttempt(LabAttempt):
    """Lab 01's attempt: a ConfigMapSet manifest and a controller file to grade."""

    def grade(self, only: list[str] | None = None, timeout: float = GRADE_TIMEOUT) -> Report:
        return super().grade(only, timeout)

    def configmaps(self) -> dict[str, dict[str, str]]:
        """Return the data of every ConfigMap in the namespace but the root CA's."""
        found = self.client.list(api.CONFIGMAPS, self.name)
        return {
            cm["metadata"]["name"]: cm.get("data") or {}
            for cm in found
            if cm["metadata"]["name"] != "kube-root-ca.crt"
        }


@pytest.fixture
def attempt(kubectl: Kubectl, client: api.Api) -> Iterator[ControllerAttempt]:
    ns = ControllerAttempt(LAB, kubectl, client)
    yield ns
    ns.delete()


def controller(tmp_path: Path, edits: Edits, name: str = "controller.py") -> Path:
    """Write the reference controller with `edits` applied (each must match exactly once)."""
    text = (SOLUTION / "controller.py").read_text()
    for old, new in edits:
        assert text.count(old) == 1, f"edit does not apply: {old!r}"
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path


def use(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setenv("KUBELAB_CONTROLLER", str(path))


def test_solution_passes_every_check(
    attempt: ControllerAttempt, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, SOLUTION / "controller.py")
    attempt.apply(SOLUTION / "configmapset.yaml")
    report = attempt.grade()
    assert not failed(report)
    assert report.score == report.max_score == LAB.max_score == 12
    assert [c.id for c in report.checks] == [t.id for t in LAB.tasks]
    assert all(c.hint is None and c.message for c in report.checks)
    # The grader put demo's spec back and left the converged children, and no probe behind.
    spec = attempt.client.get(CONFIGMAPSETS, "demo", attempt.name)
    assert spec is not None and spec["spec"] == {"replicas": 3, "data": {"color": "blue"}}
    assert attempt.configmaps() == {f"demo-{i}": {"color": "blue"} for i in range(3)}
    assert attempt.client.get(CONFIGMAPSETS, "kubelab-gc-probe", attempt.name) is None
    # The same state always gives the same score, in zh-CN too.
    assert attempt.grade().to_dict() == report.to_dict()
    grades_the_same_in_chinese(report, attempt.grade)


def test_starter_fails_every_check_with_a_hint(
    attempt: ControllerAttempt, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No KUBELAB_CONTROLLER and no ./starter here: the grader falls back to the lab's own copy.
    monkeypatch.delenv("KUBELAB_CONTROLLER", raising=False)
    attempt.apply(STARTER / "configmapset.yaml")
    report = attempt.grade()
    assert_every_check_fails_with_a_hint(report)
    by_id = {c.id: c for c in report.checks}
    assert "NotImplementedError" in by_id["reconcile"].message
    assert "controller.py:" in by_id["reconcile"].message  # where it failed
    assert "TODO" in (by_id["reconcile"].hint or "")


NO_OWNER_REFERENCES: Edits = [
    (
        "name=child, labels={LABEL: name}, owner_references=[owner]",
        "name=child, labels={LABEL: name}",
    ),
    (
        "elif (current.data or {}) == data and _owned(current, uid):",
        "elif (current.data or {}) == data:",
    ),
    ("current.metadata.owner_references = [owner]", "pass"),
]
NO_BLOCK_OWNER_DELETION: Edits = [  # a controller reference, but a foreground delete won't wait
    (
        "block_owner_deletion=True,  # a foreground delete of the parent waits for them",
        "block_owner_deletion=False,",
    ),
]
NEVER_WRITES_STATUS: Edits = [
    ("if any(seen.get(key) != value for key, value in status.items()):", "if False:"),
]
IGNORES_DRIFT: Edits = [  # creates what is missing, never looks at what exists
    ("elif (current.data or {}) == data and _owned(current, uid):", "elif True:"),
]
NEVER_DELETES_EXTRAS: Edits = [
    ("for child in sorted(set(found) - wanted):", "for child in []:"),
]
REWRITES_EVERY_TIME: Edits = [  # updates without comparing
    ("continue  # already right: no write", "pass  # no comparison: always write"),
]
WAITS_FOR_A_CHANGE: Edits = [  # edge-triggered thinking: blocks until there is work to do
    ("from typing import Any\n", "import time\nfrom typing import Any\n"),
    (
        "    # 3. Act on the difference, and only on the difference.\n",
        "    while all((found[n].data or {}) == data for n in wanted if n in found) and set(\n"
        "        found\n"
        "    ) == wanted:\n"
        "        time.sleep(0.5)\n",
    ),
]
REPLICAS_2 = "replicas-2"

VARIANTS: list[tuple[str, Edits | str, str]] = [
    # (name, change to the reference answer, the one check that must fail)
    ("demo-declares-2", REPLICAS_2, "custom-resource"),
    ("never-writes-status", NEVER_WRITES_STATUS, "reconcile"),
    ("ignores-data-drift", IGNORES_DRIFT, "self-healing"),
    ("never-deletes-extras", NEVER_DELETES_EXTRAS, "self-healing"),
    ("no-owner-references", NO_OWNER_REFERENCES, "owner-references"),
    ("no-block-owner-deletion", NO_BLOCK_OWNER_DELETION, "owner-references"),
    ("rewrites-every-time", REWRITES_EVERY_TIME, "idempotent"),
    ("waits-for-a-change", WAITS_FOR_A_CHANGE, "idempotent"),
]


def _apply_variant(
    attempt: ControllerAttempt, change: Edits | str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if change == REPLICAS_2:
        use(monkeypatch, SOLUTION / "controller.py")

        def two(docs: list[dict[str, object]]) -> None:
            docs[0]["spec"] = {"replicas": 2, "data": {"color": "blue"}}

        attempt.apply(SOLUTION / "configmapset.yaml", two)
    else:
        assert isinstance(change, list)
        use(monkeypatch, controller(tmp_path, change))
        attempt.apply(SOLUTION / "configmapset.yaml")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "failing"), [pytest.param(c, f, id=name) for name, c, f in VARIANTS]
)
def test_wrong_answer_fails_exactly_its_check(
    attempt: ControllerAttempt,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Edits | str,
    failing: str,
) -> None:
    _apply_variant(attempt, change, tmp_path, monkeypatch)
    report = attempt.grade()
    assert set(failed(report)) == {failing}, failed(report)
    result = next(c for c in report.checks if c.id == failing)
    assert result.hint and result.points < result.max_points
    assert "grader error" not in result.message


def test_a_reference_without_block_owner_deletion_earns_half(
    attempt: ControllerAttempt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, controller(tmp_path, NO_BLOCK_OWNER_DELETION))
    attempt.apply(SOLUTION / "configmapset.yaml")
    (result,) = attempt.grade(only=["owner-references"]).checks
    assert (result.passed, result.points) == (False, 1), result.message
    assert "0 of 2 set blockOwnerDeletion: true" in result.message
    assert result.hint and "foreground deletion" in result.hint


def test_every_task_is_covered_by_a_wrong_variant() -> None:
    assert {f for *_, f in VARIANTS} == {t.id for t in LAB.tasks}


def test_partial_credit_follows_requirements_met(
    attempt: ControllerAttempt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Children right but no status (reconcile: 2 of 3); no data repair (self-healing: 1 of 3
    # steps: the scale-up passes, the drift and the new data key do not); no color (1 of 3).
    use(monkeypatch, controller(tmp_path, NEVER_WRITES_STATUS + IGNORES_DRIFT))

    def no_color(docs: list[dict[str, object]]) -> None:
        docs[0]["spec"] = {"replicas": 3, "data": {"colour": "blue"}}

    attempt.apply(SOLUTION / "configmapset.yaml", no_color)
    by_id = {c.id: c for c in attempt.grade().checks}
    assert (by_id["custom-resource"].points, by_id["custom-resource"].passed) == (1, False)
    assert (by_id["reconcile"].points, by_id["reconcile"].passed) == (2, False)
    assert (by_id["self-healing"].points, by_id["self-healing"].passed) == (1, False)
    assert "drifted" in by_id["self-healing"].message
    assert by_id["owner-references"].passed and by_id["idempotent"].passed


def test_self_healing_restores_the_spec_and_removes_what_it_caused(
    attempt: ControllerAttempt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, controller(tmp_path, NEVER_DELETES_EXTRAS))
    attempt.apply(SOLUTION / "configmapset.yaml")
    (result,) = attempt.grade(only=["self-healing"]).checks
    assert not result.passed and "extra demo-2, demo-3, demo-4" in result.message
    demo = attempt.client.get(CONFIGMAPSETS, "demo", attempt.name)
    assert demo is not None and demo["spec"] == {"replicas": 3, "data": {"color": "blue"}}
    assert set(attempt.configmaps()) == {"demo-0", "demo-1", "demo-2"}


def test_a_controller_that_never_returns_is_stopped_at_the_deadline(
    attempt: ControllerAttempt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hang = tmp_path / "controller.py"
    hang.write_text(
        "import time\n\ndef reconcile(core, custom, namespace, name):\n"
        "    while True:\n        time.sleep(1)\n"
    )
    use(monkeypatch, hang)
    attempt.apply(SOLUTION / "configmapset.yaml")
    start = time.monotonic()
    report = runner.run(
        LAB, namespace=attempt.name, only=["reconcile"], client=attempt.client, timeout=4
    )
    elapsed = time.monotonic() - start
    (result,) = report.checks
    assert elapsed < 15, elapsed
    assert not result.passed and result.points == 0
    assert "did not return within" in result.message
    assert result.hint and "level-triggered" in result.hint


def test_a_controller_that_does_not_import_fails_with_its_line(
    attempt: ControllerAttempt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "controller.py"
    broken.write_text("def reconcile(core, custom, namespace, name)\n    pass\n")
    use(monkeypatch, broken)
    attempt.apply(SOLUTION / "configmapset.yaml")
    (result,) = attempt.grade(only=["idempotent"]).checks
    assert not result.passed and "could not import your controller: SyntaxError" in result.message
    assert "controller.py:1" in result.message
    assert result.hint and "python -m kubelab.controller_harness" in result.hint


def test_a_missing_controller_file_fails_with_a_hint(
    attempt: ControllerAttempt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, tmp_path / "nowhere.py")
    attempt.apply(SOLUTION / "configmapset.yaml")
    report = attempt.grade(only=["reconcile", "owner-references"])
    for result in report.checks:
        assert not result.passed and "does not exist" in result.message
        assert result.hint and "KUBELAB_CONTROLLER" in result.hint
