"""Deleting a namespace until it is really gone, whatever its occupants left behind.

A namespace is deleted only once everything in it is deleted, and an object with a finalizer is
deleted only once its finalizer is removed. Whoever worked inside can therefore keep a namespace
Terminating for ever: a finalizer on the Namespace itself, or on any object inside that no
controller will ever act on. With the leader's (or instructor's) credentials this strips those
finalizers, waits until the namespace is gone, and says what it could not remove.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from kubelab import api
from kubelab.errors import KubelabError
from kubelab.fence import records
from kubelab.i18n import _

STUCK_AFTER = 3.0  # seconds of Terminating before finalizers are looked for
_NO_FINALIZERS = {"metadata": {"finalizers": None}}


class StillThere(KubelabError):
    """A namespace that did not finish deleting in time; the message says what holds it."""


def _namespaced_resources(client: api.Api) -> Iterator[api.Resource]:
    """Yield every namespaced kind the server lists (discovery), subresources left out."""
    versions = ["v1"]
    for group in client.request("GET", "/apis").get("groups") or []:
        preferred = (group.get("preferredVersion") or {}).get("groupVersion")
        if preferred:
            versions.append(preferred)
    for version in versions:
        base = "/api/v1" if version == "v1" else f"/apis/{version}"
        try:
            found = client.request("GET", base).get("resources") or []
        except api.ApiError:
            continue  # an aggregated API that is down: nothing of it can hold finalizers now
        for r in found:
            if r.get("namespaced") and "/" not in r["name"] and "list" in (r.get("verbs") or []):
                yield api.Resource(version, r["name"], r.get("kind", ""))


def _held(ns: api.Json) -> bool:
    """Tell whether a Terminating namespace waits on finalizers (its own or its content's)."""
    if ns.get("metadata", {}).get("finalizers"):
        return True
    for c in ns.get("status", {}).get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in (
            "NamespaceFinalizersRemaining",
            "NamespaceContentRemaining",
        ):
            return True
    return False


def strip_finalizers(client: api.Api, namespace: str) -> list[str]:
    """Remove every finalizer from the namespace and the objects in it; return what was freed."""
    freed: list[str] = []
    current = client.get(api.NAMESPACES, namespace)
    if current and current.get("metadata", {}).get("finalizers"):
        client.patch(api.NAMESPACES, namespace, _NO_FINALIZERS)
        freed.append(f"Namespace {namespace}")
    for res in _namespaced_resources(client):
        try:
            items = client.list(res, namespace)
        except api.ApiError:
            continue
        for obj in items:
            meta = obj.get("metadata") or {}
            if meta.get("finalizers"):
                try:
                    client.patch(res, meta["name"], _NO_FINALIZERS, namespace)
                    freed.append(f"{res.kind} {meta['name']}")
                except api.ApiError as err:
                    if err.status != 404:
                        raise
    return freed


def delete_namespace(
    client: api.Api,
    namespace: str,
    *,
    timeout: float = 180.0,
    on_wait: Callable[[float], None] | None = None,
) -> list[str]:
    """Delete `namespace` and wait until it is gone; return the finalizers removed on the way.

    Raises StillThere naming what holds it when `timeout` runs out."""
    start = time.monotonic()
    freed: list[str] = []
    if client.get(api.NAMESPACES, namespace) is None:
        records.forget(client, namespace)
        return freed
    try:
        client.delete(api.NAMESPACES, namespace)
    except api.ApiError as err:
        if err.status != 409:  # 409: already being deleted, which is what we asked for
            raise
    stripped_at = -1.0
    while True:
        elapsed = time.monotonic() - start
        current = client.get(api.NAMESPACES, namespace)
        if current is None:
            records.forget(client, namespace)
            return freed
        if on_wait:
            on_wait(elapsed)
        # Strip once stuck, and again every few seconds (a controller may add finalizers back).
        if elapsed >= STUCK_AFTER and _held(current) and elapsed - stripped_at >= STUCK_AFTER:
            freed += strip_finalizers(client, namespace)
            stripped_at = elapsed
        if elapsed > timeout:
            raise StillThere(_holding(namespace, current, timeout))
        time.sleep(0.5)


def _holding(namespace: str, ns: api.Json, timeout: float) -> str:
    reasons = [
        c.get("message", "")
        for c in ns.get("status", {}).get("conditions") or []
        if c.get("status") == "True" and c.get("message")
    ]
    why = "; ".join(reasons) or _("no reason given by the namespace controller")
    return _(
        "namespace {namespace} is still terminating after {seconds}s ({why});"
        " see `kubectl get namespace {namespace} -o yaml`"
    ).format(namespace=namespace, seconds=f"{timeout:.0f}", why=why)
