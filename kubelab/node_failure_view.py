"""A node failure watched live: the node goes NotReady, is tainted, and its pods move elsewhere.

When a kubelet stops reporting, nothing happens to the pods at once. The node lifecycle
controller first marks the node NotReady and taints it `node.kubernetes.io/not-ready`
(`NoSchedule`: nothing new lands there), then adds the same taint with `NoExecute`; each pod on
the node is evicted once its toleration of that taint runs out (`tolerationSeconds`, 300 s
unless the pod says otherwise), and its controller makes a replacement on a healthy node.
`watch_node_failure` shows that sequence live and returns what it saw; `milestones` names the
moments and `figure` draws them.

Reading a sample out of the API's JSON, finding the milestones and drawing the figure are pure
functions, tested without a cluster; only `watch_node_failure` talks to the API server.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from kubelab import api, live
from kubelab.i18n import _

Json = Mapping[str, Any]

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
POLL_INTERVAL = 0.5  # seconds between reads: the whole sequence takes tens of seconds


@dataclass(frozen=True)
class NodeSample:
    """What the node and the app's pods showed `elapsed` seconds after watching began."""

    elapsed: float
    node_ready: str  # the node's Ready condition: "True", "False" or "Unknown"
    taints: tuple[str, ...]  # the node's taints as "key:Effect"
    on_node: int  # the app's pods bound to the node and not being deleted
    evicting: int  # the app's pods on the node that are being deleted
    ready_elsewhere: int  # the app's Ready pods on other nodes
    pending: int  # the app's pods not bound to any node yet


def node_ready(node: Json) -> str:
    """The status of a node's Ready condition ("Unknown" when it has none)."""
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status", "Unknown"))
    return "Unknown"


def taints_of(node: Json) -> tuple[str, ...]:
    """A node's taints, each as "key:Effect", in the order the node lists them."""
    return tuple(
        f"{t.get('key', '')}:{t.get('effect', '')}"
        for t in (node.get("spec") or {}).get("taints") or []
    )


def _ready(pod: Json) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def sample(elapsed: float, node: Json, pods: Iterable[Json]) -> NodeSample:
    """Summarise one read of the node and the app's pods."""
    name = (node.get("metadata") or {}).get("name")
    on_node = evicting = ready_elsewhere = pending = 0
    for pod in pods:
        where = (pod.get("spec") or {}).get("nodeName")
        deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
        if where == name:
            evicting += deleting
            on_node += not deleting
        elif not where:
            pending += not deleting
        elif not deleting and _ready(pod):
            ready_elsewhere += 1
    return NodeSample(
        elapsed=elapsed,
        node_ready=node_ready(node),
        taints=taints_of(node),
        on_node=on_node,
        evicting=evicting,
        ready_elsewhere=ready_elsewhere,
        pending=pending,
    )


def milestones(samples: Sequence[NodeSample], replicas: int) -> dict[str, float]:
    """The first moment each step of the sequence was seen, in the order they happen.

    Keys: "NotReady", "NoSchedule taint", "NoExecute taint", "first eviction" (a pod on the node
    being deleted, or fewer pods there than before), "all moved" (no pod left on the node and
    every replica Ready elsewhere). A step never seen is left out.
    """
    no_schedule = {f"{NOT_READY_TAINT}:NoSchedule", f"{UNREACHABLE_TAINT}:NoSchedule"}
    no_execute = {f"{NOT_READY_TAINT}:NoExecute", f"{UNREACHABLE_TAINT}:NoExecute"}
    found: dict[str, float] = {}
    most_on_node = 0
    for s in samples:
        seen = {
            "NotReady": s.node_ready != "True",
            "NoSchedule taint": bool(no_schedule & set(s.taints)),
            "NoExecute taint": bool(no_execute & set(s.taints)),
            "first eviction": s.evicting > 0 or s.on_node < most_on_node,
            "all moved": settled(s, replicas),
        }
        for step, now in seen.items():
            if now:
                found.setdefault(step, s.elapsed)
        most_on_node = max(most_on_node, s.on_node)
    order = ("NotReady", "NoSchedule taint", "NoExecute taint", "first eviction", "all moved")
    return {step: found[step] for step in order if step in found}


def settled(s: NodeSample, replicas: int) -> bool:
    """True once no pod of the app is left on the node and every replica is Ready elsewhere."""
    return s.on_node == 0 and s.evicting == 0 and s.ready_elsewhere >= replicas


def marks(found: Mapping[str, float], *, close: float = 1.0) -> list[tuple[float, str]]:
    """Milestones as (time, label), those less than `close` seconds apart sharing one label."""
    merged: list[tuple[float, str]] = []
    for step, at in found.items():
        if merged and at - merged[-1][0] < close:
            merged[-1] = (merged[-1][0], f"{merged[-1][1]}, {step}")
        else:
            merged.append((at, step))
    return merged


def figure(samples: Sequence[NodeSample], replicas: int, *, title: str = "") -> Figure:
    """Draw pods on the failed node and Ready pods elsewhere against time, milestones marked and
    the wait between the NoExecute taint and the first eviction (the pods' tolerationSeconds)
    shaded."""
    fig = Figure(figsize=(8, 3.8), layout="constrained")
    ax = fig.add_subplot()
    t = [s.elapsed for s in samples]
    end = (t[-1] * 1.1 + 1) if t else 1.0  # show the final state for a moment, not a last edge
    on_node = [s.on_node + s.evicting for s in samples]
    elsewhere = [s.ready_elsewhere for s in samples]
    ax.step(
        [*t, end],
        [*on_node, *on_node[-1:]],
        where="post",
        color="tab:red",
        linewidth=3,
        alpha=0.7,
        label="pods on the failed node",
    )
    ax.step(
        [*t, end],
        [*elsewhere, *elsewhere[-1:]],
        where="post",
        color="tab:green",
        linestyle="--",
        linewidth=2,
        label="Ready pods on healthy nodes",
    )
    found = milestones(samples, replicas)
    if "NoExecute taint" in found and "first eviction" in found:
        ax.axvspan(
            found["NoExecute taint"],
            found["first eviction"],
            color="tab:orange",
            alpha=0.15,
            label="tolerationSeconds running out",
        )
    for i, (at, label) in enumerate(marks(found)):
        ax.axvline(at, color="grey", linestyle=":", linewidth=1)
        ax.annotate(
            label,
            (at, replicas + 0.75 - 0.4 * (i % 2)),
            xytext=(3, 0),
            textcoords="offset points",
            fontsize="small",
            color="dimgrey",
            ha="right" if at > end * 0.7 else "left",
        )
    ax.set_xlim(0, end)
    ax.set_xlabel("seconds after the node's kubelet stopped")
    ax.set_ylabel("pods")
    ax.set_ylim(0, replicas + 1)
    ax.set_yticks(range(replicas + 1))
    fig.legend(loc="outside lower center", ncols=3, fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def render_line(s: NodeSample) -> str:
    """One terminal line for a sample."""
    taints = ", ".join(t for t in s.taints if t.startswith("node.kubernetes.io/")) or "none"
    return (
        f"{s.elapsed:5.1f}s  node Ready={s.node_ready:<7} taints: {taints:<40} "
        f"on node {s.on_node} (+{s.evicting} evicting)  ready elsewhere {s.ready_elsewhere}"
        f"  pending {s.pending}"
    )


def render_html(node: str, s: NodeSample, note: str = "") -> str:
    """A small table for a sample, replaced in place in a notebook."""
    colour = "#2e7d32" if s.node_ready == "True" else "#c62828"
    taints = "<br>".join(html.escape(t) for t in s.taints) or "none"
    rows = [
        ("node", f"{html.escape(node)} <b style='color:{colour}'>Ready={s.node_ready}</b>"),
        ("taints", taints),
        ("pods on the node", f"{s.on_node} running, {s.evicting} being evicted"),
        ("Ready pods elsewhere", str(s.ready_elsewhere)),
        ("pending pods", str(s.pending)),
    ]
    body = "".join(
        f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>"
        for k, v in rows
    )
    foot = f"<p><i>{html.escape(note)}</i></p>" if note else ""
    return f"<p>{s.elapsed:.0f} s</p><table>{body}</table>{foot}"


def watch_node_failure(
    node: str,
    namespace: str,
    selector: str,
    *,
    replicas: int,
    timeout: float = 120,
    kubeconfig: str | None = None,
    interval: float = POLL_INTERVAL,
) -> list[NodeSample]:
    """Show a node and the pods `selector` picks until every replica runs Ready elsewhere, or
    `timeout` passes; return the samples that differ from the one before."""
    client = api.Api(Path(kubeconfig) if kubeconfig else None)
    show = live.shower(partial(render_html, node), render_line)
    samples: list[NodeSample] = []
    start = time.monotonic()
    try:
        while True:
            found = client.get(api.NODES, node)
            if found is None:
                print(_("no node {name}").format(name=node))
                return samples
            pods = client.list(api.PODS, namespace, labels=selector)
            s = sample(time.monotonic() - start, found, pods)
            last = samples[-1] if samples else None
            if last is None or (
                last.node_ready,
                last.taints,
                last.on_node,
                last.evicting,
                last.ready_elsewhere,
                last.pending,
            ) != (s.node_ready, s.taints, s.on_node, s.evicting, s.ready_elsewhere, s.pending):
                samples.append(s)
                show(s, "")
            if settled(s, replicas):
                return samples
            if s.elapsed >= timeout:
                show(s, f"not settled after {timeout:g}s: see `kubectl describe node {node}`")
                return samples
            time.sleep(interval)
    finally:
        client.close()
