"""API Priority and Fairness for confined subjects: one flood queues behind itself.

Every participant's and submission's requests go to one priority level, `kubelab-confined`, with
a small share of the API server's concurrency that it may not borrow beyond; inside it each user
is its own flow (fair queuing), so one participant flooding its namespace waits in its own queue
while the others' checks go through. The leader, the graders' admin calls, the controllers and the
nodes keep their own levels untouched.

A FlowSchema per grant names its subjects: the participant's user (or the submission's
ServiceAccount) and every ServiceAccount in its namespaces (a pod's token on kind).
"""

from __future__ import annotations

import hashlib

from kubelab import api
from kubelab.fence.namespace_fence import MANAGED

_GROUP = "flowcontrol.apiserver.k8s.io/v1"
LEVELS = api.Resource(
    _GROUP, "prioritylevelconfigurations", "PriorityLevelConfiguration", namespaced=False
)
FLOWSCHEMAS = api.Resource(_GROUP, "flowschemas", "FlowSchema", namespaced=False)
LEVEL = "kubelab-confined"
# Matched after the built-in schemas for the system, nodes, leader election and controllers
# (precedence 1000 and below), before `service-accounts` (9000) and `global-default` (9900), which
# would otherwise take the submissions' ServiceAccounts and the participants' users.
PRECEDENCE = 5000
SHARES = 10  # global-default has 20, workload-low 100: confined users get a small, fixed part


def level() -> api.Json:
    """Return the priority level every confined subject shares."""
    return {
        "apiVersion": _GROUP,
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": LEVEL, "labels": MANAGED},
        "spec": {
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": SHARES,
                "lendablePercent": 0,
                "borrowingLimitPercent": 0,
                "limitResponse": {
                    "type": "Queue",
                    "queuing": {"queues": 64, "handSize": 6, "queueLengthLimit": 50},
                },
            },
        },
    }


def schema_name(grant: str) -> str:
    """Return the FlowSchema name of a grant (a DNS subdomain whatever the grant's name)."""
    digest = hashlib.sha256(grant.encode()).hexdigest()[:10]
    safe = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in grant.lower())[:40]
    return f"kubelab-{safe.strip('-')}-{digest}"


def flow_schema(grant: str, subject: api.Json, namespaces: list[str]) -> api.Json:
    """Return the FlowSchema that puts `subject` and its namespaces' ServiceAccounts in the
    confined level, one flow per user."""
    if subject["kind"] == "ServiceAccount":
        who: api.Json = {
            "kind": "ServiceAccount",
            "serviceAccount": {"namespace": subject["namespace"], "name": subject["name"]},
        }
    else:
        who = {"kind": subject["kind"], subject["kind"].lower(): {"name": subject["name"]}}
    accounts = [
        {"kind": "ServiceAccount", "serviceAccount": {"namespace": ns, "name": "*"}}
        for ns in namespaces
    ]
    every = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"]}
    cluster = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": True}
    return {
        "apiVersion": _GROUP,
        "kind": "FlowSchema",
        "metadata": {"name": schema_name(grant), "labels": MANAGED},
        "spec": {
            "priorityLevelConfiguration": {"name": LEVEL},
            "matchingPrecedence": PRECEDENCE,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [who, *accounts],
                    "resourceRules": [every, cluster],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }


def install_level(client: api.Api) -> None:
    """Create or update the shared priority level."""
    api.create_or_replace(client, LEVELS, level())


def admit(client: api.Api, grant: str, subject: api.Json, namespaces: list[str]) -> None:
    """Put a grant's subject and namespaces in the confined level."""
    api.create_or_replace(client, FLOWSCHEMAS, flow_schema(grant, subject, namespaces))


def release(client: api.Api, grant: str) -> None:
    """Remove a grant's FlowSchema (already gone is fine)."""
    client.delete(FLOWSCHEMAS, schema_name(grant))
