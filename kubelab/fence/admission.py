"""An admission policy that keeps fenced namespaces fenced, whatever their occupants try.

RBAC says what a participant or a submission may do; this ValidatingAdmissionPolicy refuses the
ways of undoing the fence with what they may do:

- on their Namespace: deleting it, changing kubelab's labels, lowering (or re-versioning) the Pod
  Security level, adding finalizers (a namespace that can never finish deleting);
- kubelab's ResourceQuota and LimitRange: changing or deleting them;
- for everyone, in every fenced namespace: pods with host namespaces, hostPath volumes, host
  ports, privilege, or added capabilities outside the baseline set, even if the Pod Security
  label was somehow lowered; and legacy ServiceAccount token Secrets.

"Confined" means a workshop participant (group `kubelab:participants`) or any ServiceAccount
outside kube-system, so a participant cannot slip past it through a pod's or a submission's
token. Namespaces are selected by kubelab's label, which the same policy stops them removing.
"""

from __future__ import annotations

import uuid

from kubelab import api, wait
from kubelab.errors import KubelabError
from kubelab.fence.namespace_fence import LIMITS, MANAGED, PSA, QUOTA
from kubelab.i18n import _
from kubelab.labs import POD_SECURITY_LEVELS

NAME = "kubelab-fence"
PARTICIPANTS = "kubelab:participants"
MANAGED_BY = "app.kubernetes.io/managed-by"
# Labels only kubelab sets on a namespace (kept in step with kubelab.lab_namespaces).
KUBELAB_LABELS = (MANAGED_BY, "kubelab.dev/lab", "kubelab.dev/participant")
_GROUP = "admissionregistration.k8s.io/v1"
POLICIES = api.Resource(
    _GROUP, "validatingadmissionpolicies", "ValidatingAdmissionPolicy", namespaced=False
)
BINDINGS = api.Resource(
    _GROUP,
    "validatingadmissionpolicybindings",
    "ValidatingAdmissionPolicyBinding",
    namespaced=False,
)
# Pod Security's baseline list of capabilities a container may add.
BASELINE_CAPABILITIES = (
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
)

CONFINED = (
    f"'{PARTICIPANTS}' in request.userInfo.groups || "
    "(request.userInfo.username.startsWith('system:serviceaccount:') && "
    "!request.userInfo.username.startsWith('system:serviceaccount:kube-system:'))"
)


def _label(obj: str, key: str) -> str:
    """CEL for a label's value, or '' when `obj` has no such label."""
    return (
        f"((has({obj}.metadata.labels) && '{key}' in {obj}.metadata.labels)"
        f" ? {obj}.metadata.labels['{key}'] : '')"
    )


def _rank(obj: str) -> str:
    """CEL for the rank of an object's enforced Pod Security level (no label: privileged)."""
    value = _label(obj, f"{PSA}/enforce")
    cases = " : ".join(
        f"{value} == '{name}' ? {i}" for i, name in enumerate(POD_SECURITY_LEVELS) if i
    )
    return f"({cases} : 0)"


def _finalizers(obj: str) -> str:
    return f"(has({obj}.metadata.finalizers) ? {obj}.metadata.finalizers : [])"


def _containers() -> str:
    """CEL for every container of the pod: init, regular and ephemeral."""
    return (
        "(object.spec.containers"
        " + (has(object.spec.initContainers) ? object.spec.initContainers : [])"
        " + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers : []))"
    )


def _namespace_rules() -> list[api.Json]:
    kept = " && ".join(f"{_label('object', k)} == {_label('oldObject', k)}" for k in KUBELAB_LABELS)
    version = f"{PSA}/enforce-version"
    return [
        {
            "expression": "request.operation != 'DELETE'",
            "message": "kubelab: this namespace is fenced; only the workshop leader or instructor"
            " can delete it (`kubelab reset` as the leader)",
            "reason": "Forbidden",
        },
        {
            "expression": f"request.operation != 'UPDATE' || ({kept})",
            "message": "kubelab: the kubelab labels of a fenced namespace cannot be changed",
            "reason": "Forbidden",
        },
        {
            "expression": f"request.operation != 'UPDATE' || "
            f"({_rank('object')} >= {_rank('oldObject')} && "
            f"{_label('object', version)} == {_label('oldObject', version)})",
            "message": "kubelab: the Pod Security level of a fenced namespace can be raised"
            " (to restricted), never lowered",
            "reason": "Forbidden",
        },
        {
            "expression": f"request.operation != 'UPDATE' || "
            f"{_finalizers('object')}.all(f, f in {_finalizers('oldObject')})",
            "message": "kubelab: finalizers cannot be added to a fenced namespace",
            "reason": "Forbidden",
        },
    ]


def _policy(
    name: str,
    rules: list[api.Json],
    resources: list[api.Json],
    *,
    conditions: list[api.Json] | None = None,
    by_namespace_label: bool = True,
) -> api.Json:
    constraints: api.Json = {"resourceRules": resources}
    if by_namespace_label:
        constraints["namespaceSelector"] = {"matchLabels": {MANAGED_BY: "kubelab"}}
    spec: api.Json = {
        "failurePolicy": "Fail",
        "matchConstraints": constraints,
        "validations": rules,
    }
    if conditions:
        spec["matchConditions"] = conditions
    return {
        "apiVersion": _GROUP,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": MANAGED},
        "spec": spec,
    }


def _rule(group: str, resource: str, *operations: str) -> api.Json:
    return {
        "apiGroups": [group],
        "apiVersions": ["*"],
        "operations": list(operations),
        "resources": [resource],
    }


def policies() -> list[api.Json]:
    """Return the three policies: the namespace itself, kubelab's fence objects, and pods."""
    confined = [{"name": "confined", "expression": CONFINED}]
    # A namespace selector would read the labels of the namespace as updated, so removing
    # kubelab's label would take a namespace out of its own fence: match on the old object.
    was_fenced = {
        "name": "fenced",
        "expression": f"oldObject != null && {_label('oldObject', MANAGED_BY)} == 'kubelab'",
    }
    namespace = _policy(
        f"{NAME}-namespace",
        _namespace_rules(),
        [_rule("", "namespaces", "UPDATE", "DELETE")],
        conditions=[was_fenced, *confined],
        by_namespace_label=False,
    )
    fence_objects = _policy(
        f"{NAME}-objects",
        [
            {
                "expression": f"{_label('oldObject', MANAGED_BY)} != 'kubelab' || "
                f"!(oldObject.metadata.name in ['{QUOTA}', '{LIMITS}'])",
                "message": "kubelab: the namespace's fence (ResourceQuota and LimitRange"
                " kubelab-fence) cannot be changed or deleted from inside",
                "reason": "Forbidden",
            }
        ],
        [
            _rule("", "resourcequotas", "UPDATE", "DELETE"),
            _rule("", "limitranges", "UPDATE", "DELETE"),
        ],
        conditions=confined,
    )
    allowed_caps = ", ".join(f"'{c}'" for c in BASELINE_CAPABILITIES)
    sc = "c.securityContext"
    pods = _policy(
        f"{NAME}-pods",
        [
            {
                "expression": "object.kind != 'Pod' || !(has(object.spec.hostNetwork) &&"
                " object.spec.hostNetwork || has(object.spec.hostPID) && object.spec.hostPID ||"
                " has(object.spec.hostIPC) && object.spec.hostIPC)",
                "message": "kubelab: pods in a fenced namespace cannot use the node's network,"
                " PID or IPC namespace",
                "reason": "Forbidden",
            },
            {
                "expression": "object.kind != 'Pod' || !has(object.spec.volumes) ||"
                " object.spec.volumes.all(v, !has(v.hostPath))",
                "message": "kubelab: pods in a fenced namespace cannot mount hostPath volumes",
                "reason": "Forbidden",
            },
            {
                "expression": f"object.kind != 'Pod' || {_containers()}.all(c,"
                f" !has({sc}) || !has({sc}.privileged) || !{sc}.privileged)",
                "message": "kubelab: privileged containers are refused in a fenced namespace",
                "reason": "Forbidden",
            },
            {
                "expression": f"object.kind != 'Pod' || {_containers()}.all(c,"
                " !has(c.ports) || c.ports.all(p, !has(p.hostPort) || p.hostPort == 0))",
                "message": "kubelab: containers in a fenced namespace cannot take host ports",
                "reason": "Forbidden",
            },
            {
                "expression": f"object.kind != 'Pod' || {_containers()}.all(c,"
                f" !has({sc}) || !has({sc}.capabilities) || !has({sc}.capabilities.add) ||"
                f" {sc}.capabilities.add.all(cap, cap in [{allowed_caps}]))",
                "message": "kubelab: containers in a fenced namespace can add only the"
                " capabilities Pod Security baseline allows",
                "reason": "Forbidden",
            },
            {
                "expression": "object.kind != 'Secret' || !has(object.type) ||"
                " object.type != 'kubernetes.io/service-account-token'",
                "message": "kubelab: legacy ServiceAccount token Secrets are refused in a fenced"
                " namespace (use `kubectl create token`)",
                "reason": "Forbidden",
            },
        ],
        [
            _rule("", "pods", "CREATE", "UPDATE"),
            _rule("", "pods/ephemeralcontainers", "UPDATE"),
            _rule("", "secrets", "CREATE", "UPDATE"),
        ],
    )
    return [namespace, fence_objects, pods]


def _binding(policy: str) -> api.Json:
    return {
        "apiVersion": _GROUP,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy, "labels": MANAGED},
        "spec": {"policyName": policy, "validationActions": ["Deny"]},
    }


def objects() -> list[api.Json]:
    """Return the policies, each followed by its binding: everything `install` creates."""
    return [o for p in policies() for o in (p, _binding(p["metadata"]["name"]))]


def install(client: api.Api, *, timeout: float = 60.0) -> None:
    """Create or update the policies and their bindings (needs cluster-admin), and return only
    once the API server enforces them: it loads policies a moment after they are stored, and a
    participant handed credentials in that moment would meet no fence."""
    for policy in policies():
        api.create_or_replace(client, POLICIES, policy)
        api.create_or_replace(client, BINDINGS, _binding(policy["metadata"]["name"]))
    _wait_enforced(client, timeout)


def _wait_enforced(client: api.Api, timeout: float) -> None:
    """Wait until a privileged pod is refused (in a dry run) in a fenced namespace made for it.

    The pods policy and its binding are stored last, and the API server sees policies and
    bindings in the order they were stored, so once it enforces that one it enforces all three.
    """
    probe = f"kubelab-fence-probe-{uuid.uuid4().hex[:6]}"
    client.create(
        api.NAMESPACES,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": probe, "labels": MANAGED}},
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe"},
        "spec": {
            "containers": [{"name": "c", "image": "probe", "securityContext": {"privileged": True}}]
        },
    }

    def refused() -> bool:
        try:
            client.request("POST", api.PODS.path(probe), query={"dryRun": "All"}, body=pod)
        except api.ApiError as err:
            if err.status == 403 and "kubelab:" in str(err):
                return True
            raise
        return False

    try:
        if not wait.until(refused, bool, timeout=timeout, interval=0.2, raise_on_timeout=False):
            raise KubelabError(
                _(
                    "the API server did not enforce kubelab's admission policies within"
                    " {seconds}s (is the ValidatingAdmissionPolicy API enabled?)"
                ).format(seconds=f"{timeout:.0f}")
            )
    finally:
        client.delete(api.NAMESPACES, probe)


def remove(client: api.Api) -> None:
    """Delete the policies and their bindings (already gone is fine)."""
    for policy in policies():
        name = policy["metadata"]["name"]
        client.delete(BINDINGS, name)
        client.delete(POLICIES, name)
