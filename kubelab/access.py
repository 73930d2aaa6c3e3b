"""Credentials that reach only some namespaces: for workshop participants and graded submissions.

A confined subject (a participant's user certificate, a submission's ServiceAccount) gets:
- everything inside each of its own namespaces (RoleBinding to `kubelab:namespace-owner`; a
  RoleBinding can never grant anything outside its namespace);
- `get`/`patch` on its own Namespace objects only, so a lab can ask for a Pod Security label;
- what graders must read outside it (`kubelab:lab-reader`): CRDs, GatewayClasses, StorageClasses,
  PriorityClasses, Nodes, the system Namespaces, and SubjectAccessReviews (lab 06 asks the API
  server who may do what).
It cannot list Namespaces, read another namespace's objects, or create cluster-wide objects.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from kubelab import api, kube
from kubelab.api import Json

NAMESPACE_OWNER = "kubelab:namespace-owner"
LAB_READER = "kubelab:lab-reader"
MANAGED = {"app.kubernetes.io/managed-by": "kubelab"}
RBAC = "rbac.authorization.k8s.io"
CLUSTERROLES = api.Resource(f"{RBAC}/v1", "clusterroles", "ClusterRole", namespaced=False)
CLUSTERROLEBINDINGS = api.Resource(
    f"{RBAC}/v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
)
_SYSTEM_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"]
_READ = ["get", "list", "watch"]


def _shared_roles() -> list[Json]:
    owner = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": NAMESPACE_OWNER, "labels": MANAGED},
        # Bound only by RoleBindings, so "*" means "anything inside that one namespace".
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }
    reader = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": LAB_READER, "labels": MANAGED},
        "rules": [
            {
                "apiGroups": ["apiextensions.k8s.io"],
                "resources": ["customresourcedefinitions"],
                "verbs": _READ,
            },
            {
                "apiGroups": ["gateway.networking.k8s.io"],
                "resources": ["gatewayclasses"],
                "verbs": _READ,
            },
            {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": _READ},
            {"apiGroups": ["scheduling.k8s.io"], "resources": ["priorityclasses"], "verbs": _READ},
            {"apiGroups": [""], "resources": ["nodes"], "verbs": _READ},
            {
                "apiGroups": [""],
                "resources": ["namespaces"],
                "resourceNames": _SYSTEM_NAMESPACES,
                "verbs": ["get"],
            },
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["subjectaccessreviews"],
                "verbs": ["create"],
            },
        ],
    }
    return [owner, reader]


def _put(client: api.Api, res: api.Resource, body: Json, namespace: str | None = None) -> None:
    """Create `body`, or replace it if it exists (RBAC objects are small and wholly ours)."""
    try:
        client.create(res, body, namespace)
    except api.ApiError as err:
        if err.status != 409:
            raise
        # A replace (not a merge) drops any rule or subject we no longer grant.
        client.request("PUT", res.path(namespace, body["metadata"]["name"]), body=body)


def install_shared_roles(client: api.Api) -> None:
    """Create or update the two ClusterRoles every confined subject is bound to."""
    for role in _shared_roles():
        _put(client, CLUSTERROLES, role)


def _own_name(name: str) -> str:
    return f"kubelab:own:{name}"


def confine(client: api.Api, name: str, subject: Json, namespaces: list[str]) -> None:
    """Give `subject` ({"kind": "User"|"ServiceAccount", "name", ["namespace"]}) everything in
    `namespaces` and the read-only cluster access graders need; `name` names the grant (unique
    per subject) so `release` can remove its cluster-wide part."""
    install_shared_roles(client)
    subjects = [{"apiGroup": RBAC, **subject} if subject["kind"] != "ServiceAccount" else subject]
    for ns in namespaces:
        _put(
            client,
            api.ROLEBINDINGS,
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": NAMESPACE_OWNER, "namespace": ns, "labels": MANAGED},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": NAMESPACE_OWNER},
                "subjects": subjects,
            },
            ns,
        )
    own = _own_name(name)
    _put(
        client,
        CLUSTERROLES,
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": own, "labels": MANAGED},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["namespaces"],
                    "resourceNames": list(namespaces),
                    "verbs": ["get", "patch", "update"],
                }
            ],
        },
    )
    for binding, role in ((own, own), (f"{own}:reader", LAB_READER)):
        _put(
            client,
            CLUSTERROLEBINDINGS,
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": binding, "labels": MANAGED},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
                "subjects": subjects,
            },
        )


def release(client: api.Api, name: str) -> None:
    """Remove the cluster-wide part of a grant (its RoleBindings go with their namespaces)."""
    own = _own_name(name)
    for res, obj in (
        (CLUSTERROLEBINDINGS, own),
        (CLUSTERROLEBINDINGS, f"{own}:reader"),
        (CLUSTERROLES, own),
    ):
        client.delete(res, obj)  # already gone is fine


def cluster_endpoint(kubeconfig: str | Path) -> tuple[str, str]:
    """Return (server URL, base64 CA bundle) of the cluster in `kubeconfig`."""
    settings = kube.configuration(kubeconfig)
    ca_file = settings.ssl_ca_cert
    ca = base64.b64encode(Path(ca_file).read_bytes()).decode() if ca_file else ""
    return str(settings.host), ca


def kubeconfig_for(
    server: str,
    ca_data: str,
    user: dict[str, str],
    *,
    name: str,
    namespace: str,
    extensions: dict[str, Any] | None = None,
) -> Json:
    """Build a one-context kubeconfig; `user` is {"token": ...} or client-certificate-data/-key."""
    context: Json = {"cluster": name, "user": name, "namespace": namespace}
    if extensions:
        context["extensions"] = [{"name": k, "extension": v} for k, v in extensions.items()]
    cluster: Json = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
    }


def write_kubeconfig(path: Path, config: Json) -> Path:
    """Write a kubeconfig readable by its owner only (it holds a credential)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def service_account_token(
    client: api.Api, namespace: str, account: str, *, seconds: int = 3600
) -> str:
    """Create ServiceAccount `account` in `namespace` (if needed) and return a token for it."""
    try:
        client.create(
            api.SERVICEACCOUNTS,
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
            namespace,
        )
    except api.ApiError as err:
        if err.status != 409:
            raise
    review = client.request(
        "POST",
        api.SERVICEACCOUNTS.path(namespace, account) + "/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        },
    )
    return str(review["status"]["token"])
