"""CPU load on a Deployment's pods, real or simulated, for autoscaling checks and notebooks.

An HPA only shows what it does under load, and a grader must provoke that load itself rather than
trust what the learner did. The two substrates need different load:

- sim: no container runs, but KWOK reports each pod's CPU usage from its annotation
  ``kwok.x-k8s.io/usage-cpu``; metrics-server scrapes it and the HPA reacts. Load is an annotation
  per pod, and stopping it restores what each pod carried before.
- kind: the demo app burns CPU on ``GET /burn?ms=...``; load is a short-lived Job of HTTP clients
  calling the Service, deleted when done (with a deadline of its own, in case nobody deletes it).

The manifests and patches are pure functions (unit-tested); `start` and `Load.stop` talk to the
cluster.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from kubelab import api
from kubelab.api import Json, Resource
from kubelab.i18n import _
from kubelab.objects import quantity

USAGE_CPU = "kwok.x-k8s.io/usage-cpu"
LOAD_LABEL = "kubelab.dev/load"
JOBS = Resource("batch/v1", "jobs", "Job")
# It only needs a shell and wget: Debian's busybox-static, in every kind node (kind_build).
LOAD_IMAGE = "kubelab/busybox-debian:1.37"
JOB_DEADLINE = 300  # seconds: a load Job nobody deleted stops by itself


def millicores(value: object) -> int:
    """Return a CPU quantity ("250m", "1", "0.5") in whole millicores (0 when not a quantity)."""
    parsed = quantity(value)
    if parsed is None or parsed <= 0:
        return 0
    return math.ceil(parsed * Decimal(1000))


def cpu_request(pod_spec: Json) -> int:
    """Return the CPU the pod's containers request in total, in millicores."""
    return sum(
        millicores(((c.get("resources") or {}).get("requests") or {}).get("cpu"))
        for c in pod_spec.get("containers") or []
    )


def usage_per_container(pod_spec: Json, factor: float) -> str:
    """Return the usage annotation that puts a pod at `factor` times its CPU request.

    KWOK reports the annotation's value for every container, so the pod's total request is
    divided by the number of containers.
    """
    containers = max(len(pod_spec.get("containers") or []), 1)
    return f"{max(math.ceil(cpu_request(pod_spec) * factor / containers), 1)}m"


def share(total_millicores: int, pods: int) -> str:
    """Return one pod's share of a load spread evenly over `pods` pods, as a usage annotation."""
    return f"{max(math.ceil(total_millicores / max(pods, 1)), 1)}m"


def usage_patch(value: str | None) -> Json:
    """Return the merge patch that sets (or, with None, removes) a pod's usage annotation."""
    return {"metadata": {"annotations": {USAGE_CPU: value}}}


def load_job(name: str, *, service: str, port: int, workers: int = 4, burn_ms: int = 500) -> Json:
    """Return a Job of `workers` pods that call the Service's /burn endpoint without pause."""
    url = f"http://{service}:{port}/burn?ms={burn_ms}"
    script = f'while true; do wget -q -O /dev/null "{url}" || sleep 1; done'
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {LOAD_LABEL: name}},
        "spec": {
            "parallelism": workers,
            "completions": workers,
            "backoffLimit": 0,
            "activeDeadlineSeconds": JOB_DEADLINE,
            "ttlSecondsAfterFinished": 60,
            "template": {
                "metadata": {"labels": {LOAD_LABEL: name}},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65534,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "load",
                            "image": LOAD_IMAGE,
                            "command": ["sh", "-c", script],
                            "resources": {
                                "requests": {"cpu": "20m", "memory": "16Mi"},
                                "limits": {"cpu": "200m", "memory": "32Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


@dataclass
class Load:
    """Load put on a namespace's pods; `stop` undoes it (safe to call more than once)."""

    client: api.Api
    namespace: str
    substrate: str
    description: str
    previous: dict[str, str | None] = field(default_factory=dict)  # sim: pod -> its annotation
    job: str | None = None  # kind: the load Job's name

    def stop(self) -> None:
        """Remove the load: restore each pod's annotation, or delete the load Job and its pods."""
        for pod, value in list(self.previous.items()):
            try:
                self.client.patch(api.PODS, pod, usage_patch(value), self.namespace)
            except api.ApiError as err:
                if err.status != 404:  # a pod deleted meanwhile needs no restoring
                    raise
            del self.previous[pod]
        if self.job is not None:
            try:
                self.client.request(
                    "DELETE",
                    JOBS.path(self.namespace, self.job),
                    query={"propagationPolicy": "Background"},
                )
            except api.ApiError as err:
                if err.status != 404:
                    raise
            self.job = None


def start(
    client: api.Api,
    namespace: str,
    pods: list[Json],
    *,
    substrate: str,
    factor: float = 3.0,
    service: str = "demo-web",
    port: int = 80,
) -> Load:
    """Put CPU load on `pods`: annotations on sim, a Job calling `service` on kind.

    On sim each pod reports `factor` times its CPU request. Call `Load.stop` in a finally.
    """
    if substrate == "kind":
        name = f"kubelab-load-{uuid.uuid4().hex[:6]}"
        load = Load(
            client,
            namespace,
            substrate,
            _("Job {name} calling {service}:{port}/burn").format(
                name=name, service=service, port=port
            ),
        )
        client.create(JOBS, load_job(name, service=service, port=port), namespace)
        load.job = name
        return load
    load = Load(
        client,
        namespace,
        substrate,
        _("{factor}x the CPU request on {pods} pods").format(factor=f"{factor:g}", pods=len(pods)),
    )
    try:
        for pod in pods:
            meta = pod.get("metadata") or {}
            name = str(meta.get("name", ""))
            value = usage_per_container(pod.get("spec") or {}, factor)
            load.previous[name] = (meta.get("annotations") or {}).get(USAGE_CPU)
            try:
                client.patch(api.PODS, name, usage_patch(value), namespace)
            except api.ApiError as err:
                if err.status != 404:  # a pod replaced meanwhile simply gets no load
                    raise
                del load.previous[name]
    except BaseException:
        load.stop()  # never leave half the load behind
        raise
    return load
