"""Lab 07 on the real sim cluster: the solution passes, the starter fails with hints, each
known-wrong answer fails exactly the check it should, and the cluster is graded against the
learner's own plan."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubelab import api, labs, slo
from kubelab.graders import lab07_slo_capacity as grader
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

LAB = labs.find("07-slo-capacity")
SOLUTION = LAB.directory / "solution"
STARTER = LAB.directory / "starter"


@pytest.fixture
def attempt(kubectl: Kubectl, client: api.Api) -> Iterator[LabAttempt]:
    ns = LabAttempt(LAB, kubectl, client)
    yield ns
    ns.delete()


def _plan(docs: Docs) -> dict[str, str]:
    data: dict[str, str] = find(docs, "ConfigMap", grader.PLAN)["data"]
    return data


def _web(docs: Docs) -> dict[str, Any]:
    container: dict[str, Any] = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][
        0
    ]
    return container


def _settle(attempt: LabAttempt) -> None:
    attempt.run("rollout", "status", "deployment/demo-web", "--timeout=60s")


def test_solution_passes_every_check(attempt: LabAttempt) -> None:
    attempt.apply(SOLUTION)
    _settle(attempt)
    report = attempt.grade()
    assert not failed(report)
    assert report.score == report.max_score == LAB.max_score == 14
    assert [c.id for c in report.checks] == [t.id for t in LAB.tasks]
    assert all(c.hint is None and c.message for c in report.checks)
    grades_the_same_in_chinese(report, attempt.grade)


def test_the_solution_leaves_replicas_to_the_hpa(attempt: LabAttempt) -> None:
    """The Deployment's manifest has no spec.replicas: the HPA raises the new Deployment to the
    plan's min-replicas, and applying the manifest again keeps the HPA's count."""
    docs = attempt.apply(SOLUTION)
    assert "replicas" not in find(docs, "Deployment")["spec"]
    floor = int(_plan(docs)["min-replicas"])
    assert find(docs, "HorizontalPodAutoscaler")["spec"]["minReplicas"] == floor == 7
    until(
        lambda: attempt.client.get(api.DEPLOYMENTS, "demo-web", attempt.name) or {},
        lambda dep: (dep.get("spec") or {}).get("replicas", 0) == floor,
        timeout=60,
        what="the HPA to raise demo-web to its minReplicas",
    )
    attempt.apply(SOLUTION)
    reapplied = attempt.client.get(api.DEPLOYMENTS, "demo-web", attempt.name)
    assert reapplied is not None and reapplied["spec"]["replicas"] == floor


def test_starter_fails_every_check_with_a_hint(attempt: LabAttempt) -> None:
    attempt.apply(STARTER)
    report = attempt.grade(timeout=10)
    assert_every_check_fails_with_a_hint(report)


def _minutes_of_a_calendar_month(docs: Docs) -> None:
    _plan(docs)["error-budget-minutes"] = "43.83"  # 30.44 days


def _requests_per_day(docs: Docs) -> None:
    _plan(docs)["error-budget-requests"] = "2000"  # one day's budget, not the window's


def _burn_rate_in_percent(docs: Docs) -> None:
    _plan(docs)["burn-rate"] = "1.44"


def _hours_of_one_day(docs: Docs) -> None:
    _plan(docs)["hours-to-exhaustion"] = "1.67"  # 24 / 14.4: one day's window, not 30


def _rounded_down(docs: Docs) -> None:
    # A consistent plan and cluster, but the plan rounds 6.5 pods down: only the arithmetic fails.
    _plan(docs)["min-replicas"] = "6"
    find(docs, "HorizontalPodAutoscaler")["spec"]["minReplicas"] = 6


def _no_headroom(docs: Docs) -> None:
    # Sized at 100% of a pod: 5 and 9 pods, and an HPA to match.
    _plan(docs).update({"min-replicas": "5", "max-replicas": "9"})
    find(docs, "HorizontalPodAutoscaler")["spec"].update(minReplicas=5, maxReplicas=9)


def _request_not_the_plans(docs: Docs) -> None:
    _web(docs)["resources"]["requests"]["cpu"] = "200m"


def _no_memory_request(docs: Docs) -> None:
    del _web(docs)["resources"]["requests"]["memory"]
    del _web(docs)["resources"]["limits"]["memory"]  # or the request defaults to the limit


def _max_not_the_plans(docs: Docs) -> None:
    find(docs, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] = 20


def _target_80(docs: Docs) -> None:
    metric = find(docs, "HorizontalPodAutoscaler")["spec"]["metrics"][0]
    metric["resource"]["target"]["averageUtilization"] = 80


def _batch_class(docs: Docs) -> None:
    find(docs, "Deployment")["spec"]["template"]["spec"]["priorityClassName"] = "kubelab-batch"


def _no_class(docs: Docs) -> None:
    del find(docs, "Deployment")["spec"]["template"]["spec"]["priorityClassName"]


VARIANTS = [
    # (name, change to the solution, the one check that must fail)
    ("minutes-of-a-calendar-month", _minutes_of_a_calendar_month, "error-budget"),
    ("requests-of-one-day", _requests_per_day, "error-budget"),
    ("burn-rate-in-percent", _burn_rate_in_percent, "burn-rate"),
    ("hours-of-one-day", _hours_of_one_day, "burn-rate"),
    ("replicas-rounded-down", _rounded_down, "capacity"),
    ("no-burst-headroom", _no_headroom, "capacity"),
    ("request-not-the-plans", _request_not_the_plans, "requests"),
    ("no-memory-request", _no_memory_request, "requests"),
    ("max-replicas-not-the-plans", _max_not_the_plans, "autoscaling"),
    ("target-80", _target_80, "autoscaling"),
    ("batch-priority-class", _batch_class, "priority"),
    ("no-priority-class", _no_class, "priority"),
]


@pytest.mark.slow
@wrong_answers(VARIANTS)
def test_wrong_answer_fails_exactly_its_check(
    attempt: LabAttempt, mutate: Callable[[Docs], None], failing: str
) -> None:
    attempt.apply(SOLUTION, mutate)
    _settle(attempt)
    report = attempt.grade()
    assert set(failed(report)) == {failing}, failed(report)
    result = next(c for c in report.checks if c.id == failing)
    assert result.hint and result.points < result.max_points


def test_every_task_is_covered_by_a_wrong_variant() -> None:
    assert {f for *_, f in VARIANTS} == {t.id for t in LAB.tasks}


def test_partial_credit_follows_requirements_met(attempt: LabAttempt) -> None:
    def two_wrongs(docs: Docs) -> None:
        _burn_rate_in_percent(docs)  # 1 of 2 burn-rate requirements: 1 of 2 points
        _target_80(docs)  # 3 of 4 autoscaling requirements: 2 of 3 points

    attempt.apply(SOLUTION, two_wrongs)
    _settle(attempt)
    by_id = {c.id: c for c in attempt.grade(only=["burn-rate", "autoscaling", "capacity"]).checks}
    assert by_id["burn-rate"].points == 1 and not by_id["burn-rate"].passed
    assert by_id["autoscaling"].points == 2 and not by_id["autoscaling"].passed
    assert by_id["capacity"].passed


def test_the_cluster_is_graded_against_the_learners_plan(attempt: LabAttempt) -> None:
    # The HPA matches the right numbers, but the plan says otherwise: autoscaling fails too.
    def plan_only(docs: Docs) -> None:
        _plan(docs)["max-replicas"] = "11"

    attempt.apply(SOLUTION, plan_only)
    _settle(attempt)
    assert set(failed(attempt.grade(only=["capacity", "autoscaling"]))) == {
        "capacity",
        "autoscaling",
    }


def test_plan_numbers_may_be_written_with_rounding(attempt: LabAttempt) -> None:
    def rounded(docs: Docs) -> None:
        _plan(docs).update({"error-budget-minutes": "43.20", "cpu-request": "0.25"})

    attempt.apply(SOLUTION, rounded)
    _settle(attempt)
    report = attempt.grade(only=["error-budget", "capacity", "requests"])
    assert report.passed, failed(report)


def test_graders_do_not_depend_on_the_image_name(attempt: LabAttempt) -> None:
    def rename(docs: Docs) -> None:
        _web(docs)["image"] = "registry.example.com/team/web-frontend:1.0.0"

    attempt.apply(SOLUTION, rename)
    _settle(attempt)
    report = attempt.grade()
    assert report.passed, failed(report)


def test_the_lab_installs_its_priority_classes(client: api.Api, attempt: LabAttempt) -> None:
    critical = client.get(api.PRIORITYCLASSES, "kubelab-service-critical")
    batch = client.get(api.PRIORITYCLASSES, "kubelab-batch")
    assert critical is not None and critical["value"] >= grader.MIN_PRIORITY
    assert batch is not None and batch["value"] < 0 and batch["preemptionPolicy"] == "Never"


# The pure parts: the arithmetic the plan is graded with.


def test_the_expected_plan() -> None:
    want = grader.expected_plan()
    assert slo.close(want["error-budget-minutes"], 43.2)
    assert slo.close(want["error-budget-requests"], 60_000)
    assert slo.close(want["burn-rate"], 14.4)
    assert slo.close(want["hours-to-exhaustion"], 50)
    assert want["cpu-request"] == 0.25
    assert (want["min-replicas"], want["max-replicas"]) == (7, 12)


def test_the_solution_plan_is_the_expected_plan() -> None:
    import yaml

    plan = yaml.safe_load((SOLUTION / "capacity-plan.yaml").read_text())
    want = grader.expected_plan()
    assert set(plan["data"]) == set(want)
    for key, value in want.items():
        found = grader.plan_value(plan, key)
        assert found is not None and slo.close(found, value), key


@pytest.mark.parametrize(
    ("raw", "value"),
    [("43.2", 43.2), (" 7 ", 7.0), ("250m", 0.25), ("0.25", 0.25), ("1e3", 1000.0)],
)
def test_plan_value_reads_numbers_and_quantities(raw: str, value: float) -> None:
    assert grader.plan_value({"data": {"k": raw}}, "k") == value


@pytest.mark.parametrize("raw", ["", "about 40", "43,2", "14.4x"])
def test_plan_value_refuses_what_is_not_a_number(raw: str) -> None:
    assert grader.plan_value({"data": {"k": raw}}, "k") is None
    assert grader.plan_value({"data": {}}, "k") is None
