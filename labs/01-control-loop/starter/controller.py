"""Your controller for ConfigMapSet: write `reconcile` so that one call makes the cluster match.

The grader imports this file and calls `reconcile(core, custom, namespace, name)` for the
ConfigMapSet `name`, with clients already connected to the cluster. It calls it again after it
deletes or edits a child, and after it scales the parent, and expects the cluster to match the
parent's spec after each call (within 20 seconds). Try it yourself from the lab notebook, or:

    python -m kubelab.controller_harness --file starter/controller.py --namespace lab-01 --name demo

Every gap is marked TODO(task-id). The kubernetes client's calls you need:

    custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)  -> dict
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name, body)
    core.list_namespaced_config_map(namespace, label_selector="key=value").items  -> V1ConfigMap
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(...))
    core.replace_namespaced_config_map(name, namespace, v1_config_map)
    core.delete_namespaced_config_map(name, namespace)

A missing object raises kubernetes.client.exceptions.ApiException with .status == 404.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

GROUP, VERSION, PLURAL, KIND = "kubelab.dev", "v1", "configmapsets", "ConfigMapSet"
LABEL = "kubelab.dev/configmapset"  # label every child with LABEL: <parent name>


def reconcile(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, namespace: str, name: str
) -> None:
    """Make the children of ConfigMapSet `name` match its spec, then report what was observed."""
    # TODO(reconcile): read the parent (desired state). If it no longer exists (404), return:
    # its children are the garbage collector's business.
    parent: dict[str, Any] = {}
    _ = (ApiException, parent)

    # TODO(reconcile): list the children (observed state) by their label, and compute the names
    # that should exist: <name>-0 ... <name>-(replicas-1).

    # TODO(owner-references): every child you create carries an ownerReference to the parent
    # (apiVersion, kind, name, uid, controller=True, block_owner_deletion=True), so that deleting
    # the parent deletes its children.

    # TODO(self-healing): create the children that are missing, put back the data of children
    # that drifted from spec.data, and delete the children that are no longer wanted.

    # TODO(idempotent): compare before you write. When a child is already right, do not touch it;
    # write status only when it differs. A reconcile with nothing to do makes no writes.

    # TODO(reconcile): write status.children and status.observedGeneration (the parent's
    # metadata.generation) with patch_namespaced_custom_object_status.
    raise NotImplementedError("reconcile is not written yet: see the TODOs in controller.py")
