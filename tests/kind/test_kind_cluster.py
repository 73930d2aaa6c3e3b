"""The kind cluster for real: built from pinned images, no registry, real pods and traffic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kubelab import api, cluster_record, kube, labs
from kubelab.cluster import kind_build
from kubelab.cluster.kind import KindBackend
from kubelab.graders import lab06_rbac_policy
from tests.conftest import Kubectl
from tests.lab_attempt import LabAttempt

BUSYBOX = kind_build.IMAGES["busybox"]


def _pod(name: str, command: list[str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A busybox pod that passes Pod Security "restricted" and any lab quota."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65534,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "c",
                    "image": BUSYBOX,
                    "command": command,
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "32Mi"},
                        "limits": {"cpu": "100m", "memory": "32Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def run_pod(
    kubectl: Kubectl, namespace: str, command: list[str], labels: dict[str, str] | None = None
) -> tuple[str, str]:
    """Run a busybox pod to completion; return its phase (Succeeded/Failed) and its log."""
    name = f"p-{uuid.uuid4().hex[:6]}"
    kubectl("-n", namespace, "apply", "-f", "-", stdin=json.dumps(_pod(name, command, labels)))
    # Poll for either end: `kubectl wait` takes one phase, and a probe that is meant to fail
    # would hold it for its whole timeout.
    deadline = time.monotonic() + 90
    phase = ""
    while phase not in ("Succeeded", "Failed") and time.monotonic() < deadline:
        time.sleep(1)
        phase = kubectl(
            "-n", namespace, "get", "pod", name, "-o", "jsonpath={.status.phase}", check=False
        ).stdout
    log = kubectl("-n", namespace, "logs", name, check=False).stdout
    kubectl("-n", namespace, "delete", "pod", name, "--wait=false", check=False)
    return phase, log


@pytest.fixture
def ns(kubectl: Kubectl) -> Iterator[str]:
    name = f"k-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_three_ready_nodes_from_the_pinned_node_image(
    kind_cluster: KindBackend, client: api.Api, kubectl: Kubectl
) -> None:
    assert kube.ready_nodes(kube.api_client(kind_cluster.kubeconfig_path())) == (3, 3)
    # The course's own nodes only: lab 09's drill node (no kubelet) may be there from a lab test.
    nodes = json.loads(
        kubectl("get", "nodes", "-l", f"!{kube.LAB_NODE_LABEL}", "-o", "json").stdout
    )["items"]
    assert len(nodes) == 3
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes} == {"v1.36.3"}
    assert all(
        n["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
        for n in nodes
    )
    # Nothing was pulled: every image a container runs is one the node image carries (lab 09's
    # planted fault, a tag that was never built, may be waiting to be pulled meanwhile).
    pods = json.loads(kubectl("get", "pods", "-A", "-o", "json").stdout)["items"]
    images = {
        c["image"]
        for p in pods
        for c in p["spec"]["containers"]
        if not any(
            s.get("name") == c["name"] and "waiting" in (s.get("state") or {})
            for s in (p.get("status") or {}).get("containerStatuses") or []
        )
    }
    built = {tag for tags in kind_build.image_tags().values() for tag in tags}
    assert images <= built, images - built


def test_coredns_answers_a_lookup_from_a_pod(kubectl: Kubectl, ns: str) -> None:
    phase, log = run_pod(kubectl, ns, ["nslookup", "kubernetes.default.svc.cluster.local"])
    assert phase == "Succeeded", log
    assert "10.96.0.1" in log


def test_addons_are_there(kubectl: Kubectl) -> None:
    classes = kubectl("get", "storageclass", "-o", "name").stdout.split()
    assert {"storageclass.storage.k8s.io/fast-ssd", "storageclass.storage.k8s.io/standard"} <= set(
        classes
    )
    gc = json.loads(kubectl("get", "gatewayclass", "kubelab", "-o", "json").stdout)
    assert gc["spec"]["controllerName"] == "traefik.io/gateway-controller"
    accepted = {c["type"]: c["status"] for c in gc["status"].get("conditions", [])}
    assert accepted.get("Accepted") == "True"
    substrate = kubectl(
        "-n",
        "kube-public",
        "get",
        "configmap",
        "kubelab-cluster",
        "-o",
        "jsonpath={.data.substrate}",
    ).stdout
    assert substrate == "kind"
    top = kubectl("top", "nodes", check=False, timeout=90)
    assert top.returncode == 0 or "metrics not available yet" in top.stderr, top.stderr


def test_lab02_solution_served_by_real_pods(kubectl: Kubectl, client: api.Api) -> None:
    lab = labs.find("02-deployment")
    attempt = LabAttempt(lab, kubectl, client)
    try:
        attempt.apply(lab.directory / "solution" / "overlays" / "prod")
        attempt.apply(lab.directory / "solution" / "overlays" / "dev")  # task dev-overlay
        attempt.run("rollout", "status", "deployment/demo-web", "--timeout=120s", timeout=130)
        attempt.run("set", "image", "deployment/demo-web", "web=kubelab/demo-web:v2")
        attempt.run("rollout", "status", "deployment/demo-web", "--timeout=120s", timeout=130)
        report = attempt.grade()
        failed = {c.id: c.message for c in report.checks if not c.passed}
        assert not failed
        # The pods really serve: ask one through its Service from another pod.
        svc = json.loads(attempt.run("get", "service", "-o", "json"))["items"][0]
        port = svc["spec"]["ports"][0]["port"]
        url = f"http://{svc['metadata']['name']}.{attempt.name}.svc.cluster.local:{port}/"
        phase, log = run_pod(kubectl, attempt.name, ["wget", "-q", "-O-", url])
        assert phase == "Succeeded", log
        assert "v2" in log
    finally:
        attempt.delete()


NETPOL_SERVER = """
apiVersion: v1
kind: Pod
metadata: {name: server, labels: {app: server}}
spec:
  containers:
  - name: web
    image: kubelab/demo-web:v1
    ports: [{containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
"""
DENY_ALL = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""
ALLOW_FRONTEND = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-frontend}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
  - from: [{podSelector: {matchLabels: {role: frontend}}}]
    ports: [{port: 8080}]
"""


def test_network_policy_blocks_and_allows_real_connections(kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "apply", "-f", "-", stdin=NETPOL_SERVER)
    kubectl("-n", ns, "wait", "pod/server", "--for=condition=Ready", "--timeout=90s", timeout=100)
    ip = kubectl("-n", ns, "get", "pod", "server", "-o", "jsonpath={.status.podIP}").stdout
    probe = ["sh", "-c", lab06_rbac_policy.probe_script(ip, 8080)]
    assert run_pod(kubectl, ns, probe, {"role": "batch"})[0] == "Succeeded"  # no policy yet
    kubectl("-n", ns, "apply", "-f", "-", stdin=DENY_ALL)
    kubectl("-n", ns, "apply", "-f", "-", stdin=ALLOW_FRONTEND)
    denied, _ = run_pod(kubectl, ns, probe, {"role": "batch"})
    allowed, log = run_pod(kubectl, ns, probe, {"role": "frontend"})
    assert denied == "Failed"
    assert allowed == "Succeeded", log


def test_kubelab_check_02_on_kind_from_the_cli(kind_cluster: KindBackend, kubectl: Kubectl) -> None:
    """`kubelab reset/apply/check 02`, as a learner types them, against kind's real pods."""
    lab = labs.find("02-deployment")
    env = {**os.environ, "KUBELAB_CLUSTER": kind_cluster.cluster}

    def kubelab(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kubelab.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    assert kubelab("reset", "02").returncode == 0
    solution = lab.directory / "solution" / "overlays" / "prod"
    for overlay in (solution, solution.parent / "dev"):  # prod, and dev beside it
        applied = kubelab("apply", str(overlay), "--lab", "02")
        assert applied.returncode == 0, applied.stderr
    ns = ["-n", lab.namespace]
    kubectl(*ns, "rollout", "status", "deployment/demo-web", "--timeout=120s", timeout=130)
    kubectl(*ns, "set", "image", "deployment/demo-web", "web=kubelab/demo-web:v2")
    kubectl(*ns, "rollout", "status", "deployment/demo-web", "--timeout=120s", timeout=130)
    checked = kubelab("check", "02")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Traceback" not in checked.stderr


def _wait_for_route(url: str, timeout: float = 90) -> None:
    """Wait until Traefik routes steadily: 20 answers in a row, both versions among them.

    Right after a Gateway is programmed Traefik may still be picking up endpoints; the grader
    counts every failed request, so it samples only once the route is settled.
    """
    deadline = time.monotonic() + timeout
    streak: list[str] = []
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                streak.append(json.loads(resp.read())["version"])
        except (OSError, ValueError, KeyError):
            streak = []
        if len(streak) >= 20 and {"v1", "v2"} <= set(streak):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer steadily within {timeout:.0f}s: {streak}")
        time.sleep(0.1)


def test_lab05_split_measured_from_real_requests_through_traefik(
    kind_cluster: KindBackend, kubectl: Kubectl, client: api.Api
) -> None:
    # The grader learns the Gateway's address from the cluster's record, as a learner's does.
    assert cluster_record.gateway_url(cluster_record.read(client)) == kind_cluster.gateway_url()
    lab = labs.find("05-gateway-canary")
    attempt = LabAttempt(lab, kubectl, client)
    try:
        attempt.apply(lab.directory / "solution")
        for name in ("demo-web", "demo-web-v2"):
            attempt.run("rollout", "status", f"deployment/{name}", "--timeout=120s", timeout=130)
        _wait_for_route(kind_cluster.gateway_url() + "/api")
        report = attempt.grade()
        failed = {c.id: c.message for c in report.checks if not c.passed}
        assert not failed
        split = next(c for c in report.checks if c.id == "canary-route")
        assert "requests split within tolerance" in split.message
    finally:
        attempt.delete()


POSTGRES = """
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: IMAGE
        env:
        - {name: POSTGRES_PASSWORD, value: kubelab}
        - {name: PGDATA, value: /var/lib/postgresql/data/pgdata}
        readinessProbe:
          exec: {command: [pg_isready, -U, postgres]}
          periodSeconds: 2
        volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: fast-ssd
      resources: {requests: {storage: 1Gi}}
"""


def test_postgres_keeps_a_row_across_a_pod_deletion(kubectl: Kubectl, ns: str) -> None:
    """Lab 04's point on kind: Debian's postgres on a local-path volume outlives its pod."""
    kubectl(
        "-n",
        ns,
        "apply",
        "-f",
        "-",
        stdin=POSTGRES.replace("IMAGE", kind_build.IMAGES["postgresql"]),
    )

    def ready() -> None:
        kubectl("-n", ns, "rollout", "status", "statefulset/db", "--timeout=120s", timeout=130)
        kubectl(
            "-n", ns, "wait", "pod/db-0", "--for=condition=Ready", "--timeout=120s", timeout=130
        )

    def psql(sql: str) -> str:
        return kubectl(
            "-n", ns, "exec", "db-0", "--", "psql", "-U", "postgres", "-tAc", sql
        ).stdout.strip()

    ready()
    psql("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')")
    uid = kubectl("-n", ns, "get", "pod", "db-0", "-o", "jsonpath={.metadata.uid}").stdout
    kubectl("-n", ns, "delete", "pod", "db-0", "--wait=true", timeout=120)
    ready()
    assert kubectl("-n", ns, "get", "pod", "db-0", "-o", "jsonpath={.metadata.uid}").stdout != uid
    assert psql("SELECT body FROM notes") == "kept"


def test_lab02_rollout_held_back_by_a_readiness_probe_that_fails(
    kubectl: Kubectl, client: api.Api
) -> None:
    """A kubelet really probes: v2 behind a probe on a missing path never becomes Ready, and the
    rolling update stops with the old pods still serving (maxUnavailable 1 of 3)."""
    lab = labs.find("02-deployment")
    attempt = LabAttempt(lab, kubectl, client)
    try:
        attempt.apply(lab.directory / "solution" / "overlays" / "prod")
        attempt.run("rollout", "status", "deployment/demo-web", "--timeout=120s", timeout=130)
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "kubelab/demo-web:v2",
                                "readinessProbe": {"httpGet": {"path": "/not-served"}},
                            }
                        ]
                    }
                }
            }
        }
        attempt.run("patch", "deployment/demo-web", "-p", json.dumps(patch))
        stuck = kubectl(
            "-n",
            attempt.name,
            "rollout",
            "status",
            "deployment/demo-web",
            "--timeout=25s",
            check=False,
            timeout=40,
        )
        assert stuck.returncode != 0  # the rollout does not finish
        status = json.loads(attempt.run("get", "deployment", "demo-web", "-o", "json"))["status"]
        assert status["availableReplicas"] == 2  # the old pods left still serve
        assert status.get("updatedReplicas", 0) >= 1
        events = attempt.run("get", "events", "--field-selector", "reason=Unhealthy")
        assert "Readiness probe failed" in events and "404" in events
    finally:
        attempt.delete()


def test_the_shared_fixtures_reach_the_kind_cluster(client: api.Api, kubectl: Kubectl) -> None:
    """`client` and `kubectl` here are the kind cluster's; the sim tests' own stay the sim's."""
    cm = client.get(api.CONFIGMAPS, "kubelab-cluster", "kube-public")
    assert cm is not None and cm["data"]["substrate"] == "kind"
    got = kubectl("-n", "kube-public", "get", "configmap", "kubelab-cluster", "-o", "json")
    assert json.loads(got.stdout)["data"]["substrate"] == "kind"
