"""The planted faults of the fault drills (sim/stages/faults.yaml), as a learner sees them.

Each pod fault follows from the Deployment's own spec, so each test plants it, checks what
`kubectl get pods` shows (and the event `kubectl describe` would list), then fixes the cause the
way a learner would and checks the pods become Ready. The node fault runs on a node of its own,
tainted so that only the test's pods land on it, and is removed again at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kubelab.wait import until
from tests.conftest import Kubectl

IMAGE = "kubelab/demo-web:v1"
DRILL_NODE = "fd-drill-node"
DRILL_TAINT = "kubelab.dev/drill"


def deployment(name: str, container: dict[str, Any], **pod_spec: Any) -> str:
    """A one-replica Deployment of demo-web with the given container fields."""
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": IMAGE, **container}], **pod_spec},
            },
        },
    }
    return yaml.safe_dump(doc)


def pods(kubectl: Kubectl, namespace: str, app: str) -> list[dict[str, Any]]:
    """The app's pods that are not being deleted."""
    out = kubectl("-n", namespace, "get", "pods", "-l", f"app={app}", "-o", "json").stdout
    return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]


def table(kubectl: Kubectl, namespace: str, app: str) -> list[list[str]]:
    """`kubectl get pods` rows (NAME READY STATUS RESTARTS AGE) of the app, split into columns."""
    out = kubectl("-n", namespace, "get", "pods", "-l", f"app={app}", "--no-headers").stdout
    return [line.split() for line in out.splitlines()]


def warnings(kubectl: Kubectl, namespace: str) -> set[str]:
    """Reasons of the namespace's Warning events."""
    out = kubectl(
        "-n", namespace, "get", "events", "--field-selector", "type=Warning", "-o", "json"
    ).stdout
    return {e["reason"] for e in json.loads(out)["items"]}


def all_ready(kubectl: Kubectl, namespace: str, app: str, count: int = 1) -> bool:
    rows = table(kubectl, namespace, app)
    return len(rows) == count and all(r[1] == "1/1" and r[2] == "Running" for r in rows)


def test_an_image_tag_that_does_not_exist_cannot_be_pulled(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl(
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        stdin=deployment("web", {"image": "kubelab/demo-web:v3"}),
    )
    seen = until(
        lambda: {r[2] for r in table(kubectl, namespace, "web")},
        lambda s: "ImagePullBackOff" in s,
        timeout=30,
        what="ImagePullBackOff",
    )
    assert seen == {"ImagePullBackOff"}
    [pod] = pods(kubectl, namespace, "web")
    assert pod["status"]["phase"] == "Pending"
    assert table(kubectl, namespace, "web")[0][1] == "0/1"
    assert "Failed" in warnings(kubectl, namespace)
    # ...and the kubelet keeps retrying: ErrImagePull comes back (20-30 s later)
    until(
        lambda: {r[2] for r in table(kubectl, namespace, "web")},
        lambda s: "ErrImagePull" in s,
        timeout=70,
        what="ErrImagePull again",
    )

    kubectl("-n", namespace, "set", "image", "deploy/web", f"web={IMAGE}")
    until(lambda: all_ready(kubectl, namespace, "web"), bool, timeout=30, what="fixed pods")


@pytest.mark.parametrize(
    ("container", "pulled"),
    [
        ({"image": "kubelab/demo-web:latest"}, False),  # the default policy for :latest: Always
        ({"image": "kubelab/demo-web"}, False),
        ({"image": "kubelab/demo-web:latest", "imagePullPolicy": "IfNotPresent"}, True),
        ({"image": "kubelab/demo-web", "imagePullPolicy": "IfNotPresent"}, True),
        ({"image": "kubelab/demo-web:v2", "imagePullPolicy": "Always"}, False),
    ],
    ids=["latest", "untagged", "latest-if-not-present", "untagged-if-not-present", "v2-always"],
)
def test_only_the_nodes_own_copies_run(
    kubectl: Kubectl, namespace: str, container: dict[str, Any], pulled: bool
) -> None:
    """kind's nodes hold v1, v2 and :latest (loaded by kubelab) but no registry has them: what
    the kubelet must pull from a registry fails, as :latest does with its default policy."""
    kubectl("-n", namespace, "apply", "-f", "-", stdin=deployment("web", container))
    if pulled:
        until(lambda: all_ready(kubectl, namespace, "web"), bool, timeout=30, what="Ready pod")
    else:
        until(
            lambda: {r[2] for r in table(kubectl, namespace, "web")},
            lambda s: bool(s & {"ErrImagePull", "ImagePullBackOff"}),
            timeout=30,
            what="a failed pull",
        )


def test_an_invalid_port_setting_makes_the_container_crash_loop(
    kubectl: Kubectl, namespace: str
) -> None:
    bad = deployment("web", {"env": [{"name": "PORT", "value": "80800"}]})
    kubectl("-n", namespace, "apply", "-f", "-", stdin=bad)
    rows = until(
        lambda: table(kubectl, namespace, "web"),
        lambda rs: len(rs) == 1 and rs[0][2] == "CrashLoopBackOff",
        timeout=30,
        what="CrashLoopBackOff",
    )
    assert rows[0][1] == "0/1"
    [pod] = pods(kubectl, namespace, "web")
    [status] = pod["status"]["containerStatuses"]
    assert status["lastState"]["terminated"]["exitCode"] == 2  # what demo-web exits with
    assert "BackOff" in warnings(kubectl, namespace)
    # RESTARTS keeps growing while nobody fixes it
    until(
        lambda: pods(kubectl, namespace, "web")[0]["status"]["containerStatuses"][0],
        lambda s: s["restartCount"] >= 2,
        timeout=45,
        what="a second restart",
    )

    kubectl("-n", namespace, "set", "env", "deploy/web", "PORT=8080")
    until(lambda: all_ready(kubectl, namespace, "web"), bool, timeout=30, what="fixed pods")


@pytest.mark.parametrize(
    "probe",
    [
        {"httpGet": {"path": "/health", "port": 8080}},  # a path demo-web does not serve
        {"httpGet": {"path": "/healthz", "port": 80}},  # a port nothing listens on
        {"httpGet": {"path": "/healthz", "port": "metrics"}},  # a named port of no container
        {"tcpSocket": {"port": 9090}},
    ],
    ids=["path", "port", "port-name", "tcp-port"],
)
def test_a_probe_that_asks_the_wrong_place_never_passes(
    kubectl: Kubectl, namespace: str, probe: dict[str, Any]
) -> None:
    container = {"ports": [{"name": "http", "containerPort": 8080}], "readinessProbe": probe}
    kubectl("-n", namespace, "apply", "-f", "-", stdin=deployment("web", container))
    rows = until(
        lambda: table(kubectl, namespace, "web"),
        lambda rs: len(rs) == 1 and rs[0][2] == "Running",
        timeout=30,
        what="a Running pod",
    )
    assert rows[0][1] == "0/1"
    [pod] = pods(kubectl, namespace, "web")
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "False"
    assert "Unhealthy" in warnings(kubectl, namespace)

    good = {"httpGet": {"path": "/healthz", "port": "http"}}
    patch = [
        {"op": "replace", "path": "/spec/template/spec/containers/0/readinessProbe", "value": good}
    ]
    kubectl("-n", namespace, "patch", "deploy/web", "--type=json", "-p", json.dumps(patch))
    until(lambda: all_ready(kubectl, namespace, "web"), bool, timeout=30, what="fixed pods")


def test_a_healthy_demo_web_is_not_touched(kubectl: Kubectl, namespace: str) -> None:
    """A custom PORT with a probe on it, and images other than demo-web: all Ready."""
    container = {
        "image": "kubelab/demo-web:v2",
        "env": [{"name": "PORT", "value": "9090"}, {"name": "READY_AFTER_SECONDS", "value": "1.5"}],
        "ports": [{"name": "http", "containerPort": 9090}],
        "readinessProbe": {"httpGet": {"path": "/api/items", "port": "http"}},
    }
    kubectl("-n", namespace, "apply", "-f", "-", stdin=deployment("web", container))
    kubectl(
        "-n", namespace, "apply", "-f", "-", stdin=deployment("other", {"image": "nginx:0.0.0"})
    )
    until(lambda: all_ready(kubectl, namespace, "web"), bool, timeout=30, what="demo-web Ready")
    until(lambda: all_ready(kubectl, namespace, "other"), bool, timeout=30, what="nginx Ready")


@pytest.fixture
def drill_node(kubectl: Kubectl) -> Iterator[str]:
    """A KWOK node of its own, tainted so that only pods tolerating the drill land on it."""
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": DRILL_NODE,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": DRILL_NODE, DRILL_TAINT: "true"},
        },
        "spec": {"taints": [{"key": DRILL_TAINT, "value": "true", "effect": "NoSchedule"}]},
        "status": {
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        },
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(node))
    try:
        yield DRILL_NODE
    finally:
        kubectl("delete", "node", DRILL_NODE, "--wait=false", check=False)


def node_state(kubectl: Kubectl, name: str) -> tuple[str, set[str]]:
    """(STATUS column of `kubectl get nodes`, the node's NoExecute taint keys)."""
    status = kubectl("get", "node", name, "--no-headers").stdout.split()[1]
    node = json.loads(kubectl("get", "node", name, "-o", "json").stdout)
    taints = {t["key"] for t in node["spec"].get("taints", []) if t["effect"] == "NoExecute"}
    return status, taints


def test_a_node_that_goes_not_ready_has_its_pods_evicted(
    kubectl: Kubectl, namespace: str, drill_node: str
) -> None:
    tolerations = [
        {"key": DRILL_TAINT, "operator": "Exists", "effect": "NoSchedule"},
        # the default is 300 s; the drill does not want learners to wait that long
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 5,
        },
    ]
    doc = deployment("web", {}, nodeSelector={DRILL_TAINT: "true"}, tolerations=tolerations)
    kubectl("-n", namespace, "apply", "-f", "-", stdin=doc)
    kubectl("-n", namespace, "scale", "deploy/web", "--replicas=2")
    until(lambda: all_ready(kubectl, namespace, "web", 2), bool, timeout=30, what="pods Ready")
    first = {p["metadata"]["name"] for p in pods(kubectl, namespace, "web")}
    assert {p["spec"]["nodeName"] for p in pods(kubectl, namespace, "web")} == {drill_node}

    kubectl("label", "node", drill_node, "kubelab.dev/fault=node-not-ready")
    until(
        lambda: node_state(kubectl, drill_node),
        lambda s: s == ("NotReady", {"node.kubernetes.io/not-ready"}),
        timeout=60,
        what="NotReady with the NoExecute taint",
    )
    # evicted after tolerationSeconds; the replacements cannot go anywhere else
    now = until(
        lambda: pods(kubectl, namespace, "web"),
        lambda ps: len(ps) == 2 and not first & {p["metadata"]["name"] for p in ps},
        timeout=60,
        what="the pods evicted and replaced",
    )
    assert {r[2] for r in table(kubectl, namespace, "web")} == {"Pending"}, now

    kubectl("label", "node", drill_node, "kubelab.dev/fault-")  # the kubelet is back
    until(lambda: node_state(kubectl, drill_node), lambda s: s == ("Ready", set()), timeout=30)
    until(lambda: all_ready(kubectl, namespace, "web", 2), bool, timeout=30, what="pods Ready")


def test_the_cluster_nodes_carry_no_fault(kubectl: Kubectl) -> None:
    """The fault Stages leave every node without the label alone."""
    out = kubectl("get", "nodes", "-l", f"!{DRILL_TAINT}", "--no-headers").stdout
    assert [line.split()[1] for line in out.splitlines()] == ["Ready"] * 3
