"""Lab 00 on the real sim cluster: the solution passes, the starter fails with hints, and each
known-wrong answer fails exactly the check it should."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubelab import api, labs
from tests.conftest import Kubectl
from tests.lab_attempt import (
    Docs,
    LabAttempt,
    Variant,
    assert_every_check_fails_with_a_hint,
    failed,
    find,
    grades_the_same_in_chinese,
    wrong_answers,
)

LAB = labs.find("00-first-objects")
SOLUTION = LAB.directory / "solution"
STARTER = LAB.directory / "starter"
# What the lab's `secret` cell types (the token is not in the manifests).
SECRET = ("create", "secret", "generic", "quote-token", "--from-literal=token=test-token")


class LabNamespace(LabAttempt):
    """Lab 00's attempt: the manifests plus the Secret the learner creates with kubectl."""

    def solve(self, mutate: Callable[[Docs], None] | None = None, *, secret: bool = True) -> Docs:
        """Create the Secret (unless told not to) and apply the solution, changed by `mutate`."""
        if secret:
            self.run(*SECRET)
        return self.apply(SOLUTION, mutate)


@pytest.fixture
def attempt(kubectl: Kubectl, client: api.Api) -> Iterator[LabNamespace]:
    ns = LabNamespace(LAB, kubectl, client)
    yield ns
    ns.delete()


def _api(docs: Docs) -> dict[str, Any]:
    container: dict[str, Any] = find(docs, "Pod")["spec"]["containers"][0]
    return container


def _env(docs: Docs, name: str) -> dict[str, Any]:
    return next(e for e in _api(docs)["env"] if e["name"] == name)


def test_solution_passes_every_check(attempt: LabNamespace) -> None:
    attempt.solve()
    report = attempt.grade()
    assert report.passed, failed(report)
    assert report.score == report.max_score == LAB.max_score == 13
    assert [c.id for c in report.checks] == [t.id for t in LAB.tasks]
    assert all(c.hint is None and c.message for c in report.checks)
    # The same state always gives the same score.
    assert attempt.grade().to_dict() == report.to_dict()
    grades_the_same_in_chinese(report, attempt.grade)


def test_starter_fails_every_check_with_a_hint(attempt: LabNamespace) -> None:
    attempt.apply(STARTER)
    report = attempt.grade()
    assert_every_check_fails_with_a_hint(report)


def _no_container_port(docs: Docs) -> None:
    del _api(docs)["ports"]


def _selector_picks_the_agents_too(docs: Docs) -> None:
    find(docs, "Service")["spec"]["selector"] = {"app": "quotes"}


def _language_typed_in(docs: Docs) -> None:
    _env(docs, "LANGUAGE").pop("valueFrom")
    _env(docs, "LANGUAGE")["value"] = "en"


def _secret_elsewhere(docs: Docs) -> None:
    _api(docs)["volumeMounts"][0]["mountPath"] = "/etc/secret"


def _namespace_typed_in(docs: Docs) -> None:
    _env(docs, "POD_NAMESPACE").pop("valueFrom")
    _env(docs, "POD_NAMESPACE")["value"] = "lab-00"


def _default_backoff(docs: Docs) -> None:
    del find(docs, "Job")["spec"]["backoffLimit"]  # the API defaults it to 6


def _one_completion(docs: Docs) -> None:
    find(docs, "Job")["spec"]["completions"] = 1


def _afternoon(docs: Docs) -> None:
    find(docs, "CronJob")["spec"]["schedule"] = "30 14 * * *"


def _overlapping_runs(docs: Docs) -> None:
    find(docs, "CronJob")["spec"]["concurrencyPolicy"] = "Allow"


def _waits_for_a_label(docs: Docs) -> None:
    pod = find(docs, "DaemonSet")["spec"]["template"]["spec"]
    pod["nodeSelector"] = {"kubelab.dev/quote-agent": "true"}


VARIANTS: list[Variant] = [
    ("no-container-port", _no_container_port, "pod"),
    ("selector-picks-the-agents-too", _selector_picks_the_agents_too, "selector"),
    ("language-typed-in", _language_typed_in, "config"),
    ("secret-mounted-elsewhere", _secret_elsewhere, "config"),
    ("namespace-typed-in", _namespace_typed_in, "namespace"),
    ("default-backoff-limit", _default_backoff, "job"),
    ("one-completion", _one_completion, "job"),
    ("every-afternoon", _afternoon, "cronjob"),
    ("overlapping-runs", _overlapping_runs, "cronjob"),
    ("agent-waits-for-a-label", _waits_for_a_label, "daemonset"),
]


@pytest.mark.slow
@wrong_answers(VARIANTS)
def test_wrong_answer_fails_exactly_its_check(
    attempt: LabNamespace, mutate: Callable[[Docs], None], failing: str
) -> None:
    attempt.solve(mutate)
    report = attempt.grade()
    assert set(failed(report)) == {failing}, failed(report)
    result = next(c for c in report.checks if c.id == failing)
    assert result.hint and result.points < result.max_points


def test_every_task_is_covered_by_a_wrong_variant() -> None:
    assert {f for *_, f in VARIANTS} == {t.id for t in LAB.tasks}


def test_a_missing_secret_fails_config_and_says_so(attempt: LabNamespace) -> None:
    attempt.solve(secret=False)  # on the sim the pod runs anyway: the grader reads the API
    (result,) = attempt.grade(only=["config"]).checks
    assert not result.passed and result.points == 1, result
    assert "Secret quote-token not found" in result.message, result.message
    assert result.hint and "kubectl create secret" in result.hint


def test_a_node_no_ordinary_pod_may_use_is_not_expected_to_run_the_agent(
    attempt: LabNamespace, kubectl: Kubectl
) -> None:
    """A node tainted for a drill (as lab 09's) gets no agent pod, and the check does not ask
    for one there."""
    attempt.solve()
    assert attempt.grade(only=["daemonset"]).passed
    node = f"{attempt.name}-node"
    kubectl(
        "apply",
        "-f",
        "-",
        stdin=(
            "apiVersion: v1\nkind: Node\nmetadata:\n"
            f"  name: {node}\n  annotations: {{kwok.x-k8s.io/node: fake}}\n"
            "spec:\n  taints:\n  - {key: kubelab.dev/drill, value: 'true', effect: NoSchedule}\n"
        ),
    )
    try:
        (result,) = attempt.grade(only=["daemonset"]).checks
        assert result.passed, result.message
        assert node not in result.message
    finally:
        kubectl("delete", "node", node, check=False)


def _unpullable(kind: str) -> Callable[[Docs], None]:
    """Return a change that gives `kind`'s first container an image that cannot be pulled."""

    def change(docs: Docs) -> None:
        obj = find(docs, kind)
        pod = obj["spec"] if kind == "Pod" else obj["spec"]["template"]["spec"]
        # sim/stages/faults.yaml: a demo-web tag that was never published cannot be pulled.
        pod["containers"][0]["image"] = "kubelab/demo-web:v9"

    return change


@pytest.mark.parametrize(
    ("kind", "check", "points"),
    [("Pod", "pod", 1), ("Job", "job", 1), ("DaemonSet", "daemonset", 1)],
)
def test_a_pod_whose_image_cannot_be_pulled_stops_the_wait_and_is_named(
    attempt: LabNamespace, kind: str, check: str, points: int
) -> None:
    attempt.solve(_unpullable(kind))
    start = time.monotonic()
    (result,) = attempt.grade(only=[check], timeout=60).checks
    assert time.monotonic() - start < 40  # not the 60 s deadline
    assert not result.passed and result.points == points, result
    assert "cannot pull image kubelab/demo-web:v9" in result.message, result.message
    assert result.hint and "kubectl describe pod" in result.hint, result.hint
