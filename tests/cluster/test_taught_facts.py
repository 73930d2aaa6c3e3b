"""What notebooks 07, 08 and 09 show live, checked on the sim cluster's real API server.

The notebooks print what happens and leave the judging to the learner (no asserts in cells a
learner reads); these tests hold the behaviour they rely on: in-place resize through the `resize`
subresource, the Pod Security dry-run review, the rollout deadline a rollback watcher reads, and
the pull policy of a digest reference; and notebook 09's node failure, in order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubelab import node_failure_view
from kubelab.wait import until
from tests.conftest import Kubectl

IMAGE = "kubelab/demo-web:v1"


def _get(kubectl: Kubectl, namespace: str, kind: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        kubectl("-n", namespace, "get", kind, name, "-o", "json").stdout
    )
    return found


def _resize(kubectl: Kubectl, namespace: str, resources: dict[str, Any]) -> Any:
    body = {"spec": {"containers": [{"name": "web", "resources": resources}]}}
    return kubectl(
        "-n", namespace, "patch", "pod", "sized", "--subresource", "resize",
        "-p", json.dumps(body), check=False,
    )  # fmt: skip


def test_a_pod_is_resized_in_place_through_its_resize_subresource(
    kubectl: Kubectl, namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sized"},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": IMAGE,
                    "resources": {
                        "requests": {"cpu": "300m", "memory": "96Mi"},
                        "limits": {"cpu": "600m", "memory": "192Mi"},
                    },
                }
            ]
        },
    }
    kubectl("-n", namespace, "apply", "-f", "-", stdin=json.dumps(pod))
    before = until(
        lambda: _get(kubectl, namespace, "pod", "sized"),
        lambda p: p.get("status", {}).get("phase") == "Running",
        timeout=60,
        what="the pod to run",
    )
    # No kubelet reports the container's resources yet: the API server refuses a resize.
    refused = _resize(kubectl, namespace, {"requests": {"cpu": "450m"}})
    assert refused.returncode != 0
    assert "without support for resize" in refused.stderr, refused.stderr
    # A plain patch of a pod's resources is refused too: only the subresource resizes.
    plain = kubectl(
        "-n", namespace, "patch", "pod", "sized", "-p",
        json.dumps({"spec": {"containers": [{"name": "web", "resources": {
            "requests": {"cpu": "450m"}}}]}}),
        check=False,
    )  # fmt: skip
    assert plain.returncode != 0 and "Forbidden" in plain.stderr, plain.stderr

    # What notebook 07 does on sim in the kubelet's place: report the applied resources.
    applied = before["spec"]["containers"][0]["resources"]
    path = "/status/containerStatuses/0/resources"
    kubectl(
        "-n", namespace, "patch", "pod", "sized", "--subresource", "status", "--type", "json",
        "-p", json.dumps([{"op": "add", "path": path, "value": applied}]),
    )  # fmt: skip
    grown = _resize(kubectl, namespace, {"requests": {"cpu": "450m"}, "limits": {"cpu": "900m"}})
    assert grown.returncode == 0, grown.stderr
    after = _get(kubectl, namespace, "pod", "sized")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "450m"
    assert after["status"]["containerStatuses"][0]["restartCount"] == 0

    # Requests equal to limits would make the Burstable pod Guaranteed: refused.
    qos = _resize(kubectl, namespace, {"requests": {"cpu": "900m", "memory": "192Mi"}})
    assert qos.returncode != 0 and "QOS Class may not change" in qos.stderr, qos.stderr


def _deployment(name: str, security: dict[str, Any], **spec: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [{"name": "web", "image": IMAGE, "securityContext": security}]
                    },
                },
                **spec,
            },
        }
    )


def _review(kubectl: Kubectl, namespace: str) -> str:
    return kubectl(
        "label", "--dry-run=server", "--overwrite", "namespace", namespace,
        "pod-security.kubernetes.io/enforce=restricted",
    ).stderr  # fmt: skip


def test_the_pod_security_dry_run_names_root_pods_and_passes_the_fixed_ones(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=_deployment("root", {"runAsUser": 0}))
    kubectl("-n", namespace, "rollout", "status", "deployment/root", "--timeout=60s")
    warned = _review(kubectl, namespace)
    assert "runAsNonRoot" in warned and "root-" in warned, warned
    assert (
        "pod-security.kubernetes.io/enforce"
        not in kubectl("get", "namespace", namespace, "-o", "jsonpath={.metadata.labels}").stdout
    )  # a dry run labels nothing

    kubectl("-n", namespace, "delete", "deployment", "root", "--wait=true")
    fixed = {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    kubectl("-n", namespace, "apply", "-f", "-", stdin=_deployment("fixed", fixed))
    kubectl("-n", namespace, "rollout", "status", "deployment/fixed", "--timeout=60s")
    until(
        lambda: kubectl("-n", namespace, "get", "pods", "-l", "app=root", "-o", "name").stdout,
        lambda out: not out.strip(),
        timeout=60,
        what="the root pods to go",
    )
    assert _review(kubectl, namespace).strip() == ""


def test_a_stuck_rollout_reports_its_deadline_and_undo_restores_the_image(
    kubectl: Kubectl, namespace: str
) -> None:
    doc = _deployment("blog", {}, progressDeadlineSeconds=10)
    kubectl("-n", namespace, "apply", "-f", "-", stdin=doc)
    kubectl("-n", namespace, "rollout", "status", "deployment/blog", "--timeout=60s")
    kubectl("-n", namespace, "set", "image", "deployment/blog", "web=kubelab/demo-web:v3")

    def progressing(dep: dict[str, Any]) -> dict[str, Any]:
        conditions = dep.get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == "Progressing"), {})

    stuck = until(
        lambda: _get(kubectl, namespace, "deployment", "blog"),
        lambda d: progressing(d).get("reason") == "ProgressDeadlineExceeded",
        timeout=90,
        what="the progress deadline",
    )
    assert progressing(stuck)["status"] == "False"
    assert stuck["status"].get("availableReplicas") == 2  # the old pods kept serving
    status = kubectl(
        "-n", namespace, "rollout", "status", "deployment/blog", "--timeout=5s", check=False
    )
    assert status.returncode != 0 and "exceeded its progress deadline" in status.stderr, status

    kubectl("-n", namespace, "rollout", "undo", "deployment/blog")
    kubectl("-n", namespace, "rollout", "status", "deployment/blog", "--timeout=60s")
    back = _get(kubectl, namespace, "deployment", "blog")
    assert back["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


def test_a_digest_reference_is_pulled_if_not_present(kubectl: Kubectl, namespace: str) -> None:
    digest = "sha256:" + "3f" * 32
    policies = {}
    for image in (f"{IMAGE}@{digest}", f"kubelab/demo-web@{digest}", "kubelab/demo-web:latest"):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "pull"},
            "spec": {"containers": [{"name": "web", "image": image}]},
        }
        args = ("-n", namespace, "create", "--dry-run=server", "-o", "json", "-f", "-")
        made = json.loads(kubectl(*args, stdin=json.dumps(pod)).stdout)
        policies[image] = made["spec"]["containers"][0]["imagePullPolicy"]
    assert list(policies.values()) == ["IfNotPresent", "IfNotPresent", "Always"], policies


NB09_NODE = "taught-facts-node"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def test_a_failed_nodes_pods_move_after_their_toleration_in_the_notebooks_order(
    kubectl: Kubectl, namespace: str, kubeconfig: Path
) -> None:
    """Notebook 09, section 4: NotReady, NoSchedule, NoExecute, then the evictions once the
    pods' 10 s toleration runs out, and every replica Ready on another node."""
    taint = {"key": "kubelab.dev/taught", "value": namespace, "effect": "NoSchedule"}
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NB09_NODE,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": NB09_NODE,
                "kubelab.dev/drill": "true",
            },
        },
        "spec": {"taints": [taint]},
        "status": {
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        },
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(node))
    try:
        tolerations = [
            {**{k: taint[k] for k in ("key", "value", "effect")}, "operator": "Equal"},
            *(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}
                for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
            ),
        ]
        prefer = {
            "weight": 100,
            "preference": {
                "matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [NB09_NODE]}
                ]
            },
        }
        doc = json.loads(_deployment("jobs", {}))
        doc["spec"]["replicas"] = 3
        doc["spec"]["template"]["spec"].update(
            tolerations=tolerations,
            affinity={
                "nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [prefer]}
            },
        )
        until(
            lambda: json.loads(kubectl("get", "node", NB09_NODE, "-o", "json").stdout),
            lambda n: node_failure_view.node_ready(n) == "True",
            timeout=60,
            what="the node Ready",
        )
        kubectl("-n", namespace, "apply", "-f", "-", stdin=json.dumps(doc))
        kubectl("-n", namespace, "rollout", "status", "deployment/jobs", "--timeout=90s")
        where = kubectl(
            "-n", namespace, "get", "pods", "-l", "app=jobs", "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ).stdout.split()  # fmt: skip
        assert where.count(NB09_NODE) == 3, where

        kubectl("label", "node", NB09_NODE, "kubelab.dev/fault=node-not-ready")
        samples = node_failure_view.watch_node_failure(
            NB09_NODE, namespace, "app=jobs", replicas=3, timeout=150, kubeconfig=str(kubeconfig)
        )
        steps = node_failure_view.milestones(samples, 3)
        assert list(steps) == [
            "NotReady",
            "NoSchedule taint",
            "NoExecute taint",
            "first eviction",
            "all moved",
        ], steps
        assert steps["first eviction"] - steps["NoExecute taint"] >= 8, steps  # the toleration
        moved = kubectl(
            "-n", namespace, "get", "pods", "-l", "app=jobs", "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ).stdout.split()  # fmt: skip
        assert len(moved) == 3 and NB09_NODE not in moved, moved
    finally:
        kubectl("delete", "node", NB09_NODE, "--wait=false", check=False)
