"""Lab 09 on the real sim cluster: the planted faults show as a learner sees them, the seeded
namespace fails every check with a hint, the solution passes, each fault put back fails exactly
its check, and the drill node stays out of everyone else's way."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubelab import api, kube, labs
from kubelab.cluster.sim import SimBackend
from kubelab.graders import lab09_fault_drills as grader
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

LAB = labs.find("09-fault-drills")
SOLUTION = LAB.directory / "solution"
STARTER = LAB.directory / "starter"
SETUP = LAB.directory / "setup"

# What `kubectl get pods` shows for each seeded Deployment (the STATUS column, READY 0/1).
SYMPTOMS = {
    "shop-web": {"ErrImagePull", "ImagePullBackOff"},
    "shop-api": {"CrashLoopBackOff"},
    "shop-search": {"Running"},
    "shop-worker": {"Pending"},
}
WHERE = {
    "image-pull": "shop-web",
    "crash-loop": "shop-api",
    "readiness": "shop-search",
    "node-not-ready": "shop-worker",
}


@pytest.fixture(scope="module", autouse=True)
def drill_node_removed_afterwards(kubectl: Kubectl) -> Iterator[None]:
    """Later tests count the cluster's nodes; the drill node goes once this module is done."""
    yield
    kubectl("delete", "node", grader.DRILL_NODE, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def attempt(kubectl: Kubectl, client: api.Api) -> Iterator[LabAttempt]:
    ns = LabAttempt(LAB, kubectl, client)
    yield ns
    ns.delete()


def _statuses(attempt: LabAttempt) -> dict[str, set[str]]:
    """Deployment name -> the STATUS values of its pods (READY 0/1 only; 1/1 shows as Ready)."""
    out: dict[str, set[str]] = {}
    for line in attempt.run("get", "pods", "--no-headers", "-L", "app").splitlines():
        cols = line.split()
        status = "Ready" if cols[1] == "1/1" else cols[2]
        out.setdefault(cols[-1], set()).add(status)
    return out


def _faults_show(attempt: LabAttempt) -> dict[str, set[str]]:
    return until(
        lambda: _statuses(attempt),
        lambda s: all(s.get(name, set()) and s[name] <= want for name, want in SYMPTOMS.items()),
        timeout=45,
        what="every planted fault to show",
    )


def test_the_planted_faults_show_as_a_kubelet_would_report_them(
    attempt: LabAttempt, kubectl: Kubectl
) -> None:
    _faults_show(attempt)
    node = json.loads(kubectl("get", "node", grader.DRILL_NODE, "-o", "json").stdout)
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "False"
    taints = {t["key"] for t in node["spec"]["taints"]}
    assert {"kubelab.dev/drill", "node.kubernetes.io/not-ready"} <= taints
    events = attempt.run("get", "events", "--field-selector", "type=Warning", "-o", "json")
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"Failed", "BackOff", "Unhealthy", "FailedScheduling"} <= reasons


def test_the_seeded_namespace_fails_every_check_naming_the_deployment(
    attempt: LabAttempt,
) -> None:
    _faults_show(attempt)
    report = attempt.grade(timeout=10)
    assert_every_check_fails_with_a_hint(report)
    for check in report.checks:
        assert WHERE[check.id] in check.message, (check.id, check.message)
    # Each pod is counted once, by what keeps it from Ready (a crash loop is not also "not Ready").
    crash = next(c for c in report.checks if c.id == "crash-loop")
    assert "CrashLoopBackOff on" in crash.message, crash.message
    assert "Running but not Ready" not in crash.message, crash.message


def test_the_starter_is_the_seeded_shop(attempt: LabAttempt) -> None:
    def by_name(docs: Docs) -> dict[tuple[str, str], Any]:
        return {(d["kind"], d["metadata"]["name"]): d for d in docs}

    assert by_name(attempt.render(STARTER)) == by_name(attempt.render(SETUP))


def test_solution_passes_every_check(attempt: LabAttempt) -> None:
    attempt.apply(SOLUTION)
    report = attempt.grade(timeout=60)
    assert not failed(report)
    assert report.score == report.max_score == LAB.max_score == 8
    assert all(c.hint is None and c.message for c in report.checks)
    assert _statuses(attempt) == {name: {"Ready"} for name in SYMPTOMS}
    grades_the_same_in_chinese(report, lambda: attempt.grade(timeout=60))


def _container(docs: Docs, name: str) -> dict[str, Any]:
    container: dict[str, Any] = find(docs, "Deployment", name)["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def _bad_tag(docs: Docs) -> None:
    _container(docs, "shop-web")["image"] = "kubelab/demo-web:v3"


def _bad_ready_after(docs: Docs) -> None:
    _container(docs, "shop-api")["env"] = [{"name": "READY_AFTER_SECONDS", "value": "-1"}]


def _probe_on_wrong_port(docs: Docs) -> None:
    _container(docs, "shop-search")["readinessProbe"]["httpGet"]["port"] = 80


def _pinned(docs: Docs) -> None:
    spec = find(docs, "Deployment", "shop-worker")["spec"]["template"]["spec"]
    spec["nodeSelector"] = {"kubelab.dev/drill": "true"}
    spec["tolerations"] = [{"key": "kubelab.dev/drill", "operator": "Exists"}]


def _pinned_by_name(docs: Docs) -> None:
    """Bound to the drill node by name, past the scheduler (and its taints) altogether."""
    find(docs, "Deployment", "shop-worker")["spec"]["template"]["spec"]["nodeName"] = (
        "kubelab-drill-node"
    )


@pytest.mark.parametrize(
    ("task", "fault"),
    [
        ("image-pull", _bad_tag),
        ("crash-loop", _bad_ready_after),
        ("readiness", _probe_on_wrong_port),
        ("node-not-ready", _pinned),
        ("node-not-ready", _pinned_by_name),
    ],
    ids=["image-pull", "crash-loop", "readiness", "node-not-ready", "node-not-ready-by-name"],
)
def test_each_fault_fails_exactly_its_check(
    attempt: LabAttempt, task: str, fault: Callable[[Docs], None]
) -> None:
    attempt.apply(SOLUTION, fault)
    report = attempt.grade(timeout=30)
    assert set(failed(report)) == {task}, failed(report)


def test_hiding_the_symptom_does_not_pass(attempt: LabAttempt) -> None:
    def no_probe(docs: Docs) -> None:
        del _container(docs, "shop-search")["readinessProbe"]

    attempt.apply(SOLUTION, no_probe)
    attempt.run("scale", "deploy/shop-web", "--replicas=0")
    attempt.run("delete", "deploy/shop-api")
    report = attempt.grade(only=["image-pull", "crash-loop", "readiness"], timeout=15)
    assert set(failed(report)) == {"image-pull", "crash-loop", "readiness"}, failed(report)


def test_the_drill_node_is_not_counted_and_takes_no_one_elses_pods(
    attempt: LabAttempt, sim: SimBackend, kubectl: Kubectl, namespace: str
) -> None:
    """The attempt's namespace brought the drill node; another namespace's pods avoid it."""
    assert kube.ready_nodes(kube.api_client(sim.kubeconfig_path())) == (3, 3)
    nodes = kubectl("get", "nodes", "--no-headers").stdout.splitlines()
    assert len(nodes) == 4  # the drill node is there, just not counted
    kubectl("-n", namespace, "create", "deployment", "other", "--image=kubelab/demo-web:v1")
    kubectl("-n", namespace, "scale", "deployment", "other", "--replicas=6")
    kubectl("-n", namespace, "rollout", "status", "deployment/other", "--timeout=60s")
    out = kubectl("-n", namespace, "get", "pods", "-o", "json").stdout
    placed = {p["spec"]["nodeName"] for p in json.loads(out)["items"]}
    assert grader.DRILL_NODE not in placed and placed
