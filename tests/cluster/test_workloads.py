"""Core controllers on the sim cluster: Deployments, EndpointSlices, PDB/eviction, StatefulSets."""

from __future__ import annotations

import json

import pytest

from kubelab.wait import until
from tests.conftest import Kubectl

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example/web:1.0
        ports: [{containerPort: 8080}]
        resources: {requests: {cpu: 100m, memory: 64Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def _json(kubectl: Kubectl, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(kubectl(*args, "-o", "json").stdout)  # type: ignore[no-any-return]


def test_deployment_becomes_available_with_three_ready_endpoints(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=DEPLOYMENT)
    kubectl("-n", namespace, "rollout", "status", "deployment/web", "--timeout=60s")
    dep = _json(kubectl, "-n", namespace, "get", "deployment", "web")
    assert dep["status"]["availableReplicas"] == 3

    def ready_endpoints() -> int:
        slices = _json(
            kubectl,
            "-n",
            namespace,
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        )["items"]
        return sum(
            1
            for s in slices
            for e in s.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready")
        )

    assert until(ready_endpoints, lambda n: n == 3, timeout=30, what="3 ready endpoints") == 3


PDB_APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: registry.example/api:1.0}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: api}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: api}}
"""


def _evict(kubectl: Kubectl, namespace: str, pod: str) -> tuple[int, str]:
    body = json.dumps(
        {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod, "namespace": namespace},
        }
    )
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/eviction"
    proc = kubectl("create", "--raw", path, "-f", "-", stdin=body, check=False)
    # kubectl reports API errors as "Error from server (TooManyRequests): ..."
    return proc.returncode, proc.stderr


def test_eviction_refused_with_429_when_budget_spent_and_allowed_when_not(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=PDB_APP)
    kubectl("-n", namespace, "rollout", "status", "deployment/api", "--timeout=60s")
    until(
        lambda: _json(kubectl, "-n", namespace, "get", "pdb", "api").get("status", {}),
        lambda s: s.get("currentHealthy") == 2 and s.get("observedGeneration") == 1,
        timeout=30,
        what="PDB status",
    )
    pods = _json(kubectl, "-n", namespace, "get", "pods", "-l", "app=api")["items"]
    code, err = _evict(kubectl, namespace, pods[0]["metadata"]["name"])
    assert code != 0
    assert "TooManyRequests" in err or "429" in err, err

    # Loosen the budget: now one disruption is allowed and the eviction goes through.
    kubectl(
        "-n",
        namespace,
        "patch",
        "pdb",
        "api",
        "--type=merge",
        "-p",
        '{"spec": {"minAvailable": 1}}',
    )
    until(
        lambda: _json(kubectl, "-n", namespace, "get", "pdb", "api")["status"],
        lambda s: s.get("disruptionsAllowed") == 1,
        timeout=30,
        what="disruptionsAllowed == 1",
    )
    code, err = _evict(kubectl, namespace, pods[0]["metadata"]["name"])
    assert code == 0, err


STATEFULSET = """
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: tcp, port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: registry.example/db:16}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: fast-ssd
      resources: {requests: {storage: 1Gi}}
"""


def test_statefulset_claims_on_fast_ssd_become_bound(kubectl: Kubectl, namespace: str) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=STATEFULSET)
    kubectl("-n", namespace, "rollout", "status", "statefulset/db", "--timeout=90s")

    def phases() -> dict[str, str]:
        items = _json(kubectl, "-n", namespace, "get", "pvc")["items"]
        return {i["metadata"]["name"]: i["status"].get("phase", "") for i in items}

    want = {f"data-db-{i}": "Bound" for i in range(3)}
    assert until(phases, lambda p: p == want, timeout=60, what="PVCs Bound") == want
    pvc = _json(kubectl, "-n", namespace, "get", "pvc", "data-db-0")
    assert pvc["spec"]["storageClassName"] == "fast-ssd"


def test_statefulset_max_unavailable_is_dropped_while_its_beta_gate_is_off(
    kubectl: Kubectl, namespace: str
) -> None:
    """Notebook 04: MaxUnavailableStatefulSet is beta since 1.35 but off by default, and the
    course's cluster leaves it off, so the API server drops the field without an error."""
    sts = STATEFULSET.split("---\n")[1].replace(
        "  serviceName: db\n",
        "  serviceName: db\n  updateStrategy:\n"
        "    {type: RollingUpdate, rollingUpdate: {partition: 1, maxUnavailable: 2}}\n",
    )
    stored = json.loads(
        kubectl(
            "-n", namespace, "create", "--dry-run=server", "-o", "json", "-f", "-", stdin=sts
        ).stdout
    )
    assert stored["spec"]["updateStrategy"]["rollingUpdate"] == {"partition": 1}


def test_claim_without_class_gets_default_standard_and_binds(
    kubectl: Kubectl, namespace: str
) -> None:
    claim = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: scratch}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 2Gi}}
"""
    kubectl("-n", namespace, "apply", "-f", "-", stdin=claim)
    pvc = until(
        lambda: _json(kubectl, "-n", namespace, "get", "pvc", "scratch"),
        lambda p: p["status"].get("phase") == "Bound",
        timeout=60,
        what="PVC Bound",
    )
    assert pvc["spec"]["storageClassName"] == "standard"


@pytest.mark.parametrize("name", ["standard", "fast-ssd"])
def test_storage_classes_exist(kubectl: Kubectl, name: str) -> None:
    sc = _json(kubectl, "get", "storageclass", name)
    default = (
        sc["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class")
    )
    assert (default == "true") == (name == "standard")
