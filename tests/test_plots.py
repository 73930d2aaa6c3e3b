"""The pure part of kubelab.plots: reading HPA samples, drawing and summarising them."""

from __future__ import annotations

from typing import Any

from kubelab.plots import ScaleSample, figure, phases, png, render_line, scale_sample, summary


def hpa(utilization: int | None, desired: int, target: int = 60) -> dict[str, Any]:
    """Return HPA JSON as the API server sends it (autoscaling/v2)."""
    status: dict[str, Any] = {"desiredReplicas": desired, "currentReplicas": desired}
    if utilization is not None:
        status["currentMetrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": utilization}},
            }
        ]
    return {
        "spec": {
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": target},
                    },
                }
            ]
        },
        "status": status,
    }


def deployment(replicas: int, ready: int) -> dict[str, Any]:
    return {"status": {"replicas": replicas, "readyReplicas": ready}}


def test_scale_sample_reads_hpa_and_deployment() -> None:
    s = scale_sample(12.345, hpa(300, 6), deployment(4, 3), "load on")
    assert s == ScaleSample(12.3, 300, 60, 6, 4, 3, "load on")


def test_scale_sample_without_metrics_yet() -> None:
    # A fresh HPA has no currentMetrics (or a placeholder without a resource) and desired 0.
    fresh = hpa(None, 0)
    fresh["status"]["currentMetrics"] = [{"type": ""}]
    s = scale_sample(0, fresh, {})
    assert (s.utilization, s.desired, s.replicas, s.ready) == (None, 0, 0, 0)
    assert s.target == 60


SAMPLES = [
    ScaleSample(0, None, 60, 3, 3, 3, "load on"),
    ScaleSample(10, 300, 60, 6, 6, 6, "load on"),
    ScaleSample(20, 90, 60, 10, 10, 10, "load on"),
    ScaleSample(30, 10, 60, 10, 10, 10, "load off"),
    ScaleSample(40, 10, 60, 3, 3, 3, "load off"),
]


def test_phases_span_the_notes() -> None:
    assert phases(SAMPLES) == [(0, 30, "load on"), (30, 40, "load off")]
    assert phases([]) == []


def test_figure_plots_utilisation_target_and_replicas() -> None:
    fig = figure(SAMPLES, title="demo-web")
    cpu, reps = fig.axes
    lines = {line.get_label(): line for line in cpu.get_lines()}
    assert list(lines["CPU %"].get_ydata()) == [300, 90, 10, 10]  # no reading: no point
    assert list(lines["target 60%"].get_ydata()) == [60, 60]
    replicas = {line.get_label(): line for line in reps.get_lines()}
    assert list(replicas["desired"].get_ydata()) == [3, 6, 10, 10, 3]
    assert list(replicas["ready"].get_ydata()) == [3, 6, 10, 10, 3]
    assert cpu.get_ylim()[1] >= 300 and reps.get_ylim()[1] >= 10
    assert cpu.get_title() == "demo-web"
    assert png(fig).startswith(b"\x89PNG")


def test_figure_leaves_out_replicas_the_hpa_has_not_computed() -> None:
    fresh = [ScaleSample(0, None, 60, 0, 3, 3), *SAMPLES[1:]]
    _, reps = figure(fresh).axes
    desired = next(line for line in reps.get_lines() if line.get_label() == "desired")
    assert list(desired.get_xdata()) == [10, 20, 30, 40]


def test_figure_of_no_samples_still_draws() -> None:
    assert png(figure([])).startswith(b"\x89PNG")


def test_summary_and_line() -> None:
    assert summary(SAMPLES) == (
        "5 samples over 40 s; peak CPU 300% at 10 s; replicas 3 -> 10 (at 20 s) -> 3"
    )
    assert summary([]) == "no samples"
    line = render_line(SAMPLES[1])
    assert "cpu  300% / 60%" in line and "desired  6" in line and "(load on)" in line
