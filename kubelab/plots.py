"""CPU utilisation and replica count over time, sampled live from an HPA and its Deployment.

The article's third figure plots how an autoscaler reacts to load: utilisation climbs past the
target, replicas follow a sync or two later, utilisation falls back as the load spreads, and the
replicas stay up for the stabilization window after the load is gone. `watch_autoscaling` draws
that figure from the live cluster, redrawn in place in a notebook (one line per sample in a
terminal), and returns the samples.

Reading a sample out of the API's JSON, drawing the figure and summarising a run are pure
functions, tested without a cluster; only `watch_autoscaling` talks to the API server.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from kubelab import api, live
from kubelab.i18n import _

Json = Mapping[str, Any]


@dataclass(frozen=True)
class ScaleSample:
    """What an HPA and its Deployment showed `elapsed` seconds after watching began."""

    elapsed: float
    utilization: int | None  # average CPU use as % of the request, as the HPA last saw it
    target: int | None  # the HPA's utilisation target (%)
    desired: int  # replicas the HPA asks for
    replicas: int  # pods the Deployment has
    ready: int  # of which Ready
    note: str = ""  # what the caller was doing (e.g. "load on")


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _cpu_metric(metrics: object) -> Json:
    """Return the `resource` block of the CPU metric in a list of HPA metrics (or {})."""
    for metric in metrics if isinstance(metrics, list) else []:
        res = metric.get("resource") or {}
        if metric.get("type") == "Resource" and res.get("name") == "cpu":
            return dict(res)
    return {}


def scale_sample(elapsed: float, hpa: Json, deployment: Json, note: str = "") -> ScaleSample:
    """Build one sample from the HPA's and the Deployment's JSON."""
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    current = (_cpu_metric(status.get("currentMetrics")).get("current") or {}).get(
        "averageUtilization"
    )
    target = (_cpu_metric(spec.get("metrics")).get("target") or {}).get("averageUtilization")
    dep_status = deployment.get("status") or {}
    return ScaleSample(
        elapsed=round(elapsed, 1),
        utilization=current if isinstance(current, int) else None,
        target=target if isinstance(target, int) else None,
        desired=_int(status.get("desiredReplicas")),
        replicas=_int(dep_status.get("replicas")),
        ready=_int(dep_status.get("readyReplicas")),
        note=note,
    )


def phases(samples: Sequence[ScaleSample]) -> list[tuple[float, float, str]]:
    """Return the spans (start, end, note) over which the note stayed the same."""
    spans: list[tuple[float, float, str]] = []
    for s in samples:
        if spans and spans[-1][2] == s.note:
            spans[-1] = (spans[-1][0], s.elapsed, s.note)
        else:
            if spans:  # close the previous span where this one begins
                spans[-1] = (spans[-1][0], s.elapsed, spans[-1][2])
            spans.append((s.elapsed, s.elapsed, s.note))
    return spans


def figure(samples: Sequence[ScaleSample], *, title: str = "", shade: str = "load on") -> Figure:
    """Draw utilisation (left axis, with the target) and replicas (right axis) against time.

    Spans whose note equals `shade` are shaded, so the load is visible behind the curves.
    """
    fig = Figure(figsize=(8, 3.8), layout="constrained")
    cpu = fig.add_subplot()
    reps = cpu.twinx()
    t = [s.elapsed for s in samples]
    seen = [(s.elapsed, s.utilization) for s in samples if s.utilization is not None]
    cpu.plot([x for x, _ in seen], [y for _, y in seen], color="tab:red", marker=".", label="CPU %")
    target = next((s.target for s in reversed(samples) if s.target is not None), None)
    if target is not None:
        cpu.axhline(target, color="tab:red", linestyle=":", label=f"target {target}%")
    asked = [(s.elapsed, s.desired) for s in samples if s.desired > 0]  # 0: not computed yet
    reps.step(
        [x for x, _ in asked],
        [y for _, y in asked],
        where="post",
        color="tab:blue",
        linewidth=4,
        alpha=0.5,
        label="desired",
    )
    reps.step(
        t,
        [s.ready for s in samples],
        where="post",
        color="tab:green",
        linestyle="--",
        label="ready",
    )
    for start, end, note in phases(samples):
        if note == shade and end > start:
            cpu.axvspan(start, end, color="tab:orange", alpha=0.12, label=shade)
    cpu.set_xlabel("seconds")
    cpu.set_ylabel("CPU utilisation (% of request)", color="tab:red")
    cpu.set_ylim(bottom=0, top=max([target or 0, *[y for _, y in seen], 100]) * 1.15)
    reps.set_ylabel("replicas", color="tab:blue")
    top = max([s.desired for s in samples] + [s.ready for s in samples] + [1])
    reps.set_ylim(0, top + 1)
    handles = [h for ax in (cpu, reps) for h in ax.get_legend_handles_labels()[0]]
    fig.legend(handles=handles, loc="outside lower center", ncols=6, fontsize="small")
    if title:
        cpu.set_title(title)
    return fig


def png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes (no pyplot, no GUI backend)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def render_line(s: ScaleSample) -> str:
    """Return one terminal line for a sample."""
    util = f"{s.utilization}%" if s.utilization is not None else "?"
    note = f"  ({s.note})" if s.note else ""
    return (
        f"{s.elapsed:5.1f}s  "
        + _("cpu {util} / {target}%  desired {desired}  ready {ready}/{replicas}").format(
            util=f"{util:>5}",
            target=s.target,
            desired=f"{s.desired:2d}",
            ready=f"{s.ready:2d}",
            replicas=f"{s.replicas:<2d}",
        )
        + note
    )


def summary(samples: Sequence[ScaleSample]) -> str:
    """Say in one line what the run showed: peak utilisation, replicas from first to most."""
    if not samples:
        return _("no samples")
    seen = [s for s in samples if s.utilization is not None]
    peak = max(seen, key=lambda s: s.utilization or 0) if seen else None
    most = max(samples, key=lambda s: s.desired)
    parts = [
        _("{n} samples over {seconds} s").format(
            n=len(samples), seconds=f"{samples[-1].elapsed:.0f}"
        ),
        _("peak CPU {percent}% at {seconds} s").format(
            percent=peak.utilization, seconds=f"{peak.elapsed:.0f}"
        )
        if peak
        else _("no CPU reading"),
        _("replicas {first} -> {most} (at {seconds} s) -> {last}").format(
            first=samples[0].desired or samples[0].replicas,
            most=most.desired,
            seconds=f"{most.elapsed:.0f}",
            last=samples[-1].desired,
        ),
    ]
    return _("; ").join(parts)


def watch_autoscaling(
    namespace: str,
    hpa: str,
    *,
    seconds: float,
    interval: float = 2.0,
    on_tick: Callable[[float], str] | None = None,
    kubeconfig: str | None = None,
    title: str = "",
) -> list[ScaleSample]:
    """Sample an HPA and its Deployment every `interval` seconds for `seconds`, showing them live.

    `on_tick(elapsed)` runs before each sample (to start or stop load, say) and returns the note
    recorded with it. In a notebook the figure is redrawn in place and the last one stays; in a
    terminal each sample is a line.
    """
    client = api.Api(Path(kubeconfig) if kubeconfig else None)
    handle: Any = None
    if live.in_notebook():
        from IPython.display import Image, display

        handle = display(Image(data=png(figure([], title=title))), display_id=True)  # type: ignore[no-untyped-call]
    samples: list[ScaleSample] = []
    start = time.monotonic()
    try:
        while True:
            elapsed = time.monotonic() - start
            note = on_tick(elapsed) if on_tick else ""
            found = client.get(api.HPAS, hpa, namespace)
            if found is None:
                print(
                    _("no HorizontalPodAutoscaler {name} in namespace {namespace}").format(
                        name=hpa, namespace=namespace
                    )
                )
                return samples
            ref = (found.get("spec") or {}).get("scaleTargetRef") or {}
            dep = client.get(api.DEPLOYMENTS, str(ref.get("name", "")), namespace) or {}
            s = scale_sample(elapsed, found, dep, note)
            samples.append(s)
            if handle is not None:
                from IPython.display import Image

                handle.update(Image(data=png(figure(samples, title=title))))  # type: ignore[no-untyped-call]
            else:
                print(render_line(s), flush=True)
            left = seconds - (time.monotonic() - start)
            if left <= 0:
                return samples
            time.sleep(min(interval, left))  # a fixed sampling period, bounded by `seconds`
    finally:
        client.close()
