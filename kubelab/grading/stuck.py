"""Pods that waiting will not make Ready: an image that cannot be pulled, a container that keeps
crashing, a pod no node can take, a ReplicaSet whose pods admission refuses.

A check waiting for a rollout stops at the first such pod of the current revision and names it
with its cause, instead of waiting out the deadline and then saying "wait for the rollout".
Only the current revision counts: the old pods of a fix being rolled out may still crash. For a
StatefulSet that is its update revision (status.updateRevision, on each pod as the
controller-revision-hash label).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubelab.api import DEPLOYMENTS, PODS, REPLICASETS, STATEFULSETS, Json
from kubelab.objects import REVISION_ANNOTATION, dig, owned_by, selector_query

if TYPE_CHECKING:
    from kubelab.grading.context import Context

_PULL = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
_CRASH = ("CrashLoopBackOff", "RunContainerError")
_CONFIG = ("CreateContainerConfigError", "CreateContainerError")


class Stuck(Exception):
    """A pod that will not become Ready by waiting; the message names it and its cause."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _image(pod: Json, container: str) -> str:
    for c in dig(pod, "spec", "initContainers", default=None) or []:
        if c.get("name") == container:
            return str(c.get("image", "?"))
    for c in dig(pod, "spec", "containers", default=None) or []:
        if c.get("name") == container:
            return str(c.get("image", "?"))
    return "?"


def why_stuck(pod: Json) -> Stuck | None:
    """Return why `pod` will not become Ready by waiting, or None if it may still."""
    name, ns = pod["metadata"]["name"], pod["metadata"].get("namespace", "")
    describe = f"`kubectl describe pod {name} -n {ns}`"
    statuses = (dig(pod, "status", "initContainerStatuses", default=None) or []) + (
        dig(pod, "status", "containerStatuses", default=None) or []
    )
    for st in statuses:
        container = st.get("name", "?")
        reason = dig(st, "state", "waiting", "reason", default="")
        if reason in _PULL:
            return Stuck(
                f"pod {name} cannot pull image {_image(pod, container)} ({reason})",
                f"Fix the image name or tag in the pod template and apply again; {describe} "
                "shows the pull error in its Events.",
            )
        if reason in _CRASH:
            code = dig(st, "lastState", "terminated", "exitCode", default="?")
            return Stuck(
                f"pod {name} keeps crashing: container {container} exited with code {code} "
                f"({reason}, {st.get('restartCount', 0)} restarts)",
                f"`kubectl logs {name} -c {container} -n {ns} --previous` shows why it exits "
                "(often its env or command); fix the pod template and apply again.",
            )
        if reason in _CONFIG:
            why = dig(st, "state", "waiting", "message", default=reason)
            return Stuck(
                f"pod {name} cannot start container {container} ({reason}: {why})",
                f"{describe} shows what the container refers to that is missing.",
            )
    for cond in dig(pod, "status", "conditions", default=None) or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
            return Stuck(
                f"pod {name} cannot be scheduled: {cond.get('message') or 'no node fits it'}",
                f"{describe} shows why no node fits: lower its resource requests or fix its "
                "node selector, affinity or tolerations.",
            )
    return None


def in_rollout(ctx: Context, deployment: str) -> Stuck | None:
    """Return the first stuck pod of the Deployment's current revision, or None."""
    dep = ctx.get(DEPLOYMENTS, deployment)
    query = selector_query(dig(dep or {}, "spec", "selector"))
    if dep is None or query is None:
        return None
    # Until the controller has seen the latest spec, the revision annotation still names the old
    # ReplicaSet, whose pods (the ones a fix replaces) may well be stuck: no verdict yet.
    if dig(dep, "status", "observedGeneration", default=0) < dig(
        dep, "metadata", "generation", default=0
    ):
        return None
    revision = dig(dep, "metadata", "annotations", REVISION_ANNOTATION, default=None)
    current = [
        rs
        for rs in ctx.list(REPLICASETS, labels=query)
        if owned_by(rs, dep["metadata"]["uid"])
        and dig(rs, "metadata", "annotations", REVISION_ANNOTATION, default=None) == revision
    ]
    for rs in current:  # admission (a LimitRange, a quota) refused its pods: none to wait for
        for cond in dig(rs, "status", "conditions", default=None) or []:
            if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
                name = rs["metadata"]["name"]
                return Stuck(
                    f"ReplicaSet {name} cannot create pods: {cond.get('message') or 'refused'}",
                    f"`kubectl describe replicaset {name} -n {ctx.namespace}` shows the refusal; "
                    "fit the pod template to the namespace's limits (`kubectl describe "
                    f"limitrange,resourcequota -n {ctx.namespace}`) and apply again.",
                )
    uids = {rs["metadata"]["uid"] for rs in current}
    for pod in ctx.list(PODS, labels=query):
        if any(owned_by(pod, uid) for uid in uids) and not dig(
            pod, "metadata", "deletionTimestamp"
        ):
            found = why_stuck(pod)
            if found:
                return found
    return None


REVISION_LABEL = "controller-revision-hash"  # a StatefulSet pod's revision


def in_statefulset(ctx: Context, name: str) -> Stuck | None:
    """Return the first stuck pod of the StatefulSet's update revision, or None."""
    sts = ctx.get(STATEFULSETS, name)
    query = selector_query(dig(sts or {}, "spec", "selector"))
    if sts is None or query is None:
        return None
    # As for Deployments: until the controller has seen the latest spec, no verdict.
    if dig(sts, "status", "observedGeneration", default=0) < dig(
        sts, "metadata", "generation", default=0
    ):
        return None
    revision = dig(sts, "status", "updateRevision", default=None)
    if not revision:
        return None
    for pod in ctx.list(PODS, labels=query):
        if (
            owned_by(pod, sts["metadata"]["uid"])
            and dig(pod, "metadata", "labels", REVISION_LABEL, default=None) == revision
            and not dig(pod, "metadata", "deletionTimestamp")
        ):
            found = why_stuck(pod)
            if found:
                return found
    return None
