"""watch_ownership follows a real Deployment on the sim cluster while it scales and rolls out.

The change is made from another thread once the watch is running, so the trees it returns are
what its watches saw happen, not a before/after read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kubelab.ownership_view import OwnershipTree, watch_ownership
from tests.conftest import Kubectl

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  minReadySeconds: 1
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example/web:v1
"""


@contextmanager
def later(action: threading.Thread) -> Iterator[None]:
    """Start `action` in the background for the duration of the block."""
    action.start()
    try:
        yield
    finally:
        action.join(timeout=60)


def kubectl_after(kubectl: Kubectl, delay: float, *args: str) -> threading.Thread:
    """A thread that runs kubectl after `delay` seconds."""
    return threading.Thread(target=lambda: (threading.Event().wait(delay), kubectl(*args)))


def pods(tree: OwnershipTree) -> int:
    return sum(len(rs.pods) for rs in tree.replica_sets)


def test_it_follows_a_scale_and_a_rollout(
    kubectl: Kubectl, kubeconfig: Path, namespace: str
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=DEPLOYMENT)
    start = watch_ownership(namespace, "web", timeout=60, kubeconfig=str(kubeconfig))
    assert start[-1].settled and pods(start[-1]) == 2

    # Scale 2 -> 4 while watching: the tree starts at 2 Ready pods and ends at 4.
    scale = kubectl_after(kubectl, 1, "-n", namespace, "scale", "deployment/web", "--replicas=4")
    with later(scale):
        trees = watch_ownership(
            namespace,
            "web",
            timeout=60,
            until=lambda t: t.settled and t.desired == 4,
            kubeconfig=str(kubeconfig),
        )
    assert pods(trees[0]) == 2 and trees[0].desired == 2
    assert trees[-1].settled and pods(trees[-1]) == 4
    assert all(p.ready for p in trees[-1].replica_sets[0].pods)
    assert len({pods(t) for t in trees}) >= 2  # it saw the count change, not just the end

    # Roll out v2: old and new pods overlap, never more than 4 + maxSurge 1, and it ends on v2.
    update = kubectl_after(
        kubectl, 1, "-n", namespace, "set", "image", "deployment/web", "web=registry.example/web:v2"
    )
    with later(update):
        rollout = watch_ownership(
            namespace,
            "web",
            timeout=90,
            until=lambda t: t.settled and t.revision == 2,
            kubeconfig=str(kubeconfig),
        )
    assert rollout[0].revision == 1
    assert any(all(rs.pods for rs in t.replica_sets) and len(t.replica_sets) == 2 for t in rollout)
    live = [
        sum(p.phase != "Terminating" for rs in t.replica_sets for p in rs.pods) for t in rollout
    ]
    assert max(live) <= 5  # a pod on its way out no longer counts against maxSurge
    end = rollout[-1]
    assert end.settled and [rs.state.image_tag for rs in end.replica_sets] == ["v2", "v1"]
    assert len(end.replica_sets[0].pods) == 4 and not end.replica_sets[1].pods
