"""Check results posted to the workshop board: one ConfigMap in each participant namespace.

When a check runs in a namespace labelled `kubelab.dev/participant`, its result is merged into
the ConfigMap `kubelab-progress` there, with whatever credentials ran the check (a participant's
own). The leader's board lists those ConfigMaps instead of grading anyone itself: running every
grader for every participant would load the cluster (lab 03 puts load on pods) and run learners'
code (lab 01). The board therefore shows what participants' own checks reported; a participant who
edits the ConfigMap changes their row. It is a workshop board, not a gradebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubelab import api
from kubelab.grading.posted_scores import CONFIGMAP, body, now, number, posted_tasks, publish
from kubelab.lab_namespaces import PARTICIPANT

__all__ = ["CONFIGMAP", "Posted", "body", "collect", "now", "number", "publish"]


@dataclass(frozen=True)
class Posted:
    """What the latest checks in one participant namespace reported."""

    namespace: str
    lab: str
    tasks: dict[str, float] = field(default_factory=dict)  # task id -> points
    checked_at: str | None = None  # ISO 8601, UTC


def collect(client: api.Api) -> list[Posted]:
    """Return every participant namespace's posted results (needs the leader's credentials)."""
    found = client.list(api.CONFIGMAPS, labels=PARTICIPANT, fields=f"metadata.name={CONFIGMAP}")
    posted = []
    for cm in found:
        data = cm.get("data") or {}
        posted.append(
            Posted(
                namespace=str(cm["metadata"]["namespace"]),
                lab=str(data.get("lab", "")),
                tasks=posted_tasks(cm),
                checked_at=data.get("checked-at") or None,
            )
        )
    return posted
