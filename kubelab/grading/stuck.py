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
from kubelab.i18n import _
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
                _("pod {pod} cannot pull image {image} ({reason})").format(
                    pod=name, image=_image(pod, container), reason=reason
                ),
                _(
                    "Fix the image name or tag in the pod template and apply again; {describe} "
                    "shows the pull error in its Events."
                ).format(describe=describe),
            )
        if reason in _CRASH:
            code = dig(st, "lastState", "terminated", "exitCode", default="?")
            return Stuck(
                _(
                    "pod {pod} keeps crashing: container {container} exited with code {code} "
                    "({reason}, {restarts} restarts)"
                ).format(
                    pod=name,
                    container=container,
                    code=code,
                    reason=reason,
                    restarts=st.get("restartCount", 0),
                ),
                _(
                    "`kubectl logs {pod} -c {container} -n {namespace} --previous` shows why it "
                    "exits (often its env or command); fix the pod template and apply again."
                ).format(pod=name, container=container, namespace=ns),
            )
        if reason in _CONFIG:
            why = dig(st, "state", "waiting", "message", default=reason)
            return Stuck(
                _("pod {pod} cannot start container {container} ({reason}: {why})").format(
                    pod=name, container=container, reason=reason, why=why
                ),
                _("{describe} shows what the container refers to that is missing.").format(
                    describe=describe
                ),
            )
    for cond in dig(pod, "status", "conditions", default=None) or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
            return Stuck(
                _("pod {pod} cannot be scheduled: {why}").format(
                    pod=name, why=cond.get("message") or _("no node fits it")
                ),
                _(
                    "{describe} shows why no node fits: lower its resource requests or fix its "
                    "node selector, affinity or tolerations."
                ).format(describe=describe),
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
                    _("ReplicaSet {name} cannot create pods: {why}").format(
                        name=name, why=cond.get("message") or _("refused")
                    ),
                    _(
                        "`kubectl describe replicaset {name} -n {namespace}` shows the refusal; "
                        "fit the pod template to the namespace's limits (`kubectl describe "
                        "limitrange,resourcequota -n {namespace}`) and apply again."
                    ).format(name=name, namespace=ctx.namespace),
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
