"""A live tree of who owns what: Deployment → ReplicaSets → Pods, with each pod's readiness.

`kubectl get deploy,rs,pods` is three lists that the reader has to join by name; the ownership
is what a rollout or a scale actually changes. `watch_ownership` watches the Deployment, its
ReplicaSets and their pods (three `kubernetes.watch.Watch` streams, label-selected by the
Deployment's selector) and redraws the tree on every change: in place in a notebook, one line per
change elsewhere. It stops when a condition holds (by default: the rollout is complete and every
pod of the current ReplicaSet is Ready) or at a deadline, and returns the trees it showed.

Building and drawing a tree are pure functions over plain JSON, tested without a cluster; only
`watch_ownership` talks to the API server.
"""

from __future__ import annotations

import html
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, watch

from kubelab import live
from kubelab.api import default_kubeconfig
from kubelab.errors import KubelabError
from kubelab.i18n import _
from kubelab.kube import REQUEST_TIMEOUT, api_client
from kubelab.objects import controller_uid
from kubelab.views import ReplicaSetState, as_json, replica_set_state, revision_of, rollout_complete

WATCH_WINDOW = 2  # seconds per watch request: how long a stopped watcher may take to notice

Json = Mapping[str, Any]


@dataclass(frozen=True)
class PodNode:
    """One pod under its ReplicaSet."""

    name: str
    phase: str  # the pod's phase, or "Terminating" once it is being deleted
    ready: bool
    age: float  # seconds since it was created, when the tree was built


@dataclass(frozen=True)
class ReplicaSetNode:
    """One ReplicaSet of the Deployment and the pods it owns."""

    state: ReplicaSetState
    current: bool  # the Deployment's current revision (the one a rollout moves to)
    pods: tuple[PodNode, ...]  # by name


@dataclass(frozen=True)
class OwnershipTree:
    """The Deployment, its ReplicaSets and their pods, `elapsed` seconds after watching began."""

    elapsed: float
    deployment: str
    desired: int
    updated: int
    ready: int
    available: int
    revision: int
    replica_sets: tuple[ReplicaSetNode, ...]  # newest revision first
    complete: bool  # the rollout is complete (see kubelab.views.rollout_complete)
    settled: bool  # complete, and exactly `desired` pods, all Ready, all on the current revision

    def key(self) -> tuple[object, ...]:
        """What the tree shows apart from time: equal keys mean nothing changed."""
        sets = tuple(
            (rs.state, rs.current, tuple((p.name, p.phase, p.ready) for p in rs.pods))
            for rs in self.replica_sets
        )
        counts = (self.desired, self.updated, self.ready, self.available, self.revision)
        return (*counts, sets, self.complete, self.settled)


def _int(value: object, default: int = 0) -> int:
    """Return `value` as an int (the API omits counts that are zero)."""
    return int(value) if isinstance(value, (int, str)) and str(value).isdigit() else default


def _created(meta: Json) -> datetime | None:
    """Return an object's creationTimestamp as an aware datetime (None when missing)."""
    stamp = meta.get("creationTimestamp")
    if isinstance(stamp, datetime):  # client models carry datetimes, JSON carries strings
        return stamp
    if not stamp:
        return None
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def owner_uid(obj: object) -> str:
    """Return the uid of the controller that owns `obj` ("" when none)."""
    return controller_uid(as_json(obj))


def pod_node(pod: object, now: datetime) -> PodNode:
    """Build the node of one pod from its JSON or client model, its age counted up to `now`."""
    data = as_json(pod)
    meta = data.get("metadata") or {}
    status = data.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    created = _created(meta)
    gone = bool(meta.get("deletionTimestamp"))
    return PodNode(
        name=str(meta.get("name", "")),
        phase="Terminating" if gone else str(status.get("phase") or "Pending"),
        ready=ready and not gone,
        age=max(0.0, (now - created).total_seconds()) if created else 0.0,
    )


def build_tree(
    elapsed: float,
    deployment: object,
    replica_sets: Iterable[object],
    pods: Iterable[object],
    now: datetime,
) -> OwnershipTree:
    """Join a Deployment, the ReplicaSets to show and the pods (any; only those the shown
    ReplicaSets own are kept) into one tree."""
    dep = as_json(deployment)
    spec, status = dep.get("spec") or {}, dep.get("status") or {}
    current = revision_of(dep)
    by_owner: dict[str, list[PodNode]] = {}
    for pod in pods:
        by_owner.setdefault(owner_uid(pod), []).append(pod_node(pod, now))
    nodes = []
    for rs in replica_sets:
        uid = str((as_json(rs).get("metadata") or {}).get("uid", ""))
        state = replica_set_state(rs)
        owned = tuple(sorted(by_owner.get(uid, []), key=lambda p: p.name))
        nodes.append(ReplicaSetNode(state, state.revision == current, owned))
    nodes.sort(key=lambda n: n.state.revision, reverse=True)
    desired = _int(spec.get("replicas"), 1)
    complete = rollout_complete(dep, [n.state for n in nodes])
    on_current = [p for n in nodes if n.current for p in n.pods]
    elsewhere = [p for n in nodes if not n.current for p in n.pods]
    settled = (
        complete
        and not elsewhere
        and len(on_current) == desired
        and all(p.ready and p.phase == "Running" for p in on_current)
    )
    return OwnershipTree(
        elapsed=round(elapsed, 2),
        deployment=str((dep.get("metadata") or {}).get("name", "")),
        desired=desired,
        updated=_int(status.get("updatedReplicas")),
        ready=_int(status.get("readyReplicas")),
        available=_int(status.get("availableReplicas")),
        revision=current,
        replica_sets=tuple(nodes),
        complete=complete,
        settled=settled,
    )


def _age(seconds: float) -> str:
    """Return an age the way kubectl prints it: 42s, 3m, 2h."""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def _state_word(tree: OwnershipTree) -> str:
    if tree.settled:
        return _("settled")
    return _("complete, pods settling") if tree.complete else _("converging")


def render_html(tree: OwnershipTree, note: str = "") -> str:
    """Return the tree as HTML: the Deployment, each ReplicaSet indented under it, its pods
    under each ReplicaSet with a green ✓ or red ✗ for Ready."""
    items = []
    for rs in tree.replica_sets:
        s = rs.state
        colour = "#000" if rs.current else "#888"
        pods = "".join(
            f'<li style="margin:1px 0"><span style="color:{"#2e7d32" if p.ready else "#c62828"}">'
            f"{'✓' if p.ready else '✗'}</span> Pod <code>{html.escape(p.name)}</code> · "
            f"{html.escape(p.phase)} · {_age(p.age)}</li>"
            for p in rs.pods
        )
        none = f'<li style="color:#888">{_("no pods")}</li>' if not rs.pods else ""
        items.append(
            f'<li style="color:{colour};margin-top:4px">'
            f"<b>ReplicaSet</b> <code>{html.escape(s.name)}</code> · "
            + _(
                "revision {revision} {role} · image {image} · desired {desired}, pods {pods},"
                " ready {ready}"
            ).format(
                revision=s.revision,
                role=_("(current)") if rs.current else _("(old)"),
                image=f"<code>{html.escape(s.image_tag)}</code>",
                desired=s.desired,
                pods=s.replicas,
                ready=s.ready,
            )
            + f'<ul style="list-style:none;margin:2px 0 0 0;padding-left:22px">{pods}{none}</ul>'
            "</li>"
        )
    extra = f" · {html.escape(note)}" if note else ""
    state = _state_word(tree)
    badge = "#2e7d32" if tree.settled else "#ef6c00"
    return (
        '<div class="kubelab-ownership" style="font-family:sans-serif;line-height:1.4">'
        f"<b>Deployment</b> <code>{html.escape(tree.deployment)}</code> · "
        + _(
            "desired {desired}, updated {updated}, ready {ready}, available {available}"
            " · {state} at {seconds}s"
        ).format(
            desired=tree.desired,
            updated=tree.updated,
            ready=tree.ready,
            available=tree.available,
            state=f'<span style="color:{badge}">{state}</span>',
            seconds=f"{tree.elapsed:.1f}",
        )
        + extra
        + f'<ul style="list-style:none;margin:2px 0 0 0;padding-left:22px">{"".join(items)}</ul>'
        "</div>"
    )


def render_line(tree: OwnershipTree) -> str:
    """Return the tree as one terminal line: counts, then per ReplicaSet its pods' readiness."""
    parts = [
        _("{role} rev {revision} ({tag}) wants {desired}: {pods}").format(
            role=_("current") if rs.current else _("old"),
            revision=rs.state.revision,
            tag=rs.state.image_tag,
            desired=rs.state.desired,
            pods="".join("✓" if p.ready else "✗" for p in rs.pods) or "-",
        )
        for rs in tree.replica_sets
    ]
    head = f"{tree.elapsed:5.1f}s  {tree.deployment} " + _(
        "desired {desired} updated {updated} ready {ready}"
    ).format(desired=tree.desired, updated=tree.updated, ready=tree.ready)
    return " | ".join([head, *parts]) + (f" | {_state_word(tree)}" if tree.complete else "")


def selector_of(deployment: object) -> str:
    """Return the Deployment's matchLabels as a label selector string."""
    spec = as_json(deployment).get("spec") or {}
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _settled(tree: OwnershipTree) -> bool:
    return tree.settled


def watch_ownership(
    namespace: str,
    deployment: str,
    *,
    timeout: float = 90,
    until: Callable[[OwnershipTree], bool] | None = _settled,
    kubeconfig: str | None = None,
) -> list[OwnershipTree]:
    """Show the Deployment → ReplicaSets → Pods tree live until `until(tree)` holds (default:
    settled; None: watch for all of `timeout`) or `timeout` seconds pass; return the trees shown.

    A cluster that does not answer raises one KubelabError line, never a traceback."""
    try:
        api = api_client(Path(kubeconfig or default_kubeconfig()).expanduser())
    except Exception as err:  # a missing or unreadable kubeconfig
        raise KubelabError(_("cannot load the kubeconfig: {error}").format(error=err)) from err
    try:
        return _watch(api, namespace, deployment, timeout, until)
    except (client.ApiException, urllib3.exceptions.HTTPError, OSError) as err:
        reason = getattr(err, "reason", None) or type(err).__name__
        raise KubelabError(
            _(
                "the cluster did not answer while watching {name} ({reason}):"
                " is it up? (`kubelab cluster up`)"
            ).format(name=deployment, reason=str(reason)[:120])
        ) from None
    finally:
        api.close()  # type: ignore[no-untyped-call]


def _watch(
    api: client.ApiClient,
    namespace: str,
    name: str,
    timeout: float,
    until: Callable[[OwnershipTree], bool] | None,
) -> list[OwnershipTree]:
    """Watch one Deployment's tree (see `watch_ownership`); API errors propagate."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    start = time.monotonic()
    deadline = start + timeout
    try:
        dep: Json = as_json(
            apps.read_namespaced_deployment(name, namespace, _request_timeout=REQUEST_TIMEOUT)
        )
    except client.ApiException as err:
        if err.status != 404:
            raise
        print(
            _("no Deployment {name} in namespace {namespace}").format(
                name=name, namespace=namespace
            )
        )
        return []
    uid = str(dep["metadata"]["uid"])
    labels = selector_of(dep)
    # What we know, by name; the watchers' events keep it current.
    state: dict[str, dict[str, Json]] = {"deployment": {name: dep}, "rs": {}, "pod": {}}
    listers: dict[str, Callable[..., Any]] = {
        "deployment": partial(
            apps.list_namespaced_deployment, namespace, field_selector=f"metadata.name={name}"
        ),
        "rs": partial(apps.list_namespaced_replica_set, namespace, label_selector=labels),
        "pod": partial(core.list_namespaced_pod, namespace, label_selector=labels),
    }
    events: queue.Queue[tuple[str, str, Json] | BaseException] = queue.Queue()
    stop = threading.Event()
    versions = {kind: _relist(lister, state[kind]) for kind, lister in listers.items()}
    threads = [
        threading.Thread(
            target=_follow, args=(lister, versions[kind], kind, events, stop), daemon=True
        )
        for kind, lister in listers.items()
    ]
    show = live.shower(render_html, render_line)
    trees: list[OwnershipTree] = []
    involved: set[str] = set()  # ReplicaSets this watch has seen with pods: old ones stay shown

    def record(note: str = "", *, force: bool = False) -> OwnershipTree:
        dep_now = state["deployment"].get(name, dep)
        current = revision_of(dep_now)
        sets = [rs for rs in state["rs"].values() if owner_uid(rs) == uid]
        for rs in sets:
            s = replica_set_state(rs)
            if s.desired or s.replicas or s.revision == current:
                involved.add(s.name)
        shown = [rs for rs in sets if rs["metadata"]["name"] in involved]
        tree = build_tree(
            time.monotonic() - start,
            dep_now,
            shown,
            state["pod"].values(),
            datetime.now(timezone.utc),
        )
        if force or not trees or trees[-1].key() != tree.key():
            trees.append(tree)
            show(tree, note)
        return tree

    for t in threads:
        t.start()
    try:
        tree = record()
        while until is None or not until(tree):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if until is not None:
                    record(
                        _("not there after {seconds}s: see `kubectl get rs,pods`").format(
                            seconds=f"{timeout:g}"
                        ),
                        force=True,
                    )
                break
            try:
                item = events.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            while True:  # apply every event that has arrived, then draw once
                if isinstance(item, BaseException):
                    raise item
                kind, kind_type, obj = item
                obj_name = str(obj["metadata"]["name"])
                if kind_type == "DELETED":
                    state[kind].pop(obj_name, None)
                else:
                    state[kind][obj_name] = obj
                try:
                    item = events.get_nowait()
                except queue.Empty:
                    break
            tree = record()
        return trees
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=WATCH_WINDOW + 1)


def _relist(lister: Callable[..., Any], known: dict[str, Json]) -> str:
    """Replace what is known of one kind by a fresh list; return the list's resourceVersion."""
    listed = as_json(lister(_request_timeout=REQUEST_TIMEOUT))
    known.clear()
    for item in listed.get("items") or []:
        known[str(item["metadata"]["name"])] = item
    return str((listed.get("metadata") or {}).get("resourceVersion", ""))


def _follow(
    lister: Callable[..., Any],
    version: str,
    kind: str,
    events: queue.Queue[tuple[str, str, Json] | BaseException],
    stop: threading.Event,
) -> None:
    """Watch one kind in short windows until `stop`, putting its events (or the error that
    ended it) on the queue. On 410 Gone (our version expired) it lists again and reports every
    object as MODIFIED, so the tree catches up."""
    try:
        while not stop.is_set():
            watcher = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in watcher.stream(  # type: ignore[no-untyped-call]
                    lister,
                    resource_version=version,
                    timeout_seconds=WATCH_WINDOW,
                    _request_timeout=WATCH_WINDOW + REQUEST_TIMEOUT,
                    allow_watch_bookmarks=True,
                    deserialize=False,
                ):
                    obj = event["object"]
                    version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        events.put((kind, event["type"], obj))
                    if stop.is_set():
                        break
            except client.ApiException as err:
                if err.status != 410:
                    raise
                fresh: dict[str, Json] = {}
                version = _relist(lister, fresh)
                for obj in fresh.values():
                    events.put((kind, "MODIFIED", obj))
            finally:
                watcher.stop()  # type: ignore[no-untyped-call]
    except BaseException as err:  # handed to the drawing thread, which raises it as one line
        if not stop.is_set():
            events.put(err)
