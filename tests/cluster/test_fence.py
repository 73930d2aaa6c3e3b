"""Attacks on a shared cluster, each tried as a hostile participant or submission would, on the
real sim cluster, and each refused: a host reached through the API server's proxy, privileged
pods, a flood of objects, a namespace that never goes, a fence taken down from inside.

Two fenced lab 02 namespaces: mallory's (the attacker: a submission's ServiceAccount token, and a
workshop participant's certificate) and victor's, who has solved the lab and whose grade must not
move whatever mallory does.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubelab import access, api, lab_namespaces, labs
from kubelab.fence import admission, cleanup, fairness, namespace_fence, records
from kubelab.workshop import certs, participants
from tests.conftest import Kubectl

pytestmark = pytest.mark.cluster

LAB = labs.find("02-deployment")
LAB06 = labs.find("06-rbac-policy")
SOLUTION = LAB.directory / "solution" / "overlays" / "prod"
KUBELAB = str(Path(sys.executable).parent / "kubelab")


@dataclass
class Tenant:
    """A fenced namespace and credentials confined to it."""

    namespace: str
    kubeconfig: Path
    kubectl: Kubectl
    grant: str


def _submission(client: api.Api, lab: labs.Lab, folder: Path, who: str) -> Tenant:
    """Fence a namespace for `lab`; confine a ServiceAccount token to it, as bulk grading does."""
    ns = f"fence-{who}-{uuid.uuid4().hex[:5]}"
    lab_namespaces.ensure(client, lab, ns)
    token = access.service_account_token(client, ns, "kubelab-submission")
    subject = {"kind": "ServiceAccount", "name": "kubelab-submission", "namespace": ns}
    access.confine(client, ns, subject, {ns: lab})
    server, ca = access.cluster_endpoint(client.kubeconfig)
    config = access.kubeconfig_for(server, ca, {"token": token}, name=who, namespace=ns)
    path = access.write_kubeconfig(folder / f"{who}.kubeconfig", config)
    return Tenant(ns, path, Kubectl(path), ns)


def _participant(client: api.Api, lab: labs.Lab, folder: Path, who: str) -> Tenant:
    """Fence a namespace for `lab` and give a workshop participant's certificate access to it."""
    ns = f"fence-{who}-{uuid.uuid4().hex[:5]}"
    lab_namespaces.ensure(client, lab, ns, labels={lab_namespaces.PARTICIPANT: who})
    credential = certs.mint(
        client,
        f"kubelab-participant-{who}",
        participants.user(who),
        participants.GROUP,
        labels={lab_namespaces.PARTICIPANT: who},
    )
    grant = participants.grant(who)
    access.confine(client, grant, {"kind": "User", "name": participants.user(who)}, {ns: lab})
    server, ca = access.cluster_endpoint(client.kubeconfig)
    config = access.kubeconfig_for(server, ca, credential.kubeconfig_user(), name=who, namespace=ns)
    path = access.write_kubeconfig(folder / f"{who}.kubeconfig", config)
    return Tenant(ns, path, Kubectl(path), grant)


def _release(client: api.Api, tenant: Tenant) -> None:
    access.release(client, tenant.grant)
    cleanup.delete_namespace(client, tenant.namespace, timeout=120)


@pytest.fixture(scope="module")
def fenced(client: api.Api) -> None:
    access.install_shared_roles(client, [LAB, LAB06])
    admission.install(client)


@pytest.fixture(scope="module")
def mallory(
    client: api.Api, fenced: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tenant]:
    tenant = _submission(client, LAB, tmp_path_factory.mktemp("mallory"), "mallory")
    yield tenant
    _release(client, tenant)


@pytest.fixture(scope="module")
def mallory_in_person(
    client: api.Api, fenced: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tenant]:
    """Mallory as a workshop participant: a certificate in group kubelab:participants."""
    tenant = _participant(client, LAB, tmp_path_factory.mktemp("participant"), "mallory")
    yield tenant
    _release(client, tenant)
    client.delete(certs.CSRS, "kubelab-participant-mallory")


@pytest.fixture(scope="module")
def victor(
    client: api.Api, fenced: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tenant]:
    """Another participant, who has solved lab 02 and checked it: full marks."""
    tenant = _submission(client, LAB, tmp_path_factory.mktemp("victor"), "victor")
    for overlay in (SOLUTION, SOLUTION.parent / "dev"):  # prod, and dev beside it
        applied = _kubelab(tenant, "apply", str(overlay), "--lab", "02")
        assert applied.returncode == 0, applied.stderr
    k, ns = tenant.kubectl, tenant.namespace
    k("-n", ns, "set", "image", "deployment/demo-web", "web=kubelab/demo-web:v2")  # rolling-update
    k("-n", ns, "rollout", "status", "deployment/demo-web", "--timeout=120s", timeout=150)
    yield tenant
    _release(client, tenant)


def _kubelab(tenant: Tenant, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KUBECONFIG=str(tenant.kubeconfig), KUBELAB_NAMESPACE=tenant.namespace)
    env["KUBELAB_DATA"] = str(tenant.kubeconfig.parent / "data")
    return subprocess.run(
        [KUBELAB, *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def _score(tenant: Tenant) -> dict[str, bool]:
    """Grade lab 02 in the tenant's namespace with its own credentials: check id -> passed."""
    proc = _kubelab(tenant, "check", "02", "--json")
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    return {c["id"]: c["passed"] for c in report["checks"]}


def _refused(proc: subprocess.CompletedProcess[str], needle: str = "") -> bool:
    text = proc.stderr + proc.stdout
    return proc.returncode != 0 and ("Forbidden" in text or "forbidden" in text) and needle in text


def _pod(name: str, **spec: object) -> str:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "kubelab/demo-web:v1"}], **spec},
    }
    return json.dumps(body)


def test_victor_starts_with_full_marks(victor: Tenant) -> None:
    assert all(_score(victor).values())


def test_no_status_proxy_portforward_or_impersonation(mallory: Tenant) -> None:
    m = mallory.kubectl
    ns = mallory.namespace
    denied = [
        ("patch", "pods/status"),
        ("get", "pods/proxy"),
        ("create", "pods/proxy"),
        ("get", "services/proxy"),
        ("create", "pods/portforward"),
        ("create", "endpoints"),
        ("create", "endpointslices.discovery.k8s.io"),
        ("patch", "deployments.apps/status"),
        ("create", "resourcequotas"),
        ("delete", "limitranges"),
        ("create", "serviceaccounts/token"),
        ("impersonate", "users"),
        ("impersonate", "serviceaccounts"),
        ("create", "roles.rbac.authorization.k8s.io"),
        ("bind", "roles.rbac.authorization.k8s.io"),
        ("bind", "clusterroles.rbac.authorization.k8s.io"),
        ("list", "namespaces"),
    ]
    for verb, resource in denied:
        answer = _can_i(m, ns, verb, resource)
        assert answer == "no", (verb, resource, answer)
    # What the labs need is there.
    for verb, resource in [
        ("create", "deployments.apps"),
        ("patch", "deployments.apps/scale"),
        ("create", "pods/eviction"),
        ("get", "pods/log"),
        ("create", "pods/exec"),
        ("create", "httproutes.gateway.networking.k8s.io"),
    ]:
        answer = _can_i(m, ns, verb, resource)
        assert answer == "yes", (verb, resource, answer)
    assert m("auth", "can-i", "patch", f"namespaces/{ns}", check=False).stdout.strip() == "yes"


def _can_i(kubectl: Kubectl, ns: str, verb: str, resource: str) -> str:
    """Ask the API server (a SelfSubjectAccessReview); "pods/status" is a subresource here."""
    kind, _, sub = resource.partition("/")
    extra = [f"--subresource={sub}"] if sub else []
    return kubectl("auth", "can-i", verb, kind, *extra, "-n", ns, check=False).stdout.strip()


def test_the_host_cannot_be_reached_through_a_pods_proxy(mallory: Tenant) -> None:
    """The attack that worked: set one's own pod's IP to the host's, then proxy through it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    got: list[bytes] = []

    def accept() -> None:
        for _ in range(25):
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            got.append(conn.recv(1024))
            conn.close()

    watcher = threading.Thread(target=accept)
    watcher.start()
    m, ns = mallory.kubectl, mallory.namespace
    try:
        m("-n", ns, "create", "-f", "-", stdin=_pod("relay"))
        patch = json.dumps({"status": {"podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}})
        status = m("-n", ns, "patch", "pod", "relay", "--subresource=status", "-p", patch,
                   check=False)  # fmt: skip
        assert _refused(status), status.stderr
        proxied = m("get", "--raw", f"/api/v1/namespaces/{ns}/pods/relay:{port}/proxy/",
                    check=False)  # fmt: skip
        assert _refused(proxied), proxied.stderr
        m("-n", ns, "create", "service", "clusterip", "relay", f"--tcp={port}:{port}")
        via_service = m("get", "--raw", f"/api/v1/namespaces/{ns}/services/relay:{port}/proxy/",
                        check=False)  # fmt: skip
        assert _refused(via_service), via_service.stderr
    finally:
        watcher.join()
        listener.close()
    assert got == []


@pytest.mark.parametrize("who", ["mallory", "mallory_in_person"])
def test_the_namespace_fence_cannot_be_weakened(who: str, request: pytest.FixtureRequest) -> None:
    tenant: Tenant = request.getfixturevalue(who)
    m, ns = tenant.kubectl, tenant.namespace
    lowered = m("label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged",
                "--overwrite", check=False)  # fmt: skip
    assert _refused(lowered, "never lowered"), lowered.stderr
    old = m("label", "namespace", ns, "pod-security.kubernetes.io/enforce-version=v1.22",
            "--overwrite", check=False)  # fmt: skip
    assert _refused(old, "never lowered"), old.stderr
    for change in ("app.kubernetes.io/managed-by-", "kubelab.dev/lab=09-fault-drills"):
        relabel = m("label", "namespace", ns, change, "--overwrite", check=False)
        assert _refused(relabel, "kubelab labels"), relabel.stderr
    finalizer = m("patch", "namespace", ns, "--type=merge",
                  "-p", '{"metadata": {"finalizers": ["mallory.example/forever"]}}',
                  check=False)  # fmt: skip
    assert _refused(finalizer, "finalizers"), finalizer.stderr
    deleted = m("delete", "namespace", ns, "--wait=false", check=False)
    assert _refused(deleted), deleted.stderr
    # Raising the level is allowed: lab 06's pod-security task is exactly that.
    m("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    m(
        "label",
        "namespace",
        ns,
        "pod-security.kubernetes.io/enforce=baseline",
        "--overwrite",
        check=False,
    )  # fmt: skip  (lowering back is refused; the level stays restricted)
    labels = json.loads(m("get", "namespace", ns, "-o", "json").stdout)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["app.kubernetes.io/managed-by"] == "kubelab"


HOSTILE_PODS = {
    "privileged": {"containers": [{"name": "c", "image": "busybox",
                                   "securityContext": {"privileged": True}}]},
    "host-pid": {"hostPID": True},
    "host-network": {"hostNetwork": True},
    "host-path": {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
    "host-port": {"containers": [{"name": "c", "image": "busybox",
                                  "ports": [{"containerPort": 80, "hostPort": 80}]}]},
    "sys-admin": {"containers": [{"name": "c", "image": "busybox",
                                  "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]},
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(HOSTILE_PODS))
def test_host_reaching_pods_are_refused(
    kind: str, mallory: Tenant, client: api.Api, kubectl: Kubectl
) -> None:
    m, ns = mallory.kubectl, mallory.namespace
    name = f"evil-{kind}"
    refused = m("-n", ns, "create", "-f", "-", stdin=_pod(name, **HOSTILE_PODS[kind]), check=False)
    assert _refused(refused, "PodSecurity"), refused.stderr
    # Even where the label was lowered (a cluster admin's slip), kubelab's policy still refuses,
    # whoever creates the pod: here the cluster admin, as a Deployment's controller would.
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged",
            "--overwrite")  # fmt: skip
    try:
        again = kubectl("-n", ns, "create", "-f", "-", stdin=_pod(name, **HOSTILE_PODS[kind]),
                        check=False)  # fmt: skip
        assert _refused(again, "kubelab:"), again.stderr
    finally:
        kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=baseline",
                "--overwrite")  # fmt: skip
    assert client.get(api.PODS, name, ns) is None


def test_legacy_token_secrets_are_refused(mallory: Tenant) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "steal",
            "annotations": {"kubernetes.io/service-account.name": "kubelab-submission"},
        },
        "type": "kubernetes.io/service-account-token",
    }
    made = mallory.kubectl("-n", mallory.namespace, "create", "-f", "-",
                           stdin=json.dumps(secret), check=False)  # fmt: skip
    assert _refused(made, "legacy ServiceAccount token"), made.stderr


def test_a_flood_stops_at_the_quota(mallory: Tenant, victor: Tenant, client: api.Api) -> None:
    """150 ConfigMaps of 900 KB took kube-apiserver from 400 MB to 960 MB; now the quota stops
    the flood at its count, and victor's grade does not move."""
    m, ns = mallory.kubectl, mallory.namespace
    payload = "x" * 900_000
    created, refusal = 0, ""
    for i in range(int(namespace_fence.COUNTS["configmaps"]) + 5):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"flood-{i}"},
                "data": {"blob": payload}}  # fmt: skip
        proc = m("-n", ns, "create", "-f", "-", stdin=json.dumps(body), check=False)
        if proc.returncode != 0:
            refusal = proc.stderr
            break
        created += 1
    assert "exceeded quota: kubelab-fence" in refusal, refusal
    assert created < int(namespace_fence.COUNTS["configmaps"])  # kube-root-ca.crt counts too
    # The fence itself cannot be lifted from inside.
    lifted = m("-n", ns, "delete", "resourcequota", namespace_fence.QUOTA, check=False)
    assert _refused(lifted), lifted.stderr
    assert all(_score(victor).values())


def test_a_lab_that_writes_quotas_still_cannot_touch_kubelabs(
    client: api.Api, fenced: None, tmp_path: Path
) -> None:
    """Lab 06's learners write their own ResourceQuota and LimitRange: kubelab's stays."""
    tenant = _submission(client, LAB06, tmp_path, "quota")
    try:
        k, ns = tenant.kubectl, tenant.namespace
        k("-n", ns, "create", "quota", "mine", "--hard=pods=5")  # their own: fine
        for verb in (("delete",), ("label", "--overwrite", "app.kubernetes.io/managed-by=me")):
            tamper = k("-n", ns, *verb[:1], "resourcequota", namespace_fence.QUOTA, *verb[1:],
                       check=False)  # fmt: skip
            assert _refused(tamper, "fence"), tamper.stderr
        assert client.get(api.RESOURCEQUOTAS, namespace_fence.QUOTA, ns) is not None
    finally:
        _release(client, tenant)


def test_confined_requests_queue_in_their_own_priority_level(
    mallory: Tenant, client: api.Api
) -> None:
    """The API server says which priority level served a request (an APF response header)."""
    level = client.get(fairness.LEVELS, fairness.LEVEL)
    assert level is not None
    verbose = mallory.kubectl("-n", mallory.namespace, "get", "configmaps", "-v=8", check=False)
    headers = [
        ln for ln in verbose.stderr.splitlines() if "X-Kubernetes-Pf-Prioritylevel-Uid" in ln
    ]
    assert headers, verbose.stderr[-2000:]
    assert level["metadata"]["uid"] in headers[-1]


def test_a_namespace_with_finalizers_and_no_label_still_resets(
    client: api.Api, kubectl: Kubectl, fenced: None
) -> None:
    """What a submission did on a cluster without kubelab's policy: a finalizer on its Namespace
    and on an object inside, and kubelab's label removed. Reset (a regrade) still takes it."""
    ns = f"fence-stuck-{uuid.uuid4().hex[:5]}"
    lab_namespaces.ensure(client, LAB, ns)
    kubectl("-n", ns, "create", "configmap", "held")
    kubectl("-n", ns, "patch", "configmap", "held", "--type=merge",
            "-p", '{"metadata": {"finalizers": ["mallory.example/never"]}}')  # fmt: skip
    kubectl("patch", "namespace", ns, "--type=merge",
            "-p", '{"metadata": {"finalizers": ["mallory.example/forever"]}}')  # fmt: skip
    kubectl("label", "namespace", ns, "app.kubernetes.io/managed-by-")
    assert records.made_by_kubelab(client, ns)
    lab_namespaces.reset(client, LAB, ns)  # raises if refused or still terminating
    again = client.get(api.NAMESPACES, ns)
    assert again is not None and again["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    assert client.get(api.CONFIGMAPS, "held", ns) is None
    freed = cleanup.delete_namespace(client, ns, timeout=60)
    assert client.get(api.NAMESPACES, ns) is None and freed == []
    assert not records.made_by_kubelab(client, ns)


def test_victor_keeps_full_marks_after_every_attack(victor: Tenant, mallory: Tenant) -> None:
    assert all(_score(victor).values())
