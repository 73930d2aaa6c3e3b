"""A live view of a StatefulSet's pods, one row per ordinal, for notebooks and terminals.

What sets a StatefulSet apart happens pod by pod: demo-db-1 is created only once demo-db-0 is
Ready, scale-down removes the highest ordinal first, and a partitioned update moves only the pods
at or above the partition to the new revision. `watch_statefulset` shows that as a table updated
in place (one line per change in a terminal) until the set has settled or a deadline passes, and
returns what it saw, so a notebook can assert the order from live data.

The decisions (which ordinal is this pod? has the set settled?) are pure functions over plain
JSON, tested without a cluster; only `watch_statefulset` talks to the API server.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from kubernetes import client

from kubelab import live
from kubelab.api import default_kubeconfig
from kubelab.i18n import _
from kubelab.kube import REQUEST_TIMEOUT, api_client
from kubelab.objects import owned_by
from kubelab.views import as_json

REVISION_LABEL = "controller-revision-hash"
POLL_INTERVAL = 0.25  # seconds between reads; ordered creation takes seconds, so this is smooth

Json = Mapping[str, Any]


@dataclass(frozen=True)
class PodState:
    """One pod of a StatefulSet at one moment."""

    name: str
    ordinal: int
    phase: str  # the pod's phase, or "Terminating" once it is being deleted
    ready: bool
    revision: str  # its controller-revision-hash label: the template revision it was made from
    claims: tuple[str, ...]  # the PersistentVolumeClaims it mounts
    uid: str


@dataclass(frozen=True)
class SetSample:
    """What a StatefulSet looked like `elapsed` seconds after watching began."""

    elapsed: float
    replicas: int
    ready_replicas: int
    current_revision: str
    update_revision: str
    partition: int
    pods: tuple[PodState, ...]  # by ordinal
    settled: bool


def _int(value: object, default: int = 0) -> int:
    """Return `value` as an int (the API omits counts that are zero)."""
    return int(value) if isinstance(value, (int, str)) and str(value).isdigit() else default


def ordinal(pod_name: str, set_name: str) -> int | None:
    """Return the ordinal of `<set>-<n>`, or None if the name is not one of the set's."""
    prefix = f"{set_name}-"
    rest = pod_name[len(prefix) :] if pod_name.startswith(prefix) else ""
    return int(rest) if rest.isdigit() else None


def pod_state(pod: object, set_name: str) -> PodState | None:
    """Build the state of one pod from its JSON or client model; None if not the set's."""
    data = as_json(pod)
    meta = data.get("metadata") or {}
    name = str(meta.get("name", ""))
    number = ordinal(name, set_name)
    if number is None:
        return None
    status = data.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    volumes = (data.get("spec") or {}).get("volumes") or []
    claims = tuple(
        str(v["persistentVolumeClaim"].get("claimName", ""))
        for v in volumes
        if v.get("persistentVolumeClaim")
    )
    return PodState(
        name=name,
        ordinal=number,
        phase="Terminating" if meta.get("deletionTimestamp") else str(status.get("phase", "")),
        ready=ready and not meta.get("deletionTimestamp"),
        revision=str((meta.get("labels") or {}).get(REVISION_LABEL, "")),
        claims=claims,
        uid=str(meta.get("uid", "")),
    )


def partition_of(statefulset: object) -> int:
    """Return the rolling-update partition (0 when unset)."""
    strategy = (as_json(statefulset).get("spec") or {}).get("updateStrategy") or {}
    return _int((strategy.get("rollingUpdate") or {}).get("partition"))


def settled(statefulset: object, pods: Iterable[PodState]) -> bool:
    """Tell whether the set is at rest: spec observed, exactly ordinals 0..replicas-1 present
    and Ready, every pod at or above the partition on the update revision, and (partition 0)
    the current revision caught up with it."""
    sts = as_json(statefulset)
    meta, spec, status = sts.get("metadata") or {}, sts.get("spec") or {}, sts.get("status") or {}
    if _int(status.get("observedGeneration")) < _int(meta.get("generation"), 1):
        return False
    replicas = _int(spec.get("replicas"), 1)
    by_ordinal = {p.ordinal: p for p in pods}
    if sorted(by_ordinal) != list(range(replicas)):
        return False
    if not all(p.ready and p.phase == "Running" for p in by_ordinal.values()):
        return False
    if _int(status.get("readyReplicas")) != replicas:
        return False
    if ((spec.get("updateStrategy") or {}).get("type") or "RollingUpdate") != "RollingUpdate":
        return True  # OnDelete: pods change revision only when someone deletes them
    update, partition = status.get("updateRevision"), partition_of(sts)
    if partition == 0 and status.get("currentRevision") != update:
        return False  # a complete update is done once the controller says so, too
    return all(p.revision == update for o, p in by_ordinal.items() if o >= partition)


def sample(elapsed: float, statefulset: object, pods: Iterable[PodState]) -> SetSample:
    """Build one sample from the StatefulSet and the states of its pods."""
    sts = as_json(statefulset)
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    ordered = tuple(sorted(pods, key=lambda p: p.ordinal))
    return SetSample(
        elapsed=round(elapsed, 2),
        replicas=_int(spec.get("replicas"), 1),
        ready_replicas=_int(status.get("readyReplicas")),
        current_revision=str(status.get("currentRevision", "")),
        update_revision=str(status.get("updateRevision", "")),
        partition=partition_of(sts),
        pods=ordered,
        settled=settled(sts, ordered),
    )


def short(revision: str) -> str:
    """Return the hash part of a revision name ("demo-db-5d9c8b7f4" -> "5d9c8b7f4")."""
    return revision.rsplit("-", 1)[-1]


def role(s: SetSample, pod: PodState) -> str:
    """Tell whether a pod runs the update revision ("new") or the current one ("old")."""
    if s.update_revision and s.update_revision != s.current_revision:
        if pod.revision == s.update_revision:
            return "new"
        return "old" if pod.revision == s.current_revision else ""
    return ""


def _role_note(s: SetSample, pod: PodState) -> str:
    """Return " (new)" or " (old)" in the reader's language, or "" when no update is under way."""
    which = role(s, pod)
    if not which:
        return ""
    return _(" (new)") if which == "new" else _(" (old)")


def render_html(name: str, s: SetSample, note: str = "") -> str:
    """Return an HTML table of one sample: one row per pod, by ordinal."""
    rows = []
    for p in s.pods:
        cells = [
            str(p.ordinal),
            html.escape(p.name),
            html.escape(p.phase),
            _("yes") if p.ready else _("no"),
            html.escape(short(p.revision)) + _role_note(s, p),
            html.escape(", ".join(p.claims)),
        ]
        tds = "".join(f"<td>{c}</td>" for c in cells)
        rows.append(f"<tr>{tds}</tr>")
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            _("ordinal"),
            _("pod"),
            _("phase"),
            _("ready"),
            _("revision"),
            _("claims"),
        )
    )
    state = _("settled") if s.settled else _("changing")
    caption = _(
        "StatefulSet {name}: {state} at {seconds}s · {ready}/{replicas} ready · partition"
        " {partition}"
    ).format(
        name=html.escape(name),
        state=state,
        seconds=f"{s.elapsed:.1f}",
        ready=s.ready_replicas,
        replicas=s.replicas,
        partition=s.partition,
    )
    if note:
        caption += f" · {html.escape(note)}"
    return (
        f"<table><caption style='text-align:left'>{caption}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render_line(s: SetSample) -> str:
    """Return one terminal line for a sample: elapsed seconds, then each pod's state."""
    parts = [
        f"{p.name} {p.phase}{' Ready' if p.ready else ''} "
        + _("rev {revision}").format(revision=short(p.revision))
        + _role_note(s, p)
        for p in s.pods
    ]
    tail = " | " + _("settled") if s.settled else ""
    ready = _("{ready}/{replicas} ready").format(ready=s.ready_replicas, replicas=s.replicas)
    return f"{s.elapsed:5.1f}s  {ready}  " + " | ".join(parts) + tail


def first_seen(samples: Sequence[SetSample]) -> dict[str, float]:
    """Return when each pod name first appeared, in seconds since the start, earliest first."""
    seen: dict[str, float] = {}
    for s in samples:
        for p in s.pods:
            seen.setdefault(p.name, s.elapsed)
    return seen


def first_ready(samples: Sequence[SetSample]) -> dict[str, float]:
    """Return when each pod was first seen Ready, in seconds since the start."""
    ready: dict[str, float] = {}
    for s in samples:
        for p in s.pods:
            if p.ready:
                ready.setdefault(p.name, s.elapsed)
    return ready


def watch_statefulset(
    namespace: str,
    name: str,
    *,
    timeout: float = 90,
    kubeconfig: str | None = None,
    interval: float = POLL_INTERVAL,
) -> list[SetSample]:
    """Show a StatefulSet's pods live until the set has settled or `timeout` passes; return
    the samples that differ from the one before."""
    api = api_client(Path(kubeconfig or default_kubeconfig()).expanduser())
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    start = time.monotonic()
    deadline = start + timeout
    show = live.shower(partial(render_html, name), render_line)
    samples: list[SetSample] = []

    def take() -> SetSample | None:
        """Read the set and its pods; keep and show the sample when something changed."""
        try:
            sts = as_json(
                apps.read_namespaced_stateful_set(name, namespace, _request_timeout=REQUEST_TIMEOUT)
            )
        except client.ApiException as err:
            if err.status == 404:
                return None
            raise
        labels = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        listed = as_json(
            core.list_namespaced_pod(
                namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
            )
        )
        uid = (sts.get("metadata") or {}).get("uid")
        states = []
        for pod in listed.get("items") or []:
            state = pod_state(pod, name)
            if state is not None and owned_by(pod, str(uid)):
                states.append(state)
        s = sample(time.monotonic() - start, sts, states)
        last = samples[-1] if samples else None
        if last is None or (last.pods, last.settled, last.update_revision, last.partition) != (
            s.pods,
            s.settled,
            s.update_revision,
            s.partition,
        ):
            samples.append(s)
            show(s, "")
        return s

    try:
        current = take()
        if current is None:
            print(
                _("no StatefulSet {name} in namespace {namespace}").format(
                    name=name, namespace=namespace
                )
            )
            return samples
        while not current.settled:
            if time.monotonic() >= deadline:
                show(
                    current,
                    _("not settled after {seconds}s: see `kubectl describe statefulset`").format(
                        seconds=f"{timeout:g}"
                    ),
                )
                break
            time.sleep(interval)
            current = take() or current
        return samples
    finally:
        api.close()  # type: ignore[no-untyped-call]
