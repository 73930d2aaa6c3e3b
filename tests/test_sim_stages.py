"""The KWOK Stages kubelab gives the sim cluster: KWOK's defaults plus the fault drills' faults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kubelab.cluster import sim

DEFAULTS, FAULTS = sim.STAGES
KWOK_DEFAULTS = {
    "node-initialize",
    "node-heartbeat-with-lease",
    "pod-ready",
    "pod-complete",
    "pod-delete",
}


def stages(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_the_defaults_are_kwokctls_own_set() -> None:
    assert {s["metadata"]["name"] for s in stages(DEFAULTS)} == KWOK_DEFAULTS


def test_every_pod_fault_stage_uses_the_same_fault_expression() -> None:
    pod_stages = [s for s in stages(FAULTS) if s["spec"]["resourceRef"]["kind"] == "Pod"]
    assert len(pod_stages) == 6
    exprs = set()
    for stage in pod_stages:
        keys = [e["key"] for e in stage["spec"]["selector"]["matchExpressions"]]
        fault = [k for k in keys if k.startswith("(")]
        assert len(fault) == 1, stage["metadata"]["name"]
        exprs.add(fault[0])
    assert len(exprs) == 1, "the copies of the fault expression differ"


def test_fault_stages_outweigh_the_defaults_and_never_hold_up_a_deletion() -> None:
    for stage in stages(FAULTS):
        name = stage["metadata"]["name"]
        assert name.startswith("kubelab-fault-")
        assert stage["spec"]["weight"] > 0, name  # defaults have none: a fault always wins
        if stage["spec"]["resourceRef"]["kind"] == "Pod":
            first = stage["spec"]["selector"]["matchExpressions"][0]
            assert first == {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}


def test_the_kwokctl_config_carries_every_stage(tmp_path: Path) -> None:
    backend = sim.SimBackend("unit", workdir=tmp_path)
    docs = [d for d in yaml.safe_load_all(backend.write_config(tmp_path / "bin").read_text()) if d]
    assert docs[0]["kind"] == "KwokctlConfiguration"
    names = {d["metadata"]["name"] for d in docs[1:] if d["kind"] == "Stage"}
    assert names == KWOK_DEFAULTS | {s["metadata"]["name"] for s in stages(FAULTS)}
    assert len(docs) == 1 + len(names)
