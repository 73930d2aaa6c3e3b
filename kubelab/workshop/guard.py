"""An admission policy that keeps participants' namespaces where `workshop up` put them.

A participant owns everything inside their namespaces, and the API server authorizes requests on
a Namespace object inside that namespace, so RBAC alone would let them delete their own namespace
(which they could not create again) or relabel it (hiding it from `workshop down` and the board).
This ValidatingAdmissionPolicy refuses both for the `kubelab:participants` group; other label
changes (a lab's Pod Security level) still go through.
"""

from __future__ import annotations

from kubelab import access, api
from kubelab.lab_namespaces import LAB_LABEL, MANAGED_BY, PARTICIPANT
from kubelab.workshop import participants

NAME = "kubelab-participant-namespaces"
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


def _label(obj: str, key: str) -> str:
    """CEL for a label's value, or '' when `obj` has no such label."""
    return (
        f"(has({obj}.metadata.labels) && '{key}' in {obj}.metadata.labels"
        f" ? {obj}.metadata.labels['{key}'] : '')"
    )


def _policy() -> api.Json:
    kept = " && ".join(
        f"{_label('object', k)} == {_label('oldObject', k)}"
        for k in (PARTICIPANT, LAB_LABEL, MANAGED_BY)
    )
    return {
        "apiVersion": _GROUP,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": NAME, "labels": access.MANAGED},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["DELETE", "UPDATE"],
                        "resources": ["namespaces"],
                    }
                ]
            },
            "matchConditions": [
                {
                    "name": "participant",
                    "expression": f"'{participants.GROUP}' in request.userInfo.groups",
                }
            ],
            "validations": [
                {
                    "expression": "request.operation != 'DELETE'",
                    "message": "workshop participants cannot delete their namespaces; ask the"
                    " workshop leader to reset it",
                },
                {
                    "expression": f"request.operation != 'UPDATE' || ({kept})",
                    "message": "workshop participants cannot change the kubelab labels of their"
                    " namespaces",
                },
            ],
        },
    }


def _binding() -> api.Json:
    return {
        "apiVersion": _GROUP,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": NAME, "labels": access.MANAGED},
        "spec": {"policyName": NAME, "validationActions": ["Deny"]},
    }


def install(client: api.Api) -> None:
    """Create or update the policy and its binding."""
    for res, body in ((POLICIES, _policy()), (BINDINGS, _binding())):
        try:
            client.create(res, body)
        except api.ApiError as err:
            if err.status != 409:
                raise
            current = client.get(res, NAME) or {}
            # These kinds refuse an update that does not say which version it replaces.
            body["metadata"]["resourceVersion"] = current.get("metadata", {}).get("resourceVersion")
            client.request("PUT", res.path(None, NAME), body=body)


def remove(client: api.Api) -> None:
    """Delete the policy and its binding (already gone is fine)."""
    client.delete(BINDINGS, NAME)
    client.delete(POLICIES, NAME)
