"""Credentials that reach only some namespaces: for workshop participants and graded submissions.

A confined subject (a participant's user certificate, a submission's ServiceAccount) gets, by an
explicit list derived from what the labs' solutions, their graders and kubectl's everyday commands
do (never `*`):
- in each of its own namespaces (RoleBinding to `kubelab:namespace-owner`, plus the lab's own
  `fence.rules` from lab.yaml, e.g. lab 06's Roles and quotas): the workloads, their Services and
  configuration, scaling, logs, exec and evictions. No status subresources (a pod's status holds
  the address `pods/proxy` would connect to), no `pods/proxy`, `services/proxy` or
  `pods/portforward`, no Endpoints or EndpointSlices writes, no writes to ResourceQuotas or
  LimitRanges, no ServiceAccount tokens, no impersonation;
- `get`/`patch` on its own Namespace objects only, so a lab can ask for a Pod Security label
  (kubelab/fence/admission.py refuses lowering it or touching kubelab's labels);
- what graders must read outside it (`kubelab:lab-reader`): CRDs, GatewayClasses, StorageClasses,
  PriorityClasses, Nodes, the system Namespaces, and SubjectAccessReviews (lab 06 asks the API
  server who may do what);
- its own FlowSchema (kubelab/fence/fairness.py), so its requests queue with the other confined
  subjects' and never crowd out the leader, the graders or the control plane.
It cannot list Namespaces, read another namespace's objects, or create cluster-wide objects.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from kubelab import api, kube
from kubelab.api import Json
from kubelab.fence import fairness
from kubelab.labs import Lab

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


_WRITE = ["create", "update", "patch", "delete", "deletecollection"]
_ALL = [*_READ, *_WRITE]


def _rule(group: str, resources: list[str], verbs: list[str]) -> Json:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


# What every lab's namespace lets its occupant do; the test suite grades every lab's solution
# and runs its graders through credentials holding only this (and the lab's fence.rules).
OWNER_RULES: list[Json] = [
    _rule(
        "",
        ["pods", "services", "configmaps", "secrets", "serviceaccounts", "persistentvolumeclaims"],
        _ALL,
    ),
    _rule("", ["pods/log"], ["get", "list"]),
    _rule("", ["pods/exec", "pods/eviction"], ["create"]),
    _rule("", ["endpoints", "events", "resourcequotas", "limitranges"], _READ),
    _rule("apps", ["deployments", "statefulsets", "replicasets", "daemonsets"], _ALL),
    _rule(
        "apps",
        ["deployments/scale", "statefulsets/scale", "replicasets/scale"],
        ["get", "update", "patch"],
    ),
    _rule("apps", ["controllerrevisions"], _READ),
    _rule("batch", ["jobs", "cronjobs"], _ALL),
    _rule("autoscaling", ["horizontalpodautoscalers"], _ALL),
    _rule("policy", ["poddisruptionbudgets"], _ALL),
    _rule("networking.k8s.io", ["networkpolicies"], _ALL),
    _rule("gateway.networking.k8s.io", ["gateways", "httproutes", "referencegrants"], _ALL),
    _rule("discovery.k8s.io", ["endpointslices"], _READ),
    _rule("events.k8s.io", ["events"], _READ),
    _rule("metrics.k8s.io", ["pods"], _READ),
]


def lab_role_name(lab: Lab) -> str:
    """Return the name of the ClusterRole holding a lab's own rules (lab.yaml `fence.rules`)."""
    return f"kubelab:lab:{lab.id}"


def shared_roles() -> list[Json]:
    owner = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": NAMESPACE_OWNER, "labels": MANAGED},
        # Bound only by RoleBindings: each rule applies inside that one namespace.
        "rules": OWNER_RULES,
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


def install_shared_roles(client: api.Api, labs: list[Lab] | None = None) -> None:
    """Create or update the ClusterRoles confined subjects are bound to (and the labs' own), and
    the priority level their requests share."""
    for role in shared_roles():
        _put(client, CLUSTERROLES, role)
    for lab in labs or []:
        if lab.fence.rules:
            role = {
                "apiVersion": f"{RBAC}/v1",
                "kind": "ClusterRole",
                "metadata": {"name": lab_role_name(lab), "labels": MANAGED},
                "rules": [dict(r) for r in lab.fence.rules],
            }
            _put(client, CLUSTERROLES, role)
    fairness.install_level(client)


def _own_name(name: str) -> str:
    return f"kubelab:own:{name}"


def confine(client: api.Api, name: str, subject: Json, namespaces: dict[str, Lab]) -> None:
    """Give `subject` ({"kind": "User"|"ServiceAccount", "name", ["namespace"]}) the labs' list in
    each of `namespaces` (namespace -> its lab) and the read-only cluster access graders need;
    `name` names the grant (unique per subject) so `release` can remove its cluster-wide part."""
    install_shared_roles(client, list({lab.id: lab for lab in namespaces.values()}.values()))
    subjects = [{"apiGroup": RBAC, **subject} if subject["kind"] != "ServiceAccount" else subject]
    for ns, lab in namespaces.items():
        roles = [NAMESPACE_OWNER] + ([lab_role_name(lab)] if lab.fence.rules else [])
        for role in roles:
            _put(
                client,
                api.ROLEBINDINGS,
                {
                    "apiVersion": f"{RBAC}/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": role, "namespace": ns, "labels": MANAGED},
                    "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
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
                    "resourceNames": sorted(namespaces),
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
    fairness.admit(client, name, subject, sorted(namespaces))


def release(client: api.Api, name: str) -> None:
    """Remove the cluster-wide part of a grant (its RoleBindings go with their namespaces)."""
    own = _own_name(name)
    for res, obj in (
        (CLUSTERROLEBINDINGS, own),
        (CLUSTERROLEBINDINGS, f"{own}:reader"),
        (CLUSTERROLES, own),
    ):
        client.delete(res, obj)  # already gone is fine
    fairness.release(client, name)


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
