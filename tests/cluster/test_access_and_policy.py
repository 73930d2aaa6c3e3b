"""RBAC answered by the API server, and admission (LimitRange, ResourceQuota) really enforced."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from kubelab.cluster.sim import SimBackend
from tests.conftest import Kubectl

ROLE = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: app-sa}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-reader}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: cm-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-reader}
subjects:
- {kind: ServiceAccount, name: app-sa}
- {kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}
"""


def _can_i(kubectl: Kubectl, *args: str) -> bool:
    proc = kubectl("auth", "can-i", *args, check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), proc.stderr
    return answer == "yes"


def test_can_i_for_a_service_account(kubectl: Kubectl, namespace: str) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=ROLE)
    sa = f"system:serviceaccount:{namespace}:app-sa"
    assert _can_i(kubectl, "list", "configmaps", "-n", namespace, "--as", sa)
    assert not _can_i(kubectl, "delete", "configmaps", "-n", namespace, "--as", sa)
    assert not _can_i(kubectl, "list", "secrets", "-n", namespace, "--as", sa)
    assert not _can_i(kubectl, "list", "configmaps", "-n", "default", "--as", sa)


def test_minted_user_certificate_is_authorized_by_rbac(
    sim: SimBackend, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=ROLE)
    alice = tmp_path / "alice.kubeconfig"
    alice.write_text(sim.kwokctl("get", "kubeconfig", "--user", "alice", "--group", "learners"))
    as_alice = Kubectl(alice)
    # Authenticated as alice by her certificate (not impersonation): RBAC decides.
    who = json.loads(as_alice("auth", "whoami", "-o", "json").stdout)
    assert who["status"]["userInfo"]["username"] == "alice"
    assert "learners" in who["status"]["userInfo"]["groups"]
    assert _can_i(as_alice, "get", "configmaps", "-n", namespace)
    assert not _can_i(as_alice, "create", "pods", "-n", namespace)
    denied = as_alice("get", "secrets", "-n", namespace, check=False)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr


LIMITS = """
apiVersion: v1
kind: LimitRange
metadata: {name: defaults}
spec:
  limits:
  - type: Container
    defaultRequest: {cpu: 100m, memory: 128Mi}
    default: {cpu: 500m, memory: 256Mi}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: small}
spec:
  hard: {requests.cpu: "1", requests.memory: 1Gi, pods: "2"}
"""

BARE_POD = """
apiVersion: v1
kind: Pod
metadata: {name: bare}
spec:
  containers: [{name: c, image: registry.example/app:1}]
"""

GREEDY_POD = """
apiVersion: v1
kind: Pod
metadata: {name: greedy}
spec:
  containers:
  - name: c
    image: registry.example/app:1
    resources: {requests: {cpu: "2", memory: 128Mi}, limits: {cpu: "2", memory: 128Mi}}
"""


def test_limitrange_fills_defaults_and_quota_refuses(kubectl: Kubectl, namespace: str) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=LIMITS)
    # The quota controller must have computed usage before admission can enforce it.
    out = kubectl(
        "-n",
        namespace,
        "wait",
        "--for=jsonpath={.status.hard.pods}=2",
        "resourcequota/small",
        "--timeout=30s",
    )
    assert out.returncode == 0
    pod = json.loads(
        kubectl(
            "-n", namespace, "apply", "--dry-run=server", "-o", "json", "-f", "-", stdin=BARE_POD
        ).stdout
    )
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert resources["limits"] == {"cpu": "500m", "memory": "256Mi"}

    refused = kubectl(
        "-n", namespace, "apply", "--dry-run=server", "-f", "-", stdin=GREEDY_POD, check=False
    )
    assert refused.returncode != 0
    assert "exceeded quota" in refused.stderr, refused.stderr


def test_anonymous_requests_are_not_authorized(sim: SimBackend) -> None:
    port = sim.ports()["kubeApiserverPort"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        urllib.request.urlopen(f"https://127.0.0.1:{port}/api/v1/secrets", context=ctx, timeout=5)
    except urllib.error.HTTPError as err:
        assert err.code in (401, 403)
    else:
        raise AssertionError("anonymous request to list secrets succeeded")
