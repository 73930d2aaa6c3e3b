"""Gateway API objects are served and validated (the sim cluster has no data plane)."""

from __future__ import annotations

import json

from tests.conftest import Kubectl

ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: main-gw}
spec:
  gatewayClassName: kubelab
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-route}
spec:
  parentRefs: [{name: main-gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    backendRefs:
    - {name: demo-web, port: 80, weight: 80}
    - {name: demo-web-v2, port: 80, weight: 20}
"""


def test_gatewayclass_for_labs_exists(kubectl: Kubectl) -> None:
    gc = json.loads(kubectl("get", "gatewayclass", "kubelab", "-o", "json").stdout)
    assert gc["spec"]["controllerName"]


def test_gateway_and_httproute_are_accepted_by_the_api_server(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=ROUTE)
    route = json.loads(
        kubectl("-n", namespace, "get", "httproute", "web-route", "-o", "json").stdout
    )
    weights = [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]]
    assert weights == [80, 20]


def test_invalid_httproute_is_rejected_by_crd_validation(kubectl: Kubectl, namespace: str) -> None:
    bad = ROUTE.split("---")[1].replace("PathPrefix", "Prefix")  # not a Gateway API match type
    proc = kubectl("-n", namespace, "apply", "-f", "-", stdin=bad, check=False)
    assert proc.returncode != 0
    assert "Unsupported value" in proc.stderr or "Invalid value" in proc.stderr, proc.stderr
