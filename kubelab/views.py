"""Live views of what the cluster is doing, for notebooks and terminals.

A rolling update is over in seconds, and `kubectl get rs -w` leaves a wall of lines that is hard to
read afterwards. `watch_rollout` shows the old and new ReplicaSets side by side while the
Deployment controller trades replicas between them (an HTML table updated in place in Jupyter, one
line per change in a terminal), stops when the rollout is complete or at a deadline, and returns
what it saw as samples, so a later module can plot a rollout from live data.

The decisions (is this rollout complete? what does this ReplicaSet look like?) are pure functions
over plain JSON, tested without a cluster; only `watch_rollout` talks to the API server.
"""

from __future__ import annotations

import functools
import html
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
from kubelab.objects import REVISION_ANNOTATION, image_tag, owned_by

WATCH_WINDOW = 2  # seconds per watch request; the Deployment is re-read between windows

Json = Mapping[str, Any]


@dataclass(frozen=True)
class ReplicaSetState:
    """One ReplicaSet of a Deployment at one moment: its revision, image tag and pod counts."""

    name: str
    revision: int
    image_tag: str
    desired: int
    replicas: int
    ready: int
    available: int


@dataclass(frozen=True)
class RolloutSample:
    """What a rollout looked like `elapsed` seconds after watching began."""

    elapsed: float
    revision: int  # the Deployment's current revision (its newest ReplicaSet)
    image_tag: str  # the image tag of that revision
    replica_sets: tuple[ReplicaSetState, ...]  # newest revision first
    complete: bool


@functools.cache
def _serializer() -> client.ApiClient:
    """Return an API client used only to turn client models into JSON (it never connects)."""
    return client.ApiClient()


def as_json(obj: object) -> Json:
    """Return a Kubernetes object as the API's JSON (camelCase keys), model or dict alike."""
    if isinstance(obj, Mapping):
        return obj
    plain = _serializer().sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    if not isinstance(plain, Mapping):
        raise TypeError(f"not a Kubernetes object: {type(obj).__name__}")
    return plain


def _int(value: object, default: int = 0) -> int:
    """Return `value` as an int (API counts are omitted when zero)."""
    return int(value) if isinstance(value, (int, str)) and str(value).isdigit() else default


def revision_of(obj: object) -> int:
    """Return the rollout revision the Deployment controller wrote on a Deployment or ReplicaSet."""
    meta = as_json(obj).get("metadata") or {}
    return _int((meta.get("annotations") or {}).get(REVISION_ANNOTATION))


def replica_set_state(rs: object) -> ReplicaSetState:
    """Build the state of one ReplicaSet from its JSON or its client model."""
    data = as_json(rs)
    meta = data.get("metadata") or {}
    spec = data.get("spec") or {}
    status = data.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    image = str(containers[0].get("image", "")) if containers else ""
    return ReplicaSetState(
        name=str(meta.get("name", "")),
        revision=revision_of(data),
        image_tag=image_tag(image) if image else "",
        desired=_int(spec.get("replicas"), 1),
        replicas=_int(status.get("replicas")),
        ready=_int(status.get("readyReplicas")),
        available=_int(status.get("availableReplicas")),
    )


def rollout_complete(deployment: object, replica_sets: Iterable[ReplicaSetState]) -> bool:
    """Tell whether a rollout is done: spec seen, all updated and available, no old pods."""
    dep = as_json(deployment)
    meta = dep.get("metadata") or {}
    spec = dep.get("spec") or {}
    status = dep.get("status") or {}
    if _int(status.get("observedGeneration")) < _int(meta.get("generation"), 1):
        return False
    wanted = _int(spec.get("replicas"), 1)
    updated = _int(status.get("updatedReplicas"))
    if (
        not wanted
        == updated
        == _int(status.get("replicas"))
        == _int(status.get("availableReplicas"))
    ):
        return False
    current = revision_of(dep)
    return all(rs.replicas == 0 for rs in replica_sets if rs.revision != current)


def sample(
    elapsed: float, deployment: object, replica_sets: Iterable[ReplicaSetState]
) -> RolloutSample:
    """Build one sample from the Deployment and the states of its ReplicaSets."""
    states = tuple(sorted(replica_sets, key=lambda rs: rs.revision, reverse=True))
    current = revision_of(deployment)
    tag = next((rs.image_tag for rs in states if rs.revision == current), "")
    return RolloutSample(
        elapsed=round(elapsed, 2),
        revision=current,
        image_tag=tag,
        replica_sets=states,
        complete=rollout_complete(deployment, states),
    )


def render_html(deployment: str, s: RolloutSample, note: str = "") -> str:
    """Return an HTML table of one sample: one row per ReplicaSet, the current one marked new."""
    rows = []
    for rs in s.replica_sets:
        new = rs.revision == s.revision
        weight = "bold" if new else "normal"
        cells = [
            str(rs.revision),
            _("new") if new else _("old"),
            html.escape(rs.name),
            html.escape(rs.image_tag),
            str(rs.desired),
            str(rs.replicas),
            str(rs.ready),
            str(rs.available),
        ]
        tds = "".join(f"<td>{c}</td>" for c in cells)
        rows.append(f'<tr style="font-weight:{weight}">{tds}</tr>')
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            _("revision"),
            "",
            "ReplicaSet",
            _("image"),
            _("desired"),
            _("pods"),
            _("ready"),
            _("available"),
        )
    )
    state = _("complete") if s.complete else _("rolling")
    caption = _("Deployment {name}: {state} at {seconds}s").format(
        name=html.escape(deployment), state=state, seconds=f"{s.elapsed:.1f}"
    )
    if note:
        caption += f" · {html.escape(note)}"
    return (
        f"<table><caption style='text-align:left'>{caption}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render_line(s: RolloutSample) -> str:
    """Return one terminal line for a sample: elapsed seconds, then the counts per revision."""
    parts = [
        _(
            "{role} rev {revision} ({tag}): desired {desired} pods {pods} ready {ready}"
            " available {available}"
        ).format(
            role=_("new") if rs.revision == s.revision else _("old"),
            revision=rs.revision,
            tag=rs.image_tag,
            desired=rs.desired,
            pods=rs.replicas,
            ready=rs.ready,
            available=rs.available,
        )
        for rs in s.replica_sets
    ]
    done = " | " + _("complete") if s.complete else ""
    return f"{s.elapsed:5.1f}s  " + " | ".join(parts) + done


def watch_rollout(
    namespace: str, deployment: str, *, timeout: float = 90, kubeconfig: str | None = None
) -> list[RolloutSample]:
    """Show a Deployment's rollout live until it completes or `timeout` passes; return samples."""
    api = api_client(Path(kubeconfig or default_kubeconfig()).expanduser())
    apps = client.AppsV1Api(api)
    start = time.monotonic()
    deadline = start + timeout
    show = live.shower(partial(render_html, deployment), render_line)
    samples: list[RolloutSample] = []
    states: dict[str, ReplicaSetState] = {}  # by name: every ReplicaSet the Deployment owns
    involved: set[str] = set()  # the ones this rollout touches

    def read_deployment() -> Json:
        """Read the Deployment as JSON."""
        found = apps.read_namespaced_deployment(
            deployment, namespace, _request_timeout=REQUEST_TIMEOUT
        )
        return as_json(found)

    def relist(uid: str) -> str:
        """Replace the known ReplicaSets by a fresh list; return the list's resourceVersion."""
        listed = as_json(
            apps.list_namespaced_replica_set(namespace, _request_timeout=REQUEST_TIMEOUT)
        )
        states.clear()
        for rs in listed.get("items") or []:
            if owned_by(rs, uid):
                states[rs["metadata"]["name"]] = replica_set_state(rs)
        return str((listed.get("metadata") or {}).get("resourceVersion", ""))

    def record(dep: Json) -> RolloutSample:
        """Take a sample; keep and show it when something changed."""
        current = revision_of(dep)
        for rs in states.values():  # long-idle old revisions would only clutter the view
            if rs.desired or rs.replicas or rs.revision == current:
                involved.add(rs.name)
        shown = [rs for rs in states.values() if rs.name in involved]
        s = sample(time.monotonic() - start, dep, shown)
        last = samples[-1] if samples else None
        if last is None or (last.revision, last.replica_sets, last.complete) != (
            s.revision,
            s.replica_sets,
            s.complete,
        ):
            samples.append(s)
            show(s, "")
        return s

    try:
        try:
            dep = read_deployment()
        except client.ApiException as err:
            if err.status != 404:
                raise
            print(
                _("no Deployment {name} in namespace {namespace}").format(
                    name=deployment, namespace=namespace
                )
            )
            return samples
        uid = str(dep["metadata"]["uid"])
        version = relist(uid)
        current = record(dep)
        while not current.complete:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                show(
                    current,
                    _("not complete after {seconds}s: see `kubectl rollout status`").format(
                        seconds=f"{timeout:g}"
                    ),
                )
                break
            window = max(1, min(WATCH_WINDOW, int(remaining)))
            watcher = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in watcher.stream(  # type: ignore[no-untyped-call]
                    apps.list_namespaced_replica_set,
                    namespace,
                    resource_version=version,
                    timeout_seconds=window,
                    _request_timeout=window + REQUEST_TIMEOUT,
                    deserialize=False,
                ):
                    obj = event["object"]
                    version = str(obj.get("metadata", {}).get("resourceVersion", version))
                    if event["type"] not in ("ADDED", "MODIFIED", "DELETED"):
                        continue
                    if not owned_by(obj, uid):
                        continue
                    name = obj["metadata"]["name"]
                    if event["type"] == "DELETED":
                        states.pop(name, None)
                    else:
                        states[name] = replica_set_state(obj)
                    current = record(read_deployment())
                    if current.complete or time.monotonic() >= deadline:
                        break
            except client.ApiException as err:
                if err.status != 410:  # 410 Gone: our resourceVersion expired, so list again
                    raise
                version = relist(uid)
            finally:
                watcher.stop()  # type: ignore[no-untyped-call]
            if not current.complete:  # the Deployment's status may trail its ReplicaSets
                current = record(read_deployment())
        return samples
    except (client.ApiException, urllib3.exceptions.HTTPError, OSError) as err:
        reason = getattr(err, "reason", None) or err.__class__.__name__
        raise KubelabError(
            _(
                "lost the cluster while watching deployment/{name} ({reason}):"
                " is it still up? (`kubelab cluster status`)"
            ).format(name=deployment, reason=reason)
        ) from err
    finally:
        api.close()  # type: ignore[no-untyped-call]
