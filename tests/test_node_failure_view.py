"""The pure part of kubelab.node_failure_view: reading a node and its pods, naming the moments of
a node failure, and drawing them. The live sequence runs in notebook 09 on the sim cluster."""

from __future__ import annotations

from typing import Any

from kubelab.node_failure_view import (
    NodeSample,
    figure,
    marks,
    milestones,
    node_ready,
    render_html,
    render_line,
    sample,
    settled,
    taints_of,
)

NODE = "learn-09-node"
NO_SCHEDULE = "node.kubernetes.io/not-ready:NoSchedule"
NO_EXECUTE = "node.kubernetes.io/not-ready:NoExecute"


def node(ready: str | None, *taints: tuple[str, str]) -> dict[str, Any]:
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    return {
        "metadata": {"name": NODE},
        "spec": {"taints": [{"key": k, "effect": e} for k, e in taints]},
        "status": {"conditions": conditions},
    }


def pod(where: str | None, *, ready: bool = True, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "jobs-x"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-27T05:00:00Z"
    spec = {"nodeName": where} if where else {}
    return {
        "metadata": meta,
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_a_node_without_a_ready_condition_is_unknown() -> None:
    assert node_ready(node("True")) == "True"
    assert node_ready(node("False")) == "False"
    assert node_ready(node(None)) == "Unknown"


def test_taints_read_as_key_and_effect_in_order() -> None:
    n = node("False", ("node.kubernetes.io/not-ready", "NoSchedule"), ("a", "NoExecute"))
    assert taints_of(n) == (NO_SCHEDULE, "a:NoExecute")
    assert taints_of({"spec": {}}) == ()


def test_a_sample_sorts_pods_by_where_they_are() -> None:
    pods = [
        pod(NODE),
        pod(NODE, deleting=True),
        pod("node-000001"),
        pod("node-000002", ready=False),  # started elsewhere but not Ready yet: not counted
        pod("node-000002", deleting=True),  # an old pod going away elsewhere: not counted
        pod(None),
    ]
    s = sample(3.0, node("False"), pods)
    assert (s.on_node, s.evicting, s.ready_elsewhere, s.pending) == (1, 1, 1, 1)
    assert s.node_ready == "False" and s.elapsed == 3.0


def failure(*, evicting_seen: bool) -> list[NodeSample]:
    """A node failure as the watcher records it (only the samples that changed)."""
    both = (NO_SCHEDULE, NO_EXECUTE)
    middle = [NodeSample(27.0, "False", both, 1, 2, 0, 2)] if evicting_seen else []
    return [
        NodeSample(0.0, "True", (), 3, 0, 0, 0),
        NodeSample(1.1, "False", (), 3, 0, 0, 0),
        NodeSample(1.6, "False", (NO_SCHEDULE,), 3, 0, 0, 0),
        NodeSample(16.8, "False", both, 3, 0, 0, 0),
        *middle,
        NodeSample(27.5, "False", both, 0, 0, 3, 0),
    ]


def test_milestones_name_each_step_at_its_first_sample() -> None:
    found = milestones(failure(evicting_seen=True), replicas=3)
    assert found == {
        "NotReady": 1.1,
        "NoSchedule taint": 1.6,
        "NoExecute taint": 16.8,
        "first eviction": 27.0,
        "all moved": 27.5,
    }


def test_an_eviction_is_seen_even_when_no_sample_caught_a_pod_terminating() -> None:
    found = milestones(failure(evicting_seen=False), replicas=3)
    assert found["first eviction"] == found["all moved"] == 27.5


def test_steps_never_reached_are_left_out() -> None:
    found = milestones(failure(evicting_seen=True)[:3], replicas=3)
    assert list(found) == ["NotReady", "NoSchedule taint"]
    assert milestones([], replicas=3) == {}


def test_not_settled_while_replicas_are_missing_or_still_on_the_node() -> None:
    assert not settled(NodeSample(1, "False", (), 0, 0, 2, 1), replicas=3)
    assert not settled(NodeSample(1, "False", (), 0, 1, 3, 0), replicas=3)
    assert settled(NodeSample(1, "False", (), 0, 0, 3, 0), replicas=3)


def test_close_milestones_share_a_label() -> None:
    found = {"NotReady": 1.1, "NoSchedule taint": 1.6, "NoExecute taint": 16.8, "all moved": 30}
    assert marks(found) == [
        (1.1, "NotReady, NoSchedule taint"),
        (16.8, "NoExecute taint"),
        (30, "all moved"),
    ]


def test_the_figure_draws_both_curves_and_shades_the_toleration() -> None:
    fig = figure(failure(evicting_seen=True), replicas=3, title="a node fails")
    [ax] = fig.axes
    labels = [line.get_label() for line in ax.get_lines()]
    assert "pods on the failed node" in labels and "Ready pods on healthy nodes" in labels
    assert len(ax.patches) == 1  # the tolerationSeconds span
    assert ax.get_xlim()[1] > 27.5  # the final state stays visible
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["NotReady, NoSchedule taint", "NoExecute taint", "first eviction, all moved"]


def test_renderings_say_where_the_pods_are() -> None:
    s = failure(evicting_seen=True)[4]
    line = render_line(s)
    assert "Ready=False" in line and "on node 1 (+2 evicting)" in line and NO_EXECUTE in line
    page = render_html(NODE, s, "<late>")
    assert "1 running, 2 being evicted" in page and "&lt;late&gt;" in page
