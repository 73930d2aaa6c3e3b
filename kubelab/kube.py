"""The one place kubelab loads a kubeconfig and builds Kubernetes API clients."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client, config

REQUEST_TIMEOUT = 10  # seconds for every API call kubelab makes


def configuration(kubeconfig: str | Path) -> client.Configuration:
    """Load `kubeconfig` (a path, or several joined by os.pathsep) into a client configuration."""
    loaded = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=loaded
    )
    return loaded


def api_client(kubeconfig: Path) -> client.ApiClient:
    """Return an API client for the cluster in `kubeconfig` (no global state touched)."""
    return client.ApiClient(configuration(kubeconfig))


# Nodes a lab adds for its own sake (the fault drills' NotReady node) are not the cluster's.
LAB_NODE_LABEL = "kubelab.dev/drill"


def ready_nodes(api: client.ApiClient) -> tuple[int, int]:
    """Return (ready, total) counts of the cluster's nodes, leaving out the labs' own nodes."""
    nodes = (
        client.CoreV1Api(api)
        .list_node(label_selector=f"!{LAB_NODE_LABEL}", _request_timeout=REQUEST_TIMEOUT)
        .items
    )
    ready = 0
    for node in nodes:
        conditions = (node.status.conditions if node.status else None) or []
        if any(c.type == "Ready" and c.status == "True" for c in conditions):
            ready += 1
    return ready, len(nodes)
