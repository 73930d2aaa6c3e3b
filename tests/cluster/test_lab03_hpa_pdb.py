"""Lab 03 on the real sim cluster: the solution passes, the starter fails with hints, each
known-wrong answer fails exactly the check it should, and the checks that act (load, evictions)
leave the learner's pods as they found them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelab import api, labs, load, objects
from kubelab.graders import lab03_hpa_pdb as grader
from kubelab.graders import lab08_production_readiness as lab08
from kubelab.wait import until
from tests.conftest import Kubectl
from tests.lab_attempt import (
    Docs,
    LabAttempt,
    assert_every_check_fails_with_a_hint,
    failed,
    find,
    grades_the_same_in_chinese,
    wrong_answers,
)

LAB = labs.find("03-hpa-pdb")
SOLUTION = LAB.directory / "solution"
STARTER = LAB.directory / "starter"
LOADED = 120  # seconds: the HPA needs one or two metric scrapes and syncs of 10 s each


@pytest.fixture
def attempt(kubectl: Kubectl, client: api.Api) -> Iterator[LabAttempt]:
    ns = LabAttempt(LAB, kubectl, client)
    yield ns
    ns.delete()


def _web(docs: Docs) -> dict[str, Any]:
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    container: dict[str, Any] = pod["containers"][0]
    return container


def _pod_names(attempt: LabAttempt, labels: str) -> set[str]:
    pods = attempt.client.list(api.PODS, attempt.name, labels=labels)
    return {p["metadata"]["name"] for p in pods}


def test_solution_passes_every_check(attempt: LabAttempt) -> None:
    attempt.apply(SOLUTION)
    attempt.run("rollout", "status", "deployment/demo-web", "--timeout=60s")
    report = attempt.grade(timeout=LOADED)
    assert not failed(report)
    assert report.score == report.max_score == LAB.max_score == 15
    assert [c.id for c in report.checks] == [t.id for t in LAB.tasks]
    assert all(c.hint is None and c.message for c in report.checks)
    # The HPA really scaled, and stays up (scale-down stabilization): grading again still passes.
    deployment = attempt.client.get(api.DEPLOYMENTS, "demo-web", attempt.name)
    assert deployment is not None and deployment["spec"]["replicas"] > 3
    # Graded again, in zh-CN this time: the same verdicts and points, in Chinese.
    grades_the_same_in_chinese(report, lambda: attempt.grade(timeout=LOADED))
    # The manifest leaves spec.replicas to the HPA, so applying it again keeps what the HPA set.
    scaled = deployment["spec"]["replicas"]
    attempt.apply(SOLUTION)
    reapplied = attempt.client.get(api.DEPLOYMENTS, "demo-web", attempt.name)
    assert reapplied is not None and reapplied["spec"]["replicas"] == scaled


def test_the_solution_leaves_replicas_to_the_hpa_and_pdb_waits_for_its_floor(
    attempt: LabAttempt,
) -> None:
    docs = attempt.apply(SOLUTION)
    assert "replicas" not in find(docs, "Deployment")["spec"]
    # Graded at once: the Deployment starts at 1 until the HPA's first sync lifts it to 3, and
    # the check waits for that instead of judging a budget over 1 pod.
    (result,) = attempt.grade(only=["pdb"], timeout=60).checks
    assert result.passed and "over 3 pods" in result.message, result.message


def _at_the_hpa_floor(attempt: LabAttempt) -> None:
    """Wait until the HPA's first sync has raised demo-web from 1 pod (its manifest leaves
    spec.replicas to the HPA) to minReplicas 3, and those pods are rolled out."""
    until(
        lambda: attempt.client.get(api.DEPLOYMENTS, "demo-web", attempt.name) or {},
        lambda dep: (dep.get("spec") or {}).get("replicas", 0) >= grader.MIN_REPLICAS,
        timeout=60,
        what="the HPA to raise demo-web to its minReplicas",
    )
    attempt.run("rollout", "status", "deployment/demo-web", "--timeout=60s")


def test_acting_checks_leave_no_trace(attempt: LabAttempt) -> None:
    attempt.apply(SOLUTION)
    _at_the_hpa_floor(attempt)
    before = _pod_names(attempt, "app=demo-web")
    report = attempt.grade(only=["eviction"])
    assert report.passed, failed(report)
    # Only the grader's stand-ins were evicted: the learner's pods are all still there.
    assert _pod_names(attempt, "app=demo-web") == before
    assert not attempt.client.list(api.PDBS, attempt.name, labels=grader.DRILL_LABEL)
    assert not attempt.client.list(api.REPLICASETS, attempt.name, labels=grader.DRILL_LABEL)
    report = attempt.grade(only=["scales-under-load"], timeout=LOADED)
    assert report.passed, failed(report)
    pods = attempt.client.list(api.PODS, attempt.name, labels="app=demo-web")
    assert pods and not [
        p for p in pods if load.USAGE_CPU in (p["metadata"].get("annotations") or {})
    ]


def test_starter_fails_every_check_with_a_hint(attempt: LabAttempt) -> None:
    attempt.apply(STARTER)
    report = attempt.grade()
    assert_every_check_fails_with_a_hint(report)


def _target_80(docs: Docs) -> None:
    metric = find(docs, "HorizontalPodAutoscaler")["spec"]["metrics"][0]
    metric["resource"]["target"]["averageUtilization"] = 80


def _max_20(docs: Docs) -> None:
    # Not minReplicas 2: with replicas left to the HPA, 2 pods under minAvailable 2 also fail the
    # budget's checks, as they would in a real drain.
    find(docs, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] = 20


def _pdb_percent(docs: Docs) -> None:
    find(docs, "PodDisruptionBudget")["spec"]["minAvailable"] = "50%"


def _pdb_selects_nothing(docs: Docs) -> None:
    selector = find(docs, "PodDisruptionBudget")["spec"]["selector"]
    selector["matchLabels"]["tier"] = "frontend"


def _second_budget(docs: Docs) -> None:
    docs.append(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "demo-web-extra"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "demo-web"}}},
        }
    )


def _unhealthy_waits_for_the_budget(docs: Docs) -> None:
    # The default, written out: a pod that is not Ready may go only while the budget allows.
    find(docs, "PodDisruptionBudget")["spec"]["unhealthyPodEvictionPolicy"] = "IfHealthyBudget"


def _no_prestop(docs: Docs) -> None:
    del _web(docs)["lifecycle"]


def _prestop_outlasts_grace(docs: Docs) -> None:
    # The API server rejects a sleep action longer than the grace period, but not an exec.
    _web(docs)["lifecycle"]["preStop"] = {"exec": {"command": ["sh", "-c", "sleep 40"]}}


def _scale_up_disabled(docs: Docs) -> None:
    hpa = find(docs, "HorizontalPodAutoscaler")
    hpa["spec"]["behavior"] = {"scaleUp": {"selectPolicy": "Disabled"}}


VARIANTS = [
    # (name, change to the solution, the one check that must fail)
    ("target-80", _target_80, "hpa"),
    ("max-replicas-20", _max_20, "hpa"),
    ("pdb-50-percent", _pdb_percent, "pdb"),
    ("pdb-selects-nothing", _pdb_selects_nothing, "pdb"),
    ("unhealthy-if-healthy-budget", _unhealthy_waits_for_the_budget, "unhealthy-eviction"),
    ("second-budget-over-the-pods", _second_budget, "eviction"),
    ("no-prestop", _no_prestop, "graceful-shutdown"),
    ("prestop-outlasts-grace", _prestop_outlasts_grace, "graceful-shutdown"),
    ("scale-up-disabled", _scale_up_disabled, "scales-under-load"),
]


@pytest.mark.slow
@wrong_answers(VARIANTS)
def test_wrong_answer_fails_exactly_its_check(
    attempt: LabAttempt, mutate: Callable[[Docs], None], failing: str
) -> None:
    attempt.apply(SOLUTION, mutate)
    attempt.run("rollout", "status", "deployment/demo-web", "--timeout=60s")
    # A variant that never scales waits until the deadline: keep it short there.
    report = attempt.grade(timeout=45 if failing == "scales-under-load" else LOADED)
    assert set(failed(report)) == {failing}, failed(report)
    result = next(c for c in report.checks if c.id == failing)
    assert result.hint and result.points < result.max_points
    if mutate is _unhealthy_waits_for_the_budget:
        assert "found IfHealthyBudget" in result.message, result.message
    if mutate is _second_budget:  # two budgets: 500 from the Eviction API, never a retry loop
        assert "answers 500" in result.hint and "retries only 429" in result.hint, result.hint


def test_every_task_is_covered_by_a_wrong_variant() -> None:
    assert {f for *_, f in VARIANTS} == {t.id for t in LAB.tasks}


def test_partial_credit_follows_requirements_met(attempt: LabAttempt) -> None:
    def two_wrongs(docs: Docs) -> None:
        _target_80(docs)  # 3 of 4 hpa requirements: 2 of 3 points
        _prestop_outlasts_grace(docs)  # 2 of 3 graceful-shutdown requirements: 1 of 2 points

    attempt.apply(SOLUTION, two_wrongs)
    attempt.run("rollout", "status", "deployment/demo-web", "--timeout=60s")
    by_id = {c.id: c for c in attempt.grade(only=["hpa", "graceful-shutdown", "pdb"]).checks}
    assert by_id["hpa"].points == 2 and not by_id["hpa"].passed
    assert by_id["graceful-shutdown"].points == 1 and not by_id["graceful-shutdown"].passed
    assert by_id["pdb"].passed


def test_a_budget_that_allows_no_drain_fails_the_rehearsal(attempt: LabAttempt) -> None:
    def three_of_three(docs: Docs) -> None:
        find(docs, "PodDisruptionBudget")["spec"]["minAvailable"] = 3

    attempt.apply(SOLUTION, three_of_three)
    attempt.run("rollout", "status", "deployment/demo-web", "--timeout=60s")
    (result,) = attempt.grade(only=["eviction"]).checks
    assert not result.passed and result.points == 0
    assert "429" in result.message and "first eviction" in result.message


def test_an_exec_sleep_prestop_passes_like_the_sleep_action(attempt: LabAttempt) -> None:
    # One reading of a preStop pause for every lab: lab 08's prestop check uses it too.
    assert grader.prestop_delay is lab08.prestop_delay is objects.prestop_delay

    def exec_sleep(docs: Docs) -> None:
        _web(docs)["lifecycle"]["preStop"] = {"exec": {"command": ["sh", "-c", "sleep 5"]}}

    attempt.apply(SOLUTION, exec_sleep)
    attempt.run("rollout", "status", "deployment/demo-web", "--timeout=60s")
    (result,) = attempt.grade(only=["graceful-shutdown"], timeout=60).checks
    assert result.passed and "preStop waits 5 s" in result.message, result.message


def test_graders_do_not_depend_on_the_image_name(attempt: LabAttempt) -> None:
    def rename(docs: Docs) -> None:
        _web(docs)["image"] = "registry.example.com/team/web-frontend:1.0.0"

    attempt.apply(SOLUTION, rename)
    attempt.run("rollout", "status", "deployment/demo-web", "--timeout=60s")
    report = attempt.grade(timeout=LOADED)
    assert report.passed, failed(report)


def test_kind_load_is_a_job_that_stop_deletes(attempt: LabAttempt) -> None:
    # On sim no container runs, but the API side of the kind branch is real: create, delete.
    applied = load.start(attempt.client, attempt.name, [], substrate="kind")
    assert applied.job is not None
    job = attempt.client.get(load.JOBS, applied.job, attempt.name)
    assert job is not None and job["spec"]["parallelism"] == 4
    name = applied.job
    applied.stop()
    applied.stop()  # twice is harmless
    gone = attempt.client.get(load.JOBS, name, attempt.name)
    assert gone is None or gone["metadata"].get("deletionTimestamp")


# The pure parts of the grader.


@pytest.mark.parametrize(
    ("hook", "seconds"),
    [
        ({"sleep": {"seconds": 5}}, 5),
        ({"exec": {"command": ["sh", "-c", "sleep 7 && kill 1"]}}, 7),
        ({"exec": {"command": ["/bin/sleep", "3"]}}, 3),
        ({"httpGet": {"path": "/drain", "port": 8080}}, None),
        (None, None),
    ],
)
def test_prestop_delay(hook: dict[str, Any] | None, seconds: int | None) -> None:
    assert grader.prestop_delay(hook) == seconds


def test_drill_copies_the_budget_but_not_the_selector() -> None:
    budget = {"spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "demo-web"}}}}
    rs, copy = grader.drill_manifests("kubelab-drill-x", budget)
    assert copy["spec"]["minAvailable"] == 2
    assert copy["spec"]["selector"] == {"matchLabels": {grader.DRILL_LABEL: "kubelab-drill-x"}}
    assert rs["spec"]["replicas"] == grader.STAND_INS == 3
    assert rs["spec"]["template"]["metadata"]["labels"] == copy["spec"]["selector"]["matchLabels"]


def _never_ready(docs: Docs) -> None:
    # A readiness probe on a path demo-web does not serve: Running, 0/1 Ready, for ever (sim).
    _web(docs)["readinessProbe"]["httpGet"]["path"] = "/not-served"


def test_a_state_that_cannot_settle_is_not_converged_never_a_lower_score(
    attempt: LabAttempt, kubeconfig: Path, tmp_path: Path
) -> None:
    attempt.apply(SOLUTION, _never_ready)
    report = attempt.grade(only=["pdb", "eviction"], timeout=4)
    assert report.not_converged == ("pdb", "eviction")
    for check in report.checks:
        assert check.points == 0 and not check.passed and check.outcome == "not-converged"
        assert check.message.startswith("not converged: waited for the pods of Deployment demo-web")

    env = dict(os.environ, KUBECONFIG=str(kubeconfig), KUBELAB_DATA=str(tmp_path / "data"))
    argv = [sys.executable, "-m", "kubelab", "check", "03", "-n", attempt.name, "--timeout", "3"]
    table = subprocess.run(
        [*argv, "--task", "pdb"], env=env, capture_output=True, text=True, timeout=120
    )
    assert table.returncode == 2, table.stdout + table.stderr  # cannot grade, not "failed"
    assert "⧖ pdb" in table.stdout and "1 not converged" in table.stdout
    assert "Traceback" not in table.stdout + table.stderr
    as_json = subprocess.run(
        [*argv, "--task", "pdb", "--task", "hpa", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert as_json.returncode == 2
    outcomes = {c["id"]: c["outcome"] for c in json.loads(as_json.stdout)["checks"]}
    assert outcomes == {"pdb": "not-converged", "hpa": "passed"}

    # Once the pods can become Ready, the same check converges and passes.
    attempt.apply(SOLUTION)
    (result,) = attempt.grade(only=["pdb"], timeout=60).checks
    assert result.passed and result.points == 2, result.message


def _half_solved(attempt: LabAttempt) -> None:
    """The nbgrader round trip's half-solved state: HPA and PDB from the solution, the Deployment
    and the leftover second budget as handed out."""

    def mix(docs: Docs) -> None:
        solution = attempt.render(SOLUTION)
        for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
            ours = next(d for d in docs if d["kind"] == kind and "freeze" not in str(d))
            docs[docs.index(ours)] = find(solution, kind)

    attempt.apply(STARTER, mix)


def test_pdb_gets_the_same_grade_whatever_the_disruption_controller_left(
    kubectl: Kubectl, client: api.Api
) -> None:
    """The round trip's half-solved state, in 6 namespaces at once, each graded the moment its
    manifests are applied (as the round trip's grade cell is). With a second budget over the same
    pods the disruption controller updates only one of them, chosen at random, per pod event, so
    demo-web-pdb's status is stale in about 1 namespace in 8 (e.g. 1 healthy of 3 Ready pods, 0
    disruptions allowed; it gave 1/2 instead of 2/2). The check works the budget out from the
    settled pods instead: 2/2 in every namespace."""
    attempts = [LabAttempt(LAB, kubectl, client) for _ in range(6)]
    try:
        for attempt in attempts:
            _half_solved(attempt)
        stale = 0
        for attempt in attempts:
            by_id = {c.id: c for c in attempt.grade(only=["hpa", "pdb"], timeout=60).checks}
            budget = client.get(api.PDBS, grader.PDB_NAME, attempt.name) or {}
            stale += (budget.get("status") or {}).get("currentHealthy") != 3
            assert by_id["pdb"].passed and by_id["pdb"].points == 2, (stale, by_id["pdb"].message)
            assert by_id["hpa"].points == 2  # no CPU request: 3 of 4
    finally:
        for attempt in attempts:
            attempt.delete()
