"""A lab's namespace: create it for a learner, and put it back to the lab's start state.

Only namespaces kubelab created (labelled ``app.kubernetes.io/managed-by: kubelab``) are ever
deleted, so `kubelab reset` pointed at the wrong namespace refuses instead of destroying someone's
work. Reset touches the cluster only, never the learner's files.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from typing import TextIO

import yaml

from kubelab import api, apply, wait
from kubelab.errors import KubelabError
from kubelab.fence import cleanup, namespace_fence, records
from kubelab.i18n import _
from kubelab.labs import Lab
from kubelab.progress import status

MANAGED_BY = "app.kubernetes.io/managed-by"
LAB_LABEL = "kubelab.dev/lab"
# Marks a workshop participant's namespaces, and names the kubeconfig context extension that
# says whose kubeconfig it is (kubelab/workshop).
PARTICIPANT = "kubelab.dev/participant"
_SYSTEM = {"default", "kube-system", "kube-public", "kube-node-lease", records.NAMESPACE}
DELETE_TIMEOUT = 180.0
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: faster


def participant(kubeconfig: str | None = None) -> str | None:
    """Return the workshop participant whose kubeconfig this is (its current context's
    `kubelab.dev/participant` extension), or None; an unreadable kubeconfig is None too (the API
    client says what is wrong with it when it is used)."""
    files = (kubeconfig or api.default_kubeconfig()).split(os.pathsep)
    current: str | None = None
    contexts: dict[str, object] = {}
    for path in files:
        try:
            with open(os.path.expanduser(path)) as fh:
                doc = yaml.load(fh, Loader=_YAML_LOADER)
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(doc, dict):
            continue
        current = current or doc.get("current-context")  # as kubectl: the first file wins
        for entry in doc.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") not in contexts:
                contexts[str(entry.get("name"))] = entry.get("context")
    context = contexts.get(current or "")
    for ext in (context.get("extensions") if isinstance(context, dict) else None) or []:
        if isinstance(ext, dict) and ext.get("name") == PARTICIPANT and ext.get("extension"):
            return str(ext["extension"])
    return None


def default_namespace(lab_namespace: str, kubeconfig: str | None = None) -> str:
    """Return the namespace a lab (whose own namespace is `lab_namespace`) uses by default:
    $KUBELAB_NAMESPACE, else a workshop participant's copy (`alice-lab-02` when the kubeconfig
    is alice's), else the lab's own."""
    explicit = os.environ.get("KUBELAB_NAMESPACE")
    if explicit:
        return explicit
    who = participant(kubeconfig)
    return f"{who}-{lab_namespace}" if who else lab_namespace


def ensure(
    client: api.Api, lab: Lab, namespace: str, *, labels: dict[str, str] | None = None
) -> bool:
    """Create the lab namespace, fenced (kubelab/fence), with the lab's set-up, unless it exists;
    return True if created.

    `labels` are added to the new namespace (a workshop marks its participant's namespaces)."""
    if client.namespace_exists(namespace) is not False:
        return False  # there already, or not ours to see (a participant's own credentials)
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": {
                **namespace_fence.labels(lab),
                **(labels or {}),
                MANAGED_BY: "kubelab",
                LAB_LABEL: lab.id,
            },
        },
    }
    try:
        client.create(api.NAMESPACES, body)
    except api.ApiError as err:
        if err.status != 409:  # created meanwhile by someone else: fine
            raise KubelabError(
                _("cannot create namespace {namespace}: {error}").format(
                    namespace=namespace, error=err
                )
            ) from err
    records.record(client, namespace, lab.id)
    if lab.cluster_setup is not None:
        install_cluster_setup(client, lab, namespace)
    try:
        namespace_fence.apply(client, namespace, lab)
    except api.ApiError as err:
        raise KubelabError(
            _(
                "cannot fence namespace {namespace} (its ResourceQuota and LimitRange): {error};"
                " ask whoever runs the cluster to run `kubelab reset {lab}`"
            ).format(namespace=namespace, error=err, lab=lab.id)
        ) from err
    if lab.setup is not None:
        apply.apply(lab.setup, namespace=namespace, client=client)
    return True


def install_cluster_setup(client: api.Api, lab: Lab, namespace: str) -> None:
    """Apply the lab's cluster-wide prerequisites (plain manifests, not Kustomize) and wait until
    their CRDs are served; credentials confined to a namespace get one line saying who can."""
    assert lab.cluster_setup is not None
    try:
        apply.apply(lab.cluster_setup, namespace=namespace, client=client)
    except KubelabError as err:
        raise KubelabError(
            _(
                "{lab} needs cluster-wide set-up ({setup}) that these credentials cannot install:"
                " {error}; ask whoever runs the cluster to run `kubelab reset {lab}`"
            ).format(lab=lab.id, setup=lab.cluster_setup.name, error=err)
        ) from err
    crds = [
        doc["metadata"]["name"]
        for f in apply.yaml_files(lab.cluster_setup)
        for doc in yaml.safe_load_all(f.read_text())
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
    ]

    def established(name: str) -> bool:
        crd = client.get(api.CRDS, name) or {}
        conditions = crd.get("status", {}).get("conditions") or []
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

    for name in crds:
        try:
            wait.until(
                partial(established, name),
                bool,
                timeout=30,
                interval=0.2,
                what=f"CustomResourceDefinition {name} to be served",
            )
        except wait.Timeout as err:
            raise KubelabError(
                _("CustomResourceDefinition {name} is not served after 30s").format(name=name)
            ) from err


def _refuse_unless_ours(client: api.Api, obj: api.Json, namespace: str) -> None:
    if namespace in _SYSTEM or namespace.startswith("kube-"):
        raise KubelabError(
            _("refusing to reset {namespace}: it is a system namespace").format(namespace=namespace)
        )
    if records.made_by_kubelab(client, namespace):
        return  # the record outlives whatever was done to the namespace's labels
    labels = obj.get("metadata", {}).get("labels") or {}
    if labels.get(MANAGED_BY) != "kubelab":
        raise KubelabError(
            _(
                "refusing to reset namespace {namespace}: kubelab did not create it"
                " (no {label}=kubelab label); delete it yourself if you are sure"
            ).format(namespace=namespace, label=MANAGED_BY)
        )


def reset(
    client: api.Api, lab: Lab, namespace: str | None = None, *, stream: TextIO | None = None
) -> str:
    """Delete the lab namespace if kubelab made it, wait until it is gone, and create it afresh."""
    ns = namespace or lab.namespace
    out = stream or sys.stderr
    current = client.get(api.NAMESPACES, ns)
    if current is not None:
        _refuse_unless_ours(client, current, ns)
        with status(_("deleting namespace {namespace}").format(namespace=ns), stream=out) as s:
            try:
                cleanup.delete_namespace(
                    client, ns, timeout=DELETE_TIMEOUT, on_wait=lambda t: s.update(f"{t:.0f}s")
                )
            except cleanup.StillThere as err:
                raise KubelabError(str(err)) from err
    with status(
        _("creating namespace {namespace} for {lab}").format(namespace=ns, lab=lab.id), stream=out
    ):
        ensure(client, lab, ns)
    return ns
