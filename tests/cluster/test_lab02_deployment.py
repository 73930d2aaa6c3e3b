"""Lab 02 on the real sim cluster: the solution passes, the starter fails with hints, and each
known-wrong answer fails exactly the check it should."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubelab import api, labs
from kubelab.grading import runner
from tests.conftest import Kubectl
from tests.lab_attempt import (
    Docs,
    LabAttempt,
    assert_every_check_fails_with_a_hint,
    find,
    grades_the_same_in_chinese,
)

LAB = labs.find("02-deployment")
SOLUTION = LAB.directory / "solution" / "overlays" / "prod"
STARTER = LAB.directory / "starter" / "overlays" / "prod"
DEV = LAB.directory / "solution" / "overlays" / "dev"


def _web(docs: Docs) -> dict[str, Any]:
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    container: dict[str, Any] = pod["containers"][0]
    return container


class LabNamespace(LabAttempt):
    """Lab 02's attempt: also rolls a Deployment out and waits for it."""

    def roll_out(self, *args: str) -> None:
        self.run(*args)
        self.run("rollout", "status", "deployment/demo-web", "--timeout=60s")


@pytest.fixture
def attempt(kubectl: Kubectl, client: api.Api) -> Iterator[LabNamespace]:
    ns = LabNamespace(LAB, kubectl, client)
    yield ns
    ns.delete()


ROLL_TO_V2 = ("set", "image", "deployment/demo-web", "web=kubelab/demo-web:v2")


def test_solution_passes_every_check(attempt: LabNamespace) -> None:
    attempt.apply(SOLUTION)
    attempt.apply(DEV)
    attempt.roll_out(*ROLL_TO_V2)
    report = attempt.grade()
    failed = {c.id: c.message for c in report.checks if not c.passed}
    assert not failed
    assert report.score == report.max_score == LAB.max_score == 14
    assert [c.id for c in report.checks] == [t.id for t in LAB.tasks]
    assert all(c.hint is None and c.message for c in report.checks)
    # The same state always gives the same score.
    assert attempt.grade().to_dict() == report.to_dict()
    grades_the_same_in_chinese(report, attempt.grade)


def test_starter_fails_every_check_with_a_hint(attempt: LabNamespace) -> None:
    attempt.apply(STARTER)
    report = attempt.grade()
    assert_every_check_fails_with_a_hint(report)


def _deployment_strategy(docs: Docs) -> None:
    find(docs, "Deployment")["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 0


def _no_memory_limit(docs: Docs) -> None:
    del _web(docs)["resources"]["limits"]["memory"]


def _liveness_copies_readiness(docs: Docs) -> None:
    web = _web(docs)
    web["livenessProbe"] = copy.deepcopy(web["readinessProbe"])


def _liveness_too_early(docs: Docs) -> None:
    _web(docs)["livenessProbe"]["initialDelaySeconds"] = 1


def _privilege_escalation(docs: Docs) -> None:
    _web(docs)["securityContext"]["allowPrivilegeEscalation"] = True


def _root_allowed(docs: Docs) -> None:
    del find(docs, "Deployment")["spec"]["template"]["spec"]["securityContext"]


def _service_target_port(docs: Docs) -> None:
    find(docs, "Service")["spec"]["ports"][0]["targetPort"] = 80


def _service_selects_more(docs: Docs) -> None:
    find(docs, "Service")["spec"]["selector"] = {"env": "prod"}
    extra = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stray", "labels": {"env": "prod"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }
    docs.append(extra)


VARIANTS = [
    # (name, change to the solution, rollout command, the one check that must fail)
    ("surge-0", _deployment_strategy, ROLL_TO_V2, "deployment"),
    ("no-memory-limit", _no_memory_limit, ROLL_TO_V2, "resources"),
    ("liveness-copies-readiness", _liveness_copies_readiness, ROLL_TO_V2, "probes"),
    ("liveness-before-readiness", _liveness_too_early, ROLL_TO_V2, "probes"),
    ("privilege-escalation", _privilege_escalation, ROLL_TO_V2, "security"),
    ("may-run-as-root", _root_allowed, ROLL_TO_V2, "security"),
    ("target-port-80", _service_target_port, ROLL_TO_V2, "service"),
    ("selector-picks-a-stray-pod", _service_selects_more, ROLL_TO_V2, "service"),
    (
        "rollout-without-new-tag",
        None,
        ("set", "env", "deployment/demo-web", "GREETING=hello"),
        "rolling-update",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mutate", "rollout", "failing"),
    [pytest.param(m, r, f, id=name) for name, m, r, f in VARIANTS],
)
def test_wrong_answer_fails_exactly_its_check(
    attempt: LabNamespace,
    mutate: Callable[[Docs], None] | None,
    rollout: tuple[str, ...],
    failing: str,
) -> None:
    attempt.apply(SOLUTION, mutate)
    attempt.apply(DEV)
    attempt.roll_out(*rollout)
    report = attempt.grade()
    failed = {c.id for c in report.checks if not c.passed}
    assert failed == {failing}, {c.id: c.message for c in report.checks if not c.passed}
    result = next(c for c in report.checks if c.id == failing)
    assert result.hint and result.points < result.max_points


def _dev_two_replicas(docs: Docs) -> None:
    find(docs, "Deployment")["spec"]["replicas"] = 2


def _dev_service_selects_nothing(docs: Docs) -> None:
    find(docs, "Service")["spec"]["selector"]["env"] = "prod"  # app: demo-web-dev, env: prod


DEV_VARIANTS = [
    # (name, change to the dev overlay's objects; each must fail dev-overlay alone)
    ("dev-two-replicas", _dev_two_replicas),
    ("dev-service-selects-nothing", _dev_service_selects_nothing),
]


@pytest.mark.slow
@pytest.mark.parametrize("mutate", [pytest.param(m, id=name) for name, m in DEV_VARIANTS])
def test_wrong_dev_overlay_fails_exactly_its_check(
    attempt: LabNamespace, mutate: Callable[[Docs], None]
) -> None:
    attempt.apply(SOLUTION)
    attempt.apply(DEV, mutate)
    attempt.roll_out(*ROLL_TO_V2)
    report = attempt.grade()
    failed = {c.id: c for c in report.checks if not c.passed}
    assert set(failed) == {"dev-overlay"}, {i: c.message for i, c in failed.items()}
    result = failed["dev-overlay"]
    assert result.hint and result.points == 1


def test_dev_with_prods_pod_labels_collides_with_prod(attempt: LabNamespace) -> None:
    """Names of its own are not enough: dev pods labelled app: demo-web are picked by prod's
    Service (and Deployment selector), so both the prod service and the dev overlay fail."""

    def prods_labels(docs: Docs) -> None:
        dep, svc = find(docs, "Deployment"), find(docs, "Service")
        for labels in (
            dep["spec"]["selector"]["matchLabels"],
            dep["spec"]["template"]["metadata"]["labels"],
            svc["spec"]["selector"],
        ):
            labels["app"] = "demo-web"

    attempt.apply(SOLUTION)
    attempt.apply(DEV, prods_labels)
    attempt.roll_out(*ROLL_TO_V2)
    by_id = {c.id: c for c in attempt.grade(only=["service", "dev-overlay"]).checks}
    assert not by_id["service"].passed and not by_id["dev-overlay"].passed
    dev = by_id["dev-overlay"]
    assert dev.points == 1 and "prod's Service demo-web selector" in dev.message, dev.message


def test_the_handed_out_dev_overlay_would_overwrite_prod(attempt: LabNamespace) -> None:
    attempt.apply(SOLUTION)
    attempt.apply(LAB.directory / "starter" / "overlays" / "dev")
    prod = attempt.client.get(api.DEPLOYMENTS, "demo-web", attempt.name)
    assert prod is not None and prod["spec"]["replicas"] == 1  # the collision the task fixes
    (result,) = attempt.grade(only=["dev-overlay"]).checks
    assert not result.passed and result.points == 0
    assert result.hint and "TODO(dev-overlay)" in result.hint


def test_every_task_is_covered_by_a_wrong_variant() -> None:
    assert {f for *_, f in VARIANTS} | {"dev-overlay"} == {t.id for t in LAB.tasks}


def test_partial_credit_follows_requirements_met(attempt: LabNamespace) -> None:
    def half_probes(docs: Docs) -> None:
        _liveness_copies_readiness(docs)  # liveness wrong path and a copy: 2 of 4 requirements
        _deployment_strategy(docs)

    attempt.apply(SOLUTION, half_probes)
    attempt.roll_out(*ROLL_TO_V2)
    by_id = {c.id: c for c in attempt.grade().checks}
    assert by_id["probes"].points == 1 and not by_id["probes"].passed
    assert by_id["deployment"].points == 2 and not by_id["deployment"].passed
    assert by_id["service"].points == by_id["service"].max_points


def test_graders_do_not_depend_on_the_image_name(attempt: LabNamespace) -> None:
    def rename(docs: Docs) -> None:
        _web(docs)["image"] = "registry.example.com/team/web-frontend:1.0.0"

    attempt.apply(SOLUTION, rename)
    attempt.apply(DEV, rename)
    attempt.roll_out(
        "set", "image", "deployment/demo-web", "web=registry.example.com/team/web-frontend:1.1.0"
    )
    report = attempt.grade()
    assert report.passed, {c.id: c.message for c in report.checks if not c.passed}


def test_rolling_update_earns_nothing_before_a_rollout_to_a_new_tag(
    attempt: LabNamespace,
) -> None:
    attempt.apply(SOLUTION)
    (untouched,) = attempt.grade(only=["rolling-update"]).checks
    attempt.roll_out("set", "env", "deployment/demo-web", "GREETING=hello")  # revision 2, same tag
    (same_tag,) = attempt.grade(only=["rolling-update"]).checks
    for result in (untouched, same_tag):
        assert result.points == 0 and not result.passed, result
        assert result.hint and "new image tag" in result.hint


def test_a_rollout_the_learner_made_earns_partial_credit_until_it_finishes(
    attempt: LabNamespace,
) -> None:
    attempt.apply(SOLUTION)
    attempt.run("set", "image", "deployment/demo-web", "web=kubelab/demo-web:v9")  # never pulls
    (result,) = attempt.grade(only=["rolling-update"], timeout=60).checks
    assert result.points == 1 and not result.passed, result
    assert "still run an old image" in result.message


def _image_tag_typo(docs: Docs) -> None:
    _web(docs)["image"] = "kubelab/demo-web:v9"  # sim/stages/faults.yaml: no such tag


def _crash_loop(docs: Docs) -> None:
    _web(docs)["env"] = [{"name": "PORT", "value": "80800"}]  # faults.yaml: exits 2 at start


def _unschedulable(docs: Docs) -> None:
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    pod["nodeSelector"] = {"kubelab.dev/no-such-node": "true"}


def _over_the_limit(docs: Docs) -> None:  # the fence's LimitRange refuses the pods themselves
    _web(docs)["resources"] = {
        "requests": {"cpu": "100", "memory": "256Mi"},
        "limits": {"cpu": "100", "memory": "256Mi"},
    }


@pytest.mark.parametrize(
    ("mutate", "cause"),
    [
        pytest.param(_image_tag_typo, "cannot pull image kubelab/demo-web:v9", id="pull"),
        pytest.param(_crash_loop, "keeps crashing", id="crash-loop"),
        pytest.param(_unschedulable, "cannot be scheduled", id="unschedulable"),
        pytest.param(_over_the_limit, "cannot create pods", id="refused-by-limit-range"),
    ],
)
def test_a_pod_that_cannot_start_stops_the_wait_and_is_named(
    attempt: LabNamespace, mutate: Callable[[Docs], None], cause: str
) -> None:
    attempt.apply(SOLUTION, mutate)
    start = time.monotonic()
    report = runner.run(
        LAB, namespace=attempt.name, only=["deployment"], client=attempt.client, timeout=60
    )
    assert time.monotonic() - start < 40  # not the 60 s deadline
    (result,) = report.checks
    assert not result.passed and not result.not_converged
    assert result.points == 2  # the spec is right; only its pods are stuck
    assert " demo-web-" in result.message and cause in result.message, result.message
    assert result.hint and "kubectl" in result.hint and attempt.name in result.hint


def test_objects_applied_to_another_namespace_are_pointed_out(
    attempt: LabNamespace, kubectl: Kubectl
) -> None:
    stray = f"{attempt.name}-default"  # as `default` would be, in a namespace of its own
    kubectl("create", "namespace", stray)
    other_lab = LabNamespace(LAB, kubectl, attempt.client)  # another lab's demo-web is at home
    try:
        kubectl("apply", "-n", stray, "-k", str(SOLUTION))
        other_lab.apply(SOLUTION)
        report = attempt.grade(only=["deployment", "service"], timeout=5)
    finally:
        kubectl("delete", "namespace", stray, "--wait=false", check=False)
        other_lab.delete()
    for result in report.checks:
        assert result.points == 0 and result.hint, result
        assert f"found in namespace {stray} instead" in result.message, result.message
        assert f"-n {attempt.name}" in result.hint and f"-n {stray}" in result.hint, result.hint
