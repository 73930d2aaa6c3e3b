"""The one place kubelab loads a kubeconfig and builds Kubernetes API clients."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from kubernetes import client, config

from kubelab.i18n import N_, _

REQUEST_TIMEOUT = 10  # seconds for every API call kubelab makes


def configuration(kubeconfig: str | Path) -> client.Configuration:
    """Load `kubeconfig` (a path, or several joined by os.pathsep) into a client configuration."""
    loaded = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=loaded
    )
    return loaded


_NO_CONTEXT = N_("which sets no current-context (`kubectl config use-context NAME` picks one)")
_NOT_IN_LIST = re.compile(r"Expected object with name (.*?) in .*/(contexts|clusters|users) list")


def load_problem(err: Exception) -> str:
    """Say in a few words what is wrong with a kubeconfig that `configuration` refused (a clause
    that follows "the kubeconfig FILE,")."""
    text = " ".join(str(err).split())
    if isinstance(err, yaml.YAMLError):
        mark = getattr(err, "problem_mark", None)
        if mark:
            return _("which is not valid YAML (line {line})").format(line=mark.line + 1)
        return _("which is not valid YAML")
    if "Expected key current-context" in text:
        return _(_NO_CONTEXT)
    if "file is empty" in text:
        return _("which is empty")
    found = _NOT_IN_LIST.search(str(err))  # the raw text: an empty name is two spaces
    if found:
        name, kind = found.group(1).strip(), found.group(2)
        if kind == "contexts":
            if not name:
                return _(_NO_CONTEXT)
            return _("whose current-context {name} is not among its contexts").format(
                name=repr(name)
            )
        return _("which names {kind} {name} in its context but does not define it").format(
            kind=kind[:-1], name=repr(name)
        )
    reason = text.removeprefix("Invalid kube-config file. ") or _("unknown")
    return _("which cannot be used: {reason}").format(reason=reason)


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
