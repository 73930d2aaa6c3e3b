"""A reference controller for ConfigMapSet: one level-triggered, idempotent reconcile.

`reconcile` is called with the name of one ConfigMapSet. It never asks what changed: it reads the
desired state (the parent's spec) and the observed state (the ConfigMaps it owns), and closes the
gap. Whatever happened before (a child deleted, a child edited, the spec scaled, an event missed),
one call puts things right, and a call with nothing to do writes nothing.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

GROUP, VERSION, PLURAL, KIND = "kubelab.dev", "v1", "configmapsets", "ConfigMapSet"
LABEL = "kubelab.dev/configmapset"  # marks the children of one parent, so we can list them


def reconcile(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, namespace: str, name: str
) -> None:
    """Make the children of ConfigMapSet `name` match its spec, then report what was observed."""
    # 1. Read the desired state. A parent that is gone needs nothing from us: its children carry
    #    owner references, so the garbage collector deletes them.
    try:
        parent: dict[str, Any] = custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    except ApiException as err:
        if err.status == 404:
            return
        raise
    spec = parent.get("spec") or {}
    data = dict(spec.get("data") or {})
    wanted = {f"{name}-{i}" for i in range(int(spec.get("replicas", 0)))}
    uid = parent["metadata"]["uid"]
    owner = client.V1OwnerReference(
        api_version=f"{GROUP}/{VERSION}",
        kind=KIND,
        name=name,
        uid=uid,
        controller=True,  # we manage these ConfigMaps, and no other controller may
        block_owner_deletion=True,  # a foreground delete of the parent waits for them
    )

    # 2. Read the observed state: the ConfigMaps labelled as this parent's children.
    found = {
        cm.metadata.name: cm
        for cm in core.list_namespaced_config_map(namespace, label_selector=f"{LABEL}={name}").items
    }

    # 3. Act on the difference, and only on the difference.
    for child in sorted(wanted):
        current = found.get(child)
        if current is None:
            body = client.V1ConfigMap(
                metadata=client.V1ObjectMeta(
                    name=child, labels={LABEL: name}, owner_references=[owner]
                ),
                data=data,
            )
            try:
                core.create_namespaced_config_map(namespace, body)
                continue
            except ApiException as err:
                if err.status != 409:
                    raise
            # 409: a ConfigMap of that name exists without our label; adopt it below.
            current = core.read_namespaced_config_map(child, namespace)
        elif (current.data or {}) == data and _owned(current, uid):
            continue  # already right: no write
        current.data = data  # the whole map: keys that are no longer wanted go too
        current.metadata.labels = {**(current.metadata.labels or {}), LABEL: name}
        current.metadata.owner_references = [owner]
        # A replace carries the resourceVersion we read: if someone changed the ConfigMap since,
        # the server answers 409 and the next reconcile starts again from what is there.
        core.replace_namespaced_config_map(child, namespace, current)
    for child in sorted(set(found) - wanted):  # scaled down: the extras go
        try:
            core.delete_namespaced_config_map(child, namespace)
        except ApiException as err:
            if err.status != 404:  # already gone is what we wanted
                raise

    # 4. Report the observed state in status (its own subresource), only when it changed.
    status = {"children": len(wanted), "observedGeneration": parent["metadata"]["generation"]}
    seen = parent.get("status") or {}
    if any(seen.get(key) != value for key, value in status.items()):
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": status}
        )


def _owned(cm: client.V1ConfigMap, uid: str) -> bool:
    """Tell whether our parent (this uid) is the ConfigMap's controller owner."""
    refs = cm.metadata.owner_references or []
    return any(ref.uid == uid and ref.controller for ref in refs)
