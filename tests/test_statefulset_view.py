"""The pure part of kubelab.statefulset_view: reading pods by ordinal, deciding when a set has
settled, and the order in which pods appeared."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from kubelab.statefulset_view import (
    PodState,
    SetSample,
    first_ready,
    first_seen,
    ordinal,
    partition_of,
    pod_state,
    render_html,
    render_line,
    role,
    sample,
    settled,
    short,
)

OLD, NEW = "demo-db-5d9c8b7f4", "demo-db-6f7a8c9d1"


def pod(
    name: str,
    *,
    revision: str = OLD,
    ready: bool = True,
    phase: str = "Running",
    deleting: bool = False,
    claim: str | None = "auto",
) -> dict[str, Any]:
    """Return pod JSON as the API server sends it for a StatefulSet's pod."""
    meta: dict[str, Any] = {
        "name": name,
        "uid": f"uid-{name}",
        "labels": {"app": "demo-db", "controller-revision-hash": revision},
    }
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    volumes = []
    if claim:
        claim_name = f"data-{name}" if claim == "auto" else claim
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": claim_name}})
    volumes.append({"name": "kube-api-access", "projected": {}})
    return {
        "metadata": meta,
        "spec": {"volumes": volumes},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def statefulset(
    *,
    replicas: int = 3,
    ready: int = 3,
    generation: int = 2,
    observed: int = 2,
    current: str = OLD,
    update: str = OLD,
    partition: int | None = None,
    strategy: str = "RollingUpdate",
) -> dict[str, Any]:
    """Return StatefulSet JSON with the given spec and status."""
    update_strategy: dict[str, Any] = {"type": strategy}
    if partition is not None:
        update_strategy["rollingUpdate"] = {"partition": partition}
    status: dict[str, Any] = {
        "observedGeneration": observed,
        "replicas": replicas,
        "currentRevision": current,
        "updateRevision": update,
    }
    if ready:
        status["readyReplicas"] = ready
    return {
        "metadata": {"name": "demo-db", "generation": generation},
        "spec": {"replicas": replicas, "updateStrategy": update_strategy},
        "status": status,
    }


def states(*pods: dict[str, Any]) -> list[PodState]:
    found = [pod_state(p, "demo-db") for p in pods]
    assert all(s is not None for s in found)
    return [s for s in found if s is not None]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("demo-db-0", 0), ("demo-db-12", 12), ("demo-db", None), ("demo-dbx-1", None), ("x-1", None)],
)
def test_ordinal(name: str, expected: int | None) -> None:
    assert ordinal(name, "demo-db") == expected


def test_pod_state_reads_ordinal_revision_readiness_and_claims() -> None:
    state = pod_state(pod("demo-db-2", revision=NEW), "demo-db")
    assert state == PodState(
        name="demo-db-2",
        ordinal=2,
        phase="Running",
        ready=True,
        revision=NEW,
        claims=("data-demo-db-2",),
        uid="uid-demo-db-2",
    )


def test_pod_state_of_a_terminating_pod_is_not_ready() -> None:
    state = pod_state(pod("demo-db-1", deleting=True), "demo-db")
    assert state is not None and state.phase == "Terminating" and not state.ready


def test_pod_state_ignores_pods_of_other_names() -> None:
    assert pod_state(pod("stray"), "demo-db") is None


def test_pod_state_accepts_client_models() -> None:
    model = client.V1Pod(
        metadata=client.V1ObjectMeta(
            name="demo-db-0", uid="u0", labels={"controller-revision-hash": OLD}
        ),
        status=client.V1PodStatus(
            phase="Pending", conditions=[client.V1PodCondition(type="Ready", status="False")]
        ),
    )
    state = pod_state(model, "demo-db")
    assert state is not None and state.phase == "Pending" and not state.ready
    assert state.claims == ()


def test_settled_when_every_ordinal_is_ready_on_the_update_revision() -> None:
    pods = states(pod("demo-db-0"), pod("demo-db-1"), pod("demo-db-2"))
    assert settled(statefulset(), pods)


def test_not_settled_while_ordered_creation_is_under_way() -> None:
    pods = states(pod("demo-db-0"), pod("demo-db-1", ready=False, phase="Pending"))
    assert not settled(statefulset(ready=1), pods)


def test_not_settled_before_the_controller_saw_the_spec() -> None:
    pods = states(pod("demo-db-0"), pod("demo-db-1"), pod("demo-db-2"))
    assert not settled(statefulset(generation=3, observed=2), pods)


def test_not_settled_while_a_scale_down_still_has_extra_pods() -> None:
    pods = states(pod("demo-db-0"), pod("demo-db-1", deleting=True))
    assert not settled(statefulset(replicas=1, ready=1), pods)
    assert settled(statefulset(replicas=1, ready=1), states(pod("demo-db-0")))


def test_not_settled_with_a_gap_in_the_ordinals() -> None:
    pods = states(pod("demo-db-0"), pod("demo-db-2"))
    assert not settled(statefulset(ready=2), pods)


def test_a_partition_settles_once_the_pods_at_or_above_it_are_updated() -> None:
    sts = statefulset(current=OLD, update=NEW, partition=2)
    before = states(pod("demo-db-0"), pod("demo-db-1"), pod("demo-db-2"))
    after = states(pod("demo-db-0"), pod("demo-db-1"), pod("demo-db-2", revision=NEW))
    assert not settled(sts, before)
    assert settled(sts, after)
    assert partition_of(sts) == 2 and partition_of(statefulset()) == 0


def test_on_delete_settles_without_updating_pods() -> None:
    sts = statefulset(current=OLD, update=NEW, strategy="OnDelete")
    assert settled(sts, states(pod("demo-db-0"), pod("demo-db-1"), pod("demo-db-2")))


def test_sample_orders_pods_and_marks_roles() -> None:
    sts = statefulset(current=OLD, update=NEW, partition=2)
    s = sample(1.234, sts, states(pod("demo-db-2", revision=NEW), pod("demo-db-0")))
    assert [p.name for p in s.pods] == ["demo-db-0", "demo-db-2"]
    assert s.elapsed == 1.23 and s.partition == 2 and not s.settled
    assert [role(s, p) for p in s.pods] == ["old", "new"]
    same = sample(0, statefulset(), states(pod("demo-db-0")))
    assert role(same, same.pods[0]) == ""


def test_renderings_show_each_pod_and_the_state() -> None:
    sts = statefulset(current=OLD, update=NEW, partition=2)
    s = sample(2.0, sts, states(pod("demo-db-0"), pod("demo-db-1"), pod("demo-db-2", revision=NEW)))
    table = render_html("demo-db<script>", s, note="done")
    assert "demo-db&lt;script&gt;" in table and "<script>" not in table
    assert table.count("<tr>") == 4  # header and three pods
    assert "settled" in table and "partition 2" in table and "6f7a8c9d1 (new)" in table
    line = render_line(s)
    assert line.startswith("  2.0s  3/3 ready") and line.endswith("| settled")
    assert "demo-db-2 Running Ready rev 6f7a8c9d1 (new)" in line
    assert short(OLD) == "5d9c8b7f4"


def _samples(*moments: tuple[float, list[dict[str, Any]]]) -> list[SetSample]:
    return [sample(t, statefulset(), states(*pods)) for t, pods in moments]


def test_first_seen_and_first_ready_give_the_order_of_creation() -> None:
    samples = _samples(
        (0.0, [pod("demo-db-0", ready=False)]),
        (1.0, [pod("demo-db-0")]),
        (1.5, [pod("demo-db-0"), pod("demo-db-1", ready=False)]),
        (3.0, [pod("demo-db-0"), pod("demo-db-1"), pod("demo-db-2")]),
    )
    assert first_seen(samples) == {"demo-db-0": 0.0, "demo-db-1": 1.5, "demo-db-2": 3.0}
    assert first_ready(samples) == {"demo-db-0": 1.0, "demo-db-1": 3.0, "demo-db-2": 3.0}
    assert list(first_seen(samples)) == ["demo-db-0", "demo-db-1", "demo-db-2"]


def test_a_complete_update_settles_once_the_current_revision_catches_up() -> None:
    pods = states(*(pod(f"demo-db-{i}", revision=NEW) for i in range(3)))
    assert not settled(statefulset(current=OLD, update=NEW, partition=0), pods)
    assert settled(statefulset(current=NEW, update=NEW, partition=0), pods)
