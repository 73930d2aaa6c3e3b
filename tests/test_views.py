"""The pure part of kubelab.views: reading ReplicaSets and deciding when a rollout is complete."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from kubelab.views import (
    ReplicaSetState,
    image_tag,
    owned_by,
    render_html,
    render_line,
    replica_set_state,
    rollout_complete,
    sample,
)

DEPLOYMENT_UID = "d-123"


def replica_set(
    name: str,
    revision: int,
    image: str,
    desired: int,
    replicas: int = 0,
    ready: int = 0,
    available: int = 0,
) -> dict[str, Any]:
    """Return ReplicaSet JSON as the API server sends it (zero counts omitted)."""
    status: dict[str, int] = {"replicas": replicas}
    if ready:
        status["readyReplicas"] = ready
    if available:
        status["availableReplicas"] = available
    return {
        "metadata": {
            "name": name,
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": DEPLOYMENT_UID}],
        },
        "spec": {
            "replicas": desired,
            "template": {"spec": {"containers": [{"name": "web", "image": image}]}},
        },
        "status": status,
    }


def deployment(
    *,
    revision: int = 2,
    generation: int = 2,
    observed: int = 2,
    replicas: int = 3,
    status_replicas: int = 3,
    updated: int = 3,
    available: int = 3,
) -> dict[str, Any]:
    """Return Deployment JSON with the given generation and status counts."""
    return {
        "metadata": {
            "name": "web",
            "uid": DEPLOYMENT_UID,
            "generation": generation,
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
        },
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "replicas": status_replicas,
            "updatedReplicas": updated,
            "availableReplicas": available,
        },
    }


NEW_DONE = replica_set_state(replica_set("web-b", 2, "kubelab/demo-web:v2", 3, 3, 3, 3))
OLD_EMPTY = replica_set_state(replica_set("web-a", 1, "kubelab/demo-web:v1", 0))


def test_replica_set_state_from_json() -> None:
    state = replica_set_state(replica_set("web-a", 1, "kubelab/demo-web:v1", 3, 2, 1))
    assert state == ReplicaSetState(
        name="web-a", revision=1, image_tag="v1", desired=3, replicas=2, ready=1, available=0
    )


def test_replica_set_state_from_client_model() -> None:
    model = client.V1ReplicaSet(
        metadata=client.V1ObjectMeta(
            name="web-b", annotations={"deployment.kubernetes.io/revision": "2"}
        ),
        spec=client.V1ReplicaSetSpec(
            replicas=3,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="web", image="kubelab/demo-web:v2")]
                )
            ),
        ),
        status=client.V1ReplicaSetStatus(replicas=3, ready_replicas=3, available_replicas=2),
    )
    assert replica_set_state(model) == ReplicaSetState(
        name="web-b", revision=2, image_tag="v2", desired=3, replicas=3, ready=3, available=2
    )


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("kubelab/demo-web:v2", "v2"),
        ("nginx", "latest"),
        ("localhost:5000/team/app", "latest"),
        ("localhost:5000/team/app:1.2", "1.2"),
        ("app@sha256:abc", "sha256:abc"),
    ],
)
def test_image_tag(image: str, tag: str) -> None:
    assert image_tag(image) == tag


def test_owned_by() -> None:
    rs = replica_set("web-a", 1, "x:v1", 1)
    assert owned_by(rs, DEPLOYMENT_UID)
    assert not owned_by(rs, "other")
    assert not owned_by({"metadata": {"name": "orphan"}}, DEPLOYMENT_UID)


def test_complete_when_all_new_replicas_available_and_old_scaled_to_zero() -> None:
    assert rollout_complete(deployment(), [NEW_DONE, OLD_EMPTY])


def test_not_complete_before_the_controller_observed_the_new_spec() -> None:
    assert not rollout_complete(deployment(generation=3, observed=2), [NEW_DONE, OLD_EMPTY])


@pytest.mark.parametrize(
    "status",
    [
        {"updated": 2},  # one replica still runs the old template
        {"status_replicas": 4},  # an old pod still counts
        {"available": 2},  # a new pod is not available yet
    ],
)
def test_not_complete_while_counts_differ(status: dict[str, int]) -> None:
    assert not rollout_complete(deployment(**status), [NEW_DONE, OLD_EMPTY])


def test_not_complete_while_an_old_replica_set_has_pods() -> None:
    old_with_pod = replica_set_state(replica_set("web-a", 1, "x:v1", 0, 1, 1, 1))
    assert not rollout_complete(deployment(), [NEW_DONE, old_with_pod])


def test_counts_omitted_by_the_api_read_as_zero() -> None:
    dep = deployment()
    dep["status"] = {"observedGeneration": 2}  # a Deployment scaled to 0 reports no counts
    dep["spec"]["replicas"] = 0
    assert rollout_complete(dep, [])
    dep["spec"]["replicas"] = 1
    assert not rollout_complete(dep, [])


def test_sample_orders_newest_first_and_names_the_current_revision() -> None:
    middle = replica_set_state(replica_set("web-b", 2, "kubelab/demo-web:v2", 2, 2, 2, 0))
    old = replica_set_state(replica_set("web-a", 1, "kubelab/demo-web:v1", 2, 2, 2, 2))
    s = sample(1.234, deployment(updated=2, available=2, status_replicas=4), [old, middle])
    assert [rs.revision for rs in s.replica_sets] == [2, 1]
    assert (s.elapsed, s.revision, s.image_tag, s.complete) == (1.23, 2, "v2", False)
    line = render_line(s)
    assert "new rev 2 (v2)" in line
    assert "old rev 1 (v1)" in line
    assert "complete" not in line
    table = render_html("web", s, "note <b>")
    assert table.count("<tr") == 3  # header + two ReplicaSets
    assert "rolling" in table
    assert "note &lt;b&gt;" in table  # escaped


def test_live_display_outside_a_notebook_prints_one_line_per_sample(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kubelab import live

    assert not live.in_notebook()
    show = live.shower(lambda s, note: f"<b>{s}</b>", lambda s: f"sample {s}")
    show(1, "")
    show(2, "settled")
    assert capsys.readouterr().out.splitlines() == ["sample 1", "sample 2  (settled)"]
