"""The pure part of kubelab.load: how much simulated usage, and the kind load Job's shape."""

from __future__ import annotations

from typing import Any

import pytest

from kubelab import load


@pytest.mark.parametrize(
    ("value", "expected"),
    [("250m", 250), ("1", 1000), ("0.5", 500), ("1.2345", 1235), (None, 0), ("lots", 0)],
)
def test_millicores(value: object, expected: int) -> None:
    assert load.millicores(value) == expected


def _spec(*cpus: str | None) -> dict[str, Any]:
    containers = []
    for i, cpu in enumerate(cpus):
        requests = {"cpu": cpu} if cpu else {}
        containers.append({"name": f"c{i}", "resources": {"requests": requests}})
    return {"containers": containers}


def test_cpu_request_adds_up_the_containers() -> None:
    assert load.cpu_request(_spec("200m", "100m", None)) == 300
    assert load.cpu_request({}) == 0


def test_usage_puts_the_pod_at_a_multiple_of_its_request() -> None:
    assert load.usage_per_container(_spec("200m"), 3) == "600m"
    # KWOK reports the value for each container: two containers share the pod's total.
    assert load.usage_per_container(_spec("200m", "100m"), 3) == "450m"
    assert load.usage_per_container(_spec(None), 3) == "1m"  # never an empty or zero quantity


def test_share_spreads_a_load_over_the_pods() -> None:
    assert load.share(900, 3) == "300m"
    assert load.share(1000, 3) == "334m"
    assert load.share(900, 0) == "900m"


def test_usage_patch_sets_and_removes_the_annotation() -> None:
    assert load.usage_patch("600m") == {"metadata": {"annotations": {load.USAGE_CPU: "600m"}}}
    # In a merge patch, null deletes the key.
    assert load.usage_patch(None)["metadata"]["annotations"] == {load.USAGE_CPU: None}


def test_load_job_calls_the_service_and_stops_by_itself() -> None:
    job = load.load_job("kubelab-load-abc", service="demo-web", port=80, workers=3, burn_ms=250)
    spec = job["spec"]
    assert spec["parallelism"] == spec["completions"] == 3
    assert spec["activeDeadlineSeconds"] == load.JOB_DEADLINE
    assert spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    script = container["command"][-1]
    assert "http://demo-web:80/burn?ms=250" in script
    assert script.startswith("while true;")
    # It passes the restricted Pod Security level, so a locked-down lab namespace admits it.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    labels = spec["template"]["metadata"]["labels"]
    assert labels == {load.LOAD_LABEL: "kubelab-load-abc"}
