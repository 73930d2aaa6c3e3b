"""Which namespaces kubelab made, recorded where their occupants cannot edit it.

A namespace's own labels say "kubelab made me", but whoever works inside it may try to change
them (the admission policy refuses, but a cluster without it would not). So each namespace kubelab
creates also gets a record: a ConfigMap named after it in `kubelab-system`, a namespace no
participant or submission can read or write. Reset, regrade and clean-up trust the record first.
"""

from __future__ import annotations

import time

from kubelab import api

NAMESPACE = "kubelab-system"
PART_OF = {"app.kubernetes.io/part-of": "kubelab"}
RECORD = {"kubelab.dev/record": "namespace"}


def _ensure_home(client: api.Api) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "labels": {
                **PART_OF,
                "pod-security.kubernetes.io/enforce": "restricted",
            },
        },
    }
    try:
        client.create(api.NAMESPACES, body)
    except api.ApiError as err:
        if err.status != 409:
            raise


def record(client: api.Api, namespace: str, lab: str) -> bool:
    """Record that kubelab created `namespace` for `lab`; False when these credentials may not
    (a learner's own cluster without kubelab-system rights still works, unrecorded)."""
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": namespace, "labels": {**PART_OF, **RECORD}},
        "data": {"lab": lab, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    for attempt in (1, 2):
        try:
            client.create(api.CONFIGMAPS, body, NAMESPACE)
            return True
        except api.ApiError as err:
            if err.status == 409:
                return True
            if err.status == 404 and attempt == 1:
                try:
                    _ensure_home(client)
                except api.ApiError:
                    return False
                continue
            if err.status == 403:
                return False
            raise
    return False


def made_by_kubelab(client: api.Api, namespace: str) -> bool:
    """Tell whether a record says kubelab created `namespace` (False when unreadable)."""
    try:
        return client.get(api.CONFIGMAPS, namespace, NAMESPACE) is not None
    except api.ApiError as err:
        if err.status == 403:
            return False
        raise


def forget(client: api.Api, namespace: str) -> None:
    """Drop the record of a namespace that is gone."""
    try:
        client.delete(api.CONFIGMAPS, namespace, NAMESPACE)
    except api.ApiError as err:
        if err.status != 403:
            raise
