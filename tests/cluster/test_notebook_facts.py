"""What notebooks 02 and 03 show the learner, held on the sim cluster (Kubernetes 1.36).

The notebooks print what they observe and assert nothing (the teaching conventions), so the facts
their prose rests on are checked here: a native sidecar is Ready beside the app and keeps
running; a spread constraint keeps the skew at 1; the API server accepts an HPA's own tolerance
and hands it back as a quantity; it refuses a preStop `sleep` longer than the grace period but
not an `exec` sleep; and `unhealthyPodEvictionPolicy` decides whether a pod that is not Ready may
be evicted while the service is below its budget.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from kubelab import api
from kubelab.wait import until
from tests.conftest import Kubectl


def _json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json").stdout)


SIDECAR = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: catalog-logs}
spec:
  replicas: 1
  selector: {matchLabels: {app: catalog-logs}}
  template:
    metadata: {labels: {app: catalog-logs}}
    spec:
      initContainers:
        - name: log-shipper
          image: kubelab/busybox-debian:1.37
          restartPolicy: Always
          command: ["sh", "-c", "tail -F /logs/access.log"]
      containers:
        - name: api
          image: kubelab/demo-web:v1
"""


def test_a_native_sidecar_is_ready_beside_the_app_and_keeps_running(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=SIDECAR)
    kubectl("-n", namespace, "rollout", "status", "deployment/catalog-logs", "--timeout=60s")
    (pod,) = _json(kubectl, "-n", namespace, "get", "pods", "-l", "app=catalog-logs")["items"]
    (shipper,) = pod["status"]["initContainerStatuses"]
    (app,) = pod["status"]["containerStatuses"]
    assert "running" in shipper["state"] and shipper["ready"] is True, shipper
    assert app["ready"] is True
    assert pod["spec"]["initContainers"][0]["restartPolicy"] == "Always"


SPREAD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: catalog-spread}
spec:
  replicas: 5
  selector: {matchLabels: {app: catalog-spread}}
  template:
    metadata: {labels: {app: catalog-spread}}
    spec:
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: DoNotSchedule
          nodeTaintsPolicy: Honor
          labelSelector: {matchLabels: {app: catalog-spread}}
      containers:
        - name: api
          image: kubelab/demo-web:v1
          resources: {requests: {cpu: 50m, memory: 64Mi}}
"""


def test_a_spread_constraint_puts_5_replicas_on_3_nodes_as_2_2_1(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=SPREAD)
    kubectl("-n", namespace, "rollout", "status", "deployment/catalog-spread", "--timeout=60s")
    pods = _json(kubectl, "-n", namespace, "get", "pods", "-l", "app=catalog-spread")["items"]
    # The domains the constraint counts (nodeTaintsPolicy: Honor): nodes without a taint the pods
    # do not tolerate. Other tests on this cluster may add a node or make one NotReady (tainted).
    nodes = _json(kubectl, "get", "nodes")["items"]
    domains = [
        n["metadata"]["name"]
        for n in nodes
        if not any(
            t.get("effect") in ("NoSchedule", "NoExecute")
            for t in (n.get("spec") or {}).get("taints") or []
        )
    ]
    per_node = Counter(p["spec"]["nodeName"] for p in pods)
    counts = [per_node.get(name, 0) for name in domains]
    assert sum(counts) == 5 and max(counts) - min(counts) <= 1, (per_node, domains)
    if len(domains) == 3:  # the test cluster's size, which the notebook's prose assumes
        assert sorted(counts) == [1, 2, 2], per_node


HPA = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: checkout-tolerance-probe}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: checkout}
  minReplicas: 2
  maxReplicas: 8
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleUp: {tolerance: 0.05}
    scaleDown: {tolerance: 0.2}
"""


def test_the_api_server_keeps_an_hpas_own_tolerance(kubectl: Kubectl, namespace: str) -> None:
    """HPAConfigurableTolerance is on in 1.36: a dry run hands the field back as a quantity."""
    dry = json.loads(
        kubectl(
            "-n", namespace, "apply", "--dry-run=server", "-o", "json", "-f", "-", stdin=HPA
        ).stdout
    )
    behavior = dry["spec"]["behavior"]
    assert behavior["scaleUp"]["tolerance"] == "50m"
    assert behavior["scaleDown"]["tolerance"] == "200m"
    assert kubectl("-n", namespace, "get", "hpa", "-o", "name").stdout.strip() == ""  # not stored


CHECKOUT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout}
spec:
  replicas: 1
  selector: {matchLabels: {app: checkout}}
  template:
    metadata: {labels: {app: checkout}}
    spec:
      terminationGracePeriodSeconds: 45
      containers:
        - name: checkout
          image: kubelab/demo-web:v1
          lifecycle:
            preStop:
              sleep: {seconds: 8}
"""


@pytest.mark.parametrize(
    ("hook", "refused"),
    [({"sleep": {"seconds": 60}}, True), ({"exec": {"command": ["sh", "-c", "sleep 60"]}}, False)],
    ids=["sleep-action", "exec-sleep"],
)
def test_a_prestop_sleep_longer_than_the_grace_period(
    kubectl: Kubectl, namespace: str, hook: dict[str, Any], refused: bool
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=CHECKOUT)
    patch = [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/0/lifecycle/preStop",
            "value": hook,
        }
    ]
    proc = kubectl(
        "-n",
        namespace,
        "patch",
        "deployment/checkout",
        "--dry-run=server",
        "--type=json",
        "-p",
        json.dumps(patch),
        check=False,
    )
    assert (proc.returncode != 0) is refused, proc.stderr
    if refused:
        assert "terminationGracePeriodSeconds" in proc.stderr, proc.stderr


LEDGER = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: ledger-good}
spec:
  replicas: 1
  selector: {matchLabels: {app: ledger, build: good}}
  template:
    metadata: {labels: {app: ledger, build: good}}
    spec:
      containers:
        - name: ledger
          image: kubelab/demo-web:v1
          readinessProbe: {httpGet: {path: /healthz, port: 8080}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ledger-broken}
spec:
  replicas: 2
  selector: {matchLabels: {app: ledger, build: broken}}
  template:
    metadata: {labels: {app: ledger, build: broken}}
    spec:
      containers:
        - name: ledger
          image: kubelab/demo-web:v1
          readinessProbe: {httpGet: {path: /ready-never, port: 8080}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: ledger-pdb}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: ledger}}
"""


def _dry_evict(client: api.Api, namespace: str, pod: str) -> int:
    """Return the status of a dry-run eviction: 201 when allowed."""
    try:
        client.evict(pod, namespace, dry_run=True)
    except api.ApiError as err:
        return err.status
    return 201


def test_unhealthy_pod_eviction_policy_decides_for_pods_that_are_not_ready(
    kubectl: Kubectl, client: api.Api, namespace: str
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=LEDGER)
    until(
        lambda: (client.get(api.PDBS, "ledger-pdb", namespace) or {}).get("status") or {},
        lambda st: st.get("expectedPods") == 3 and st.get("currentHealthy") == 1,
        timeout=60,
        what="the ledger budget to count 3 pods, 1 healthy",
    )

    def pod(build: str) -> str:
        name: str = client.list(api.PODS, namespace, labels=f"app=ledger,build={build}")[0][
            "metadata"
        ]["name"]
        return name

    # Unset is IfHealthyBudget: below its budget, even a pod that is not Ready must wait.
    assert _dry_evict(client, namespace, pod("broken")) == 429
    assert _dry_evict(client, namespace, pod("good")) == 429
    always = '{"spec": {"unhealthyPodEvictionPolicy": "AlwaysAllow"}}'
    kubectl("-n", namespace, "patch", "pdb", "ledger-pdb", "--type=merge", "-p", always)
    assert _dry_evict(client, namespace, pod("broken")) == 201
    assert _dry_evict(client, namespace, pod("good")) == 429
