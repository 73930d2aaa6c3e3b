"""Simulated resource usage reaches metrics-server, `kubectl top` and the HPA controller."""

from __future__ import annotations

import json

from kubelab.wait import until
from tests.conftest import Kubectl

BUSY_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: busy
  annotations:
    kwok.x-k8s.io/usage-cpu: 250m
    kwok.x-k8s.io/usage-memory: 96Mi
spec:
  containers: [{name: c, image: registry.example/app:1}]
"""


def test_kubectl_top_pod_shows_simulated_usage(kubectl: Kubectl, namespace: str) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=BUSY_POD)

    def top() -> str:
        proc = kubectl("-n", namespace, "top", "pod", "busy", "--no-headers", check=False)
        return proc.stdout.strip()

    line = until(top, lambda out: out.startswith("busy"), timeout=90, what="kubectl top pod")
    _, cpu, memory = line.split()[:3]
    # CPU is a rate over two scrapes of a simulated counter, so allow for timing jitter.
    assert cpu.endswith("m") and 240 <= int(cpu[:-1]) <= 260, cpu
    assert memory == "96Mi"


SCALED_APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {kwok.x-k8s.io/usage-cpu: 250m}   # every replica reports 250m of CPU
    spec:
      containers:
      - name: web
        image: registry.example/web:1
        resources: {requests: {cpu: 100m}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
"""


def test_hpa_scales_above_minimum_under_simulated_load(kubectl: Kubectl, namespace: str) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=SCALED_APP)

    def hpa_status() -> dict:  # type: ignore[type-arg]
        hpa = json.loads(kubectl("-n", namespace, "get", "hpa", "web", "-o", "json").stdout)
        return hpa.get("status") or {}  # type: ignore[no-any-return]

    status = until(
        hpa_status, lambda s: s.get("desiredReplicas", 0) > 1, timeout=120, what="HPA scale-up"
    )
    assert status["desiredReplicas"] == 4  # 250% of request vs 50% target: capped at max
    current = status["currentMetrics"][0]["resource"]["current"]
    assert 240 <= current["averageUtilization"] <= 260  # 250m used / 100m requested, +- jitter
    deployment = until(
        lambda: json.loads(kubectl("-n", namespace, "get", "deploy", "web", "-o", "json").stdout),
        lambda d: d["spec"]["replicas"] == 4,
        timeout=30,
        what="Deployment scaled by the HPA",
    )
    assert deployment["spec"]["replicas"] == 4
