"""The course cluster's record of itself: the ConfigMap `kubelab cluster up` writes in kube-public.

Every authenticated user may read it (manifests/cluster/*/substrate.yaml), so a participant's or a
sandboxed grader's confined credentials learn what kind of cluster this is and where its Gateway
answers from this machine, which only the process that created the cluster knows.
"""

from __future__ import annotations

import os

from kubelab import api

CONFIGMAP = ("kube-public", "kubelab-cluster")  # (namespace, name)
SUBSTRATE_KEY = "substrate"  # "sim" or "kind"
GATEWAY_URL_KEY = "gatewayURL"  # kind: where Traefik's listener answers from the host
DEFAULT_GATEWAY_URL = "http://localhost:8080"  # kind with published ports (kind-config.yaml)


def read(client: api.Api) -> dict[str, str]:
    """Return the record's data, or {} on a cluster kubelab did not set up (or cannot be read)."""
    try:
        cm = client.get(api.CONFIGMAPS, CONFIGMAP[1], CONFIGMAP[0])
    except api.ApiError:
        return {}
    return {str(k): str(v) for k, v in ((cm or {}).get("data") or {}).items()}


def gateway_url(record: dict[str, str]) -> str:
    """Where to send Gateway traffic: $KUBELAB_GATEWAY_URL, else the record, else localhost:8080."""
    return (
        os.environ.get("KUBELAB_GATEWAY_URL") or record.get(GATEWAY_URL_KEY) or DEFAULT_GATEWAY_URL
    ).rstrip("/")
