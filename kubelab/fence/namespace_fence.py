"""What a fenced namespace holds from birth: Pod Security labels, a ResourceQuota, a LimitRange.

The sizes come from the labs' solutions with headroom (the largest: lab 03's HPA at 10 replicas
plus its drain rehearsal's stand-in pods, lab 04's three claims): a solution never meets them, a
flood does. `services.nodeports` is 0 because a NodePort is a port on every node (on kind, the
host's port mapping), and a participant must not take the one the Gateway listens on.
"""

from __future__ import annotations

from kubelab import api
from kubelab.api import Json
from kubelab.labs import Lab

MANAGED = {"app.kubernetes.io/managed-by": "kubelab"}
QUOTA = "kubelab-fence"
LIMITS = "kubelab-fence"
PSA = "pod-security.kubernetes.io"

# Object counts and storage: every fenced namespace.
COUNTS = {
    "pods": "40",
    "services": "20",
    "services.nodeports": "0",
    "services.loadbalancers": "0",
    "configmaps": "30",
    "secrets": "30",
    "persistentvolumeclaims": "10",
    "requests.storage": "20Gi",
    "count/deployments.apps": "20",
    "count/statefulsets.apps": "10",
    "count/jobs.batch": "20",
    "count/cronjobs.batch": "5",
    "count/serviceaccounts": "20",
}
# CPU and memory requests: namespaces whose LimitRange gives every container a request.
COMPUTE = {"requests.cpu": "16", "requests.memory": "32Gi"}
# A container's default limit equals the most it may have: a container that asks for a request
# and no limit then gets a limit it fits under, instead of a refusal.
CONTAINER_MAX = {"cpu": "4", "memory": "4Gi"}
CONTAINER_DEFAULT_REQUEST = {"cpu": "50m", "memory": "64Mi"}
CLAIM_MAX = {"storage": "5Gi"}


def labels(lab: Lab) -> dict[str, str]:
    """Return the Pod Security labels of a lab's namespace: enforce its level, and warn and audit
    at restricted, so a baseline lab still shows learners what restricted would refuse."""
    return {
        f"{PSA}/enforce": lab.fence.pod_security,
        f"{PSA}/enforce-version": "latest",
        f"{PSA}/warn": "restricted",
        f"{PSA}/warn-version": "latest",
        f"{PSA}/audit": "restricted",
        f"{PSA}/audit-version": "latest",
    }


def quota(lab: Lab) -> Json:
    """Return the namespace's ResourceQuota."""
    hard = dict(COUNTS)
    if lab.fence.resources:
        hard.update(COMPUTE)
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": QUOTA, "labels": MANAGED},
        "spec": {"hard": hard},
    }


def limit_range() -> Json:
    """Return the namespace's LimitRange: defaults for containers, a ceiling per container and
    per claim."""
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": LIMITS, "labels": MANAGED},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": CONTAINER_MAX,
                    "defaultRequest": CONTAINER_DEFAULT_REQUEST,
                    "max": CONTAINER_MAX,
                },
                {"type": "PersistentVolumeClaim", "max": CLAIM_MAX},
            ]
        },
    }


def objects(lab: Lab) -> list[tuple[api.Resource, Json]]:
    """Return the objects that fence a lab's namespace."""
    found: list[tuple[api.Resource, Json]] = [(api.RESOURCEQUOTAS, quota(lab))]
    if lab.fence.resources:
        found.append((api.LIMITRANGES, limit_range()))
    return found


def is_fence(obj: Json) -> bool:
    """Tell whether an object is one of kubelab's fence objects (graders leave them out)."""
    meta = obj.get("metadata") or {}
    ours = (meta.get("labels") or {}).get("app.kubernetes.io/managed-by") == "kubelab"
    return bool(ours and meta.get("name") in (QUOTA, LIMITS))


def apply(client: api.Api, namespace: str, lab: Lab) -> None:
    """Fence a namespace kubelab has just created (its labels were set at creation)."""
    for res, body in objects(lab):
        try:
            client.create(res, body, namespace)
        except api.ApiError as err:
            if err.status != 409:
                raise
            client.request("PUT", res.path(namespace, body["metadata"]["name"]), body=body)
