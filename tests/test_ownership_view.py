"""The pure part of kubelab.ownership_view: joining a Deployment, ReplicaSets and Pods into a
tree, deciding when it has settled, and drawing it; plus its one-line error on a dead cluster."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kubelab.errors import KubelabError
from kubelab.ownership_view import (
    OwnershipTree,
    build_tree,
    owner_uid,
    pod_node,
    render_html,
    render_line,
    selector_of,
    watch_ownership,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
DEP_UID = "dep-uid"


def deployment(
    *, revision: int = 2, replicas: int = 3, updated: int = 3, available: int = 3, observed: int = 2
) -> dict[str, Any]:
    """Deployment JSON as the API server sends it."""
    return {
        "metadata": {
            "name": "web",
            "uid": DEP_UID,
            "generation": 2,
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
        },
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web", "tier": "a"}}},
        "status": {
            "observedGeneration": observed,
            "replicas": updated + 0,
            "updatedReplicas": updated,
            "readyReplicas": available,
            "availableReplicas": available,
        },
    }


def replica_set(name: str, revision: int, tag: str, desired: int, replicas: int) -> dict[str, Any]:
    """ReplicaSet JSON owned by the Deployment."""
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [{"kind": "Deployment", "uid": DEP_UID, "controller": True}],
        },
        "spec": {
            "replicas": desired,
            "template": {"spec": {"containers": [{"name": "web", "image": f"demo:{tag}"}]}},
        },
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


def pod(
    name: str, rs: str, *, ready: bool = True, phase: str = "Running", age: float = 30
) -> dict[str, Any]:
    """Pod JSON owned by ReplicaSet `rs`."""
    created = (NOW - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "ownerReferences": [{"kind": "ReplicaSet", "uid": f"uid-{rs}", "controller": True}],
        },
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_pod_node_reads_phase_readiness_and_age() -> None:
    node = pod_node(pod("web-a-1", "web-a", ready=False, phase="Pending", age=90), NOW)
    assert (node.name, node.phase, node.ready, node.age) == ("web-a-1", "Pending", False, 90.0)


def test_a_pod_being_deleted_is_terminating_and_not_ready() -> None:
    data = pod("web-a-1", "web-a")
    data["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    node = pod_node(data, NOW)
    assert node.phase == "Terminating" and not node.ready


def test_owner_uid_prefers_the_controller_reference() -> None:
    data = {
        "metadata": {
            "ownerReferences": [{"uid": "other"}, {"uid": "the-controller", "controller": True}]
        }
    }
    assert owner_uid(data) == "the-controller"
    assert owner_uid({"metadata": {}}) == ""


def test_selector_of_joins_match_labels() -> None:
    assert selector_of(deployment()) == "app=web,tier=a"


def mid_rollout() -> OwnershipTree:
    """Revision 2 (v2) has two pods, one not Ready; revision 1 (v1) still has one."""
    sets = [replica_set("web-old", 1, "v1", 1, 1), replica_set("web-new", 2, "v2", 3, 2)]
    pods = [
        pod("web-new-b", "web-new", ready=False),
        pod("web-new-a", "web-new"),
        pod("web-old-a", "web-old"),
        pod("stranger", "someone-else"),  # matched the selector, owned by no shown ReplicaSet
    ]
    return build_tree(4.321, deployment(updated=2, available=2), sets, pods, NOW)


def test_build_tree_puts_pods_under_their_replica_set_newest_revision_first() -> None:
    tree = mid_rollout()
    assert [rs.state.name for rs in tree.replica_sets] == ["web-new", "web-old"]
    assert [rs.current for rs in tree.replica_sets] == [True, False]
    assert [p.name for p in tree.replica_sets[0].pods] == ["web-new-a", "web-new-b"]
    assert [p.name for p in tree.replica_sets[1].pods] == ["web-old-a"]
    assert (tree.desired, tree.updated, tree.available, tree.revision) == (3, 2, 2, 2)
    assert tree.elapsed == 4.32
    assert not tree.complete and not tree.settled


def settled_tree(**changes: Any) -> OwnershipTree:
    """Three Ready pods on revision 2, revision 1 scaled to zero, unless `changes` say otherwise."""
    sets = [replica_set("web-old", 1, "v1", 0, 0), replica_set("web-new", 2, "v2", 3, 3)]
    pods = [pod(f"web-new-{i}", "web-new") for i in range(3)]
    pods += changes.pop("extra_pods", [])
    return build_tree(1, deployment(**changes), sets, pods, NOW)


def test_a_finished_rollout_is_settled() -> None:
    tree = settled_tree()
    assert tree.complete and tree.settled


def test_not_settled_while_an_old_pod_is_still_terminating() -> None:
    leftover = pod("web-old-x", "web-old")
    leftover["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    tree = settled_tree(extra_pods=[leftover])
    assert tree.complete and not tree.settled


def test_not_settled_before_the_controller_observed_the_spec() -> None:
    assert not settled_tree(observed=1).settled


def test_not_settled_with_a_pod_too_many_on_the_current_revision() -> None:
    assert not settled_tree(extra_pods=[pod("web-new-9", "web-new")]).settled


def test_key_ignores_the_passing_of_time() -> None:
    sets = [replica_set("web-new", 2, "v2", 1, 1)]
    early = build_tree(1, deployment(), sets, [pod("p", "web-new", age=1)], NOW)
    later = build_tree(9, deployment(), sets, [pod("p", "web-new", age=9)], NOW)
    assert early.key() == later.key()
    unready = build_tree(9, deployment(), sets, [pod("p", "web-new", ready=False)], NOW)
    assert unready.key() != early.key()


def test_render_html_shows_the_chain_with_ticks_and_escapes_names() -> None:
    tree = mid_rollout()
    out = render_html(tree, "a <note>")
    assert out.index("Deployment") < out.index("web-new") < out.index("web-new-a")
    assert out.index("web-new-b") < out.index("web-old") < out.index("web-old-a")
    assert out.count("✓") == 2 and out.count("✗") == 1
    assert "revision 2 (current)" in out and "revision 1 (old)" in out
    assert "a &lt;note&gt;" in out and "<note>" not in out
    assert "converging" in out and "4.3s" in out
    assert "30s" in out  # the pods' age


def test_render_html_marks_a_replica_set_without_pods() -> None:
    assert "no pods" in render_html(settled_tree())


def test_render_line_gives_each_revision_its_readiness() -> None:
    line = render_line(mid_rollout())
    assert "web desired 3 updated 2 ready 2" in line
    assert "current rev 2 (v2) wants 3: ✓✗" in line
    assert "old rev 1 (v1) wants 1: ✓" in line
    assert render_line(settled_tree()).endswith("| settled")


def _dead_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig for a port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dead\n"
        f"clusters: [{{name: dead, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: dead, user: {token: x}}]\n"
        "contexts: [{name: dead, context: {cluster: dead, user: dead}}]\n"
    )
    return kubeconfig


def test_a_dead_cluster_is_one_line(tmp_path: Path) -> None:
    kubeconfig = _dead_kubeconfig(tmp_path)
    with pytest.raises(KubelabError) as caught:
        watch_ownership("default", "web", timeout=5, kubeconfig=str(kubeconfig))
    message = str(caught.value)
    assert "\n" not in message and "did not answer" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_the_rollout_view_on_a_dead_cluster_is_one_line(tmp_path: Path) -> None:
    from kubelab.views import watch_rollout

    kubeconfig = _dead_kubeconfig(tmp_path)
    with pytest.raises(KubelabError, match="lost the cluster") as caught:
        watch_rollout("default", "web", timeout=5, kubeconfig=str(kubeconfig))
    assert "\n" not in str(caught.value)
