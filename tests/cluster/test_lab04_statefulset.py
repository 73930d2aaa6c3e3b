"""Lab 04 on the real sim cluster: the solution passes, the starter fails with hints, each
known-wrong answer fails exactly the check it should, and the retention policy really keeps
claims when the set is scaled down."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubelab import api, labs
from kubelab.graders import lab04_statefulset as grader
from kubelab.wait import until
from tests.conftest import Kubectl
from tests.lab_attempt import (
    Docs,
    LabAttempt,
    assert_every_check_fails_with_a_hint,
    failed,
    find,
    grades_the_same_in_chinese,
)

LAB = labs.find("04-statefulset")
SOLUTION = LAB.directory / "solution"
STARTER = LAB.directory / "starter"
CLAIMS = [f"data-demo-db-{i}" for i in range(3)]
NEW_IMAGE = ("set", "image", "statefulset/demo-db", "db=postgres:16.6")


def _partition(n: int) -> str:
    return json.dumps({"spec": {"updateStrategy": {"rollingUpdate": {"partition": n}}}})


class LabNamespace(LabAttempt):
    """Lab 04's attempt: also waits for the set and stages updates on it."""

    def settle(self) -> None:
        """Wait until the StatefulSet's rollout (or its partitioned part) is complete."""
        self.run("rollout", "status", "statefulset/demo-db", "--timeout=60s")

    def stage(self, *change: str, partition: int = 2) -> None:
        """Set the partition, change the template, and wait, as the lab's `stage` cell does."""
        self.settle()
        self.run("patch", "statefulset", "demo-db", "-p", _partition(partition))
        self.run(*(change or NEW_IMAGE))
        self.settle()

    def claims(self) -> dict[str, api.Json]:
        """Return the namespace's PersistentVolumeClaims by name."""
        return {p["metadata"]["name"]: p for p in self.client.list(api.PVCS, self.name)}

    def pods(self) -> dict[str, api.Json]:
        """Return the namespace's pods by name."""
        return {p["metadata"]["name"]: p for p in self.client.list(api.PODS, self.name)}


@pytest.fixture
def attempt(kubectl: Kubectl, client: api.Api) -> Iterator[LabNamespace]:
    ns = LabNamespace(LAB, kubectl, client)
    yield ns
    ns.delete()


def _sts(docs: Docs) -> dict[str, Any]:
    return find(docs, "StatefulSet")


def _db(docs: Docs) -> dict[str, Any]:
    container: dict[str, Any] = _sts(docs)["spec"]["template"]["spec"]["containers"][0]
    return container


def test_solution_passes_every_check(attempt: LabNamespace) -> None:
    attempt.apply(SOLUTION)
    attempt.stage()
    report = attempt.grade()
    assert not failed(report), failed(report)
    assert report.score == report.max_score == LAB.max_score == 11
    assert [c.id for c in report.checks] == [t.id for t in LAB.tasks]
    assert all(c.hint is None and c.message for c in report.checks)
    # The same state always gives the same score.
    assert attempt.grade().to_dict() == report.to_dict()
    grades_the_same_in_chinese(report, attempt.grade)
    # Only demo-db-2 runs the new image; the grader read that from revisions.
    images = {n: p["spec"]["containers"][0]["image"] for n, p in attempt.pods().items()}
    assert images == {
        "demo-db-0": "postgres:16.4",
        "demo-db-1": "postgres:16.4",
        "demo-db-2": "postgres:16.6",
    }


def test_starter_fails_every_check_with_a_hint(attempt: LabNamespace) -> None:
    attempt.apply(STARTER)
    report = attempt.grade()
    assert_every_check_fails_with_a_hint(report)


def _not_headless(docs: Docs) -> None:
    del find(docs, "Service")["spec"]["clusterIP"]


def _port_unnamed(docs: Docs) -> None:
    del find(docs, "Service")["spec"]["ports"][0]["name"]


def _selector_picks_a_stray_pod(docs: Docs) -> None:
    find(docs, "Service")["spec"]["selector"] = {"tier": "db"}
    _sts(docs)["spec"]["template"]["metadata"]["labels"]["tier"] = "db"
    stray = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stray", "labels": {"tier": "db"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }
    docs.append(stray)


def _other_service_name(docs: Docs) -> None:
    _sts(docs)["spec"]["serviceName"] = "demo-db-peers"


def _standard_class(docs: Docs) -> None:
    _sts(docs)["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] = "standard"


def _too_small(docs: Docs) -> None:
    template = _sts(docs)["spec"]["volumeClaimTemplates"][0]
    template["spec"]["resources"]["requests"]["storage"] = "512Mi"


def _not_mounted(docs: Docs) -> None:
    del _db(docs)["volumeMounts"]


def _delete_when_scaled(docs: Docs) -> None:
    _sts(docs)["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] = "Delete"


Stage = Callable[[LabNamespace], None]


def _staged(attempt: LabNamespace) -> None:
    attempt.stage()


def _everything_updated(attempt: LabNamespace) -> None:
    attempt.stage(partition=0)


def _nothing_updated(attempt: LabNamespace) -> None:
    attempt.stage(partition=3)


def _one_too_many(attempt: LabNamespace) -> None:
    attempt.stage(partition=1)


def _no_new_image(attempt: LabNamespace) -> None:
    attempt.stage("set", "env", "statefulset/demo-db", "GREETING=hello")


VARIANTS: list[tuple[str, Callable[[Docs], None] | None, Stage, str]] = [
    # (name, change to the solution, how the update is staged, the one check that must fail)
    ("not-headless", _not_headless, _staged, "headless-service"),
    ("port-unnamed", _port_unnamed, _staged, "headless-service"),
    ("selector-picks-a-stray-pod", _selector_picks_a_stray_pod, _staged, "headless-service"),
    ("other-service-name", _other_service_name, _staged, "statefulset"),
    ("standard-storage-class", _standard_class, _staged, "storage"),
    ("claim-too-small", _too_small, _staged, "storage"),
    ("claim-not-mounted", _not_mounted, _staged, "storage"),
    ("partition-0-updates-everything", None, _everything_updated, "staged-update"),
    ("partition-3-updates-nothing", None, _nothing_updated, "staged-update"),
    ("partition-1-updates-two", None, _one_too_many, "staged-update"),
    ("update-without-new-image-tag", None, _no_new_image, "staged-update"),
    ("claims-deleted-when-scaled", _delete_when_scaled, _staged, "retention"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mutate", "stage", "failing"),
    [pytest.param(m, s, f, id=name) for name, m, s, f in VARIANTS],
)
def test_wrong_answer_fails_exactly_its_check(
    attempt: LabNamespace,
    mutate: Callable[[Docs], None] | None,
    stage: Stage,
    failing: str,
) -> None:
    attempt.apply(SOLUTION, mutate)
    stage(attempt)
    report = attempt.grade()
    assert set(failed(report)) == {failing}, failed(report)
    result = next(c for c in report.checks if c.id == failing)
    assert result.hint and "https://kubernetes.io/docs/" in result.hint
    assert result.points < result.max_points


def test_every_task_is_covered_by_a_wrong_variant() -> None:
    assert {f for *_, f in VARIANTS} == {t.id for t in LAB.tasks}


def test_partial_credit_follows_requirements_met(attempt: LabNamespace) -> None:
    attempt.apply(SOLUTION, _port_unnamed)  # 3 of 4 Service requirements: 1 of 2 points
    attempt.stage(partition=3)  # right tag change, wrong partition: 2 of 4, 1 of 3 points
    by_id = {c.id: c for c in attempt.grade().checks}
    assert by_id["headless-service"].points == 1 and not by_id["headless-service"].passed
    assert by_id["staged-update"].points == 1 and not by_id["staged-update"].passed
    assert "partition 3" in by_id["staged-update"].message
    assert by_id["statefulset"].passed and by_id["storage"].passed and by_id["retention"].passed


def test_graders_do_not_depend_on_the_image_name(attempt: LabNamespace) -> None:
    def rename(docs: Docs) -> None:
        _db(docs)["image"] = "registry.example.com/team/database:1.0.0"

    attempt.apply(SOLUTION, rename)
    attempt.stage("set", "image", "statefulset/demo-db", "db=registry.example.com/other/db:1.1.0")
    report = attempt.grade()
    assert report.passed, failed(report)


def test_the_update_is_waited_for_while_it_can_still_converge(attempt: LabNamespace) -> None:
    attempt.apply(SOLUTION)
    attempt.settle()
    attempt.run("patch", "statefulset", "demo-db", "-p", _partition(2))
    attempt.run(*NEW_IMAGE)  # no rollout status: the check itself waits for demo-db-2
    report = attempt.grade(only=["staged-update"], timeout=60)
    assert report.passed, failed(report)


def test_a_pod_that_cannot_pull_stops_the_wait_and_is_named(attempt: LabNamespace) -> None:
    def typo(docs: Docs) -> None:
        _db(docs)["image"] = "kubelab/demo-web:v9"  # sim/stages/faults.yaml: no such tag

    attempt.apply(SOLUTION, typo)
    started = time.monotonic()
    report = attempt.grade(only=["statefulset"], timeout=LAB.timeout)  # 180 s
    seconds = time.monotonic() - started
    (result,) = report.checks
    assert not result.passed
    assert "cannot pull image kubelab/demo-web:v9" in result.message, result.message
    assert result.hint and "image" in result.hint
    assert seconds < 60, f"waited {seconds:.0f}s for a pod that will never start"


def _scale(attempt: LabNamespace, replicas: int) -> None:
    attempt.run("scale", "statefulset/demo-db", f"--replicas={replicas}")
    attempt.settle()
    until(
        lambda: sorted(attempt.pods()),
        lambda names: names == [f"demo-db-{i}" for i in range(replicas)],
        timeout=60,
        what=f"the set at {replicas} pods",
    )


def test_retain_keeps_claims_when_scaled_down_and_reuses_them(attempt: LabNamespace) -> None:
    attempt.apply(SOLUTION)
    attempt.settle()
    before = {n: c["metadata"]["uid"] for n, c in attempt.claims().items()}
    assert sorted(before) == CLAIMS
    _scale(attempt, 1)
    after = attempt.claims()
    assert {n: c["metadata"]["uid"] for n, c in after.items()} == before  # all three kept
    assert all(c["status"]["phase"] == "Bound" for c in after.values())
    assert attempt.grade(only=["retention"]).passed
    _scale(attempt, 3)  # the returning pods get their old claims back
    pods = attempt.pods()
    for i, claim in enumerate(CLAIMS):
        volumes = pods[f"demo-db-{i}"]["spec"]["volumes"]
        assert {"claimName": claim} in [v.get("persistentVolumeClaim") for v in volumes]
    assert {n: c["metadata"]["uid"] for n, c in attempt.claims().items()} == before


def test_delete_when_scaled_really_deletes_the_claims(attempt: LabNamespace) -> None:
    attempt.apply(SOLUTION, _delete_when_scaled)
    attempt.settle()
    _scale(attempt, 1)
    remaining = until(
        lambda: sorted(attempt.claims()),
        lambda names: names == CLAIMS[:1],
        timeout=60,
        what="the removed pods' claims to be deleted",
    )
    assert remaining == CLAIMS[:1]
    (result,) = attempt.grade(only=["retention"]).checks
    assert not result.passed and "found Delete" in result.message


def test_retention_rehearses_on_a_stand_in_and_leaves_no_trace(attempt: LabNamespace) -> None:
    """The check scales a stand-in set with demo-db's policy, never demo-db, and removes it."""
    attempt.apply(SOLUTION, _delete_when_scaled)
    attempt.settle()
    before = attempt.client.get(api.STATEFULSETS, "demo-db", attempt.name)
    claims = {n: c["metadata"]["uid"] for n, c in attempt.claims().items()}
    (result,) = attempt.grade(only=["retention"]).checks
    assert not result.passed and result.points == 0
    assert "found Delete" in result.message
    assert "claim was deleted" in result.message or "handed to pod" in result.message
    assert result.hint and "persistentVolumeClaimRetentionPolicy" in result.hint
    after = attempt.client.get(api.STATEFULSETS, "demo-db", attempt.name)
    assert before is not None and after is not None
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"]["replicas"] == 3
    probes = f"{grader.PROBE_LABEL}={grader.PROBE_KIND}"
    assert attempt.client.list(api.STATEFULSETS, attempt.name, labels=probes) == []
    until(
        lambda: {n: c["metadata"]["uid"] for n, c in attempt.claims().items()},
        lambda found: found == claims,
        timeout=30,
        what="the stand-in's claims to go",
    )


def test_retention_without_a_policy_keeps_claims_as_the_default_does(
    attempt: LabNamespace,
) -> None:
    """No policy in the manifest: the API server's default (Retain) keeps claims, and the
    rehearsal shows it."""

    def no_policy(docs: Docs) -> None:
        del _sts(docs)["spec"]["persistentVolumeClaimRetentionPolicy"]

    attempt.apply(SOLUTION, no_policy)
    (result,) = attempt.grade(only=["retention"]).checks
    assert result.passed, result.message
    assert "kept the removed pod's claim" in result.message


def test_claims_from_an_older_template_are_reported(attempt: LabNamespace) -> None:
    attempt.apply(SOLUTION, _standard_class)
    attempt.settle()
    # The learner fixes the template: the set must be recreated, but its claims stay.
    attempt.run("delete", "statefulset", "demo-db", "--wait=true")
    attempt.apply(SOLUTION)
    attempt.settle()
    (result,) = attempt.grade(only=["storage"]).checks
    assert not result.passed and result.points == 1  # template and mount right, claims stale
    assert "data-demo-db-0 Bound with storageClassName standard" in result.message
    assert result.hint and "kubelab reset 04-statefulset" in result.hint
