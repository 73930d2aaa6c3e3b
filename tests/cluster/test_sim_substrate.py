"""The sim substrate itself: pinned binaries, no downloads, loopback only, nodes, lifecycle."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kubelab import api, procs
from kubelab.cluster import sim_build
from kubelab.cluster.sim import SimBackend
from kubelab.wait import until
from tests.conftest import TEST_CLUSTER, Kubectl

EXPECTED_VERSIONS = {
    "kube-apiserver": "Kubernetes v1.36.3",
    "kube-controller-manager": "Kubernetes v1.36.3",
    "kube-scheduler": "Kubernetes v1.36.3",
    "etcd": "etcd Version: 3.6.16",
    "kwokctl": "0.8.0",
    "metrics-server": "v0.8.0",
}


@pytest.mark.parametrize("binary", sorted(EXPECTED_VERSIONS))
def test_binaries_report_their_pinned_version(sim: SimBackend, binary: str) -> None:
    bin_dir = sim_build.ensure_built()
    out = subprocess.run(
        [str(bin_dir / binary), "--version"], capture_output=True, text=True, check=False
    )
    assert EXPECTED_VERSIONS[binary] in out.stdout + out.stderr


def test_no_artifact_comes_from_the_internet(sim: SimBackend) -> None:
    listed = sim.kwokctl("get", "artifacts", "--runtime", "binary").split()
    assert listed, "kwokctl listed no artifacts at all"
    remote = [a for a in listed if "://" in a]
    assert remote == [], f"these would be downloaded: {remote}"
    bin_dir = sim_build.ensure_built()
    for binary in ("kube-apiserver", "etcd", "kwok", "metrics-server"):
        assert str(bin_dir / binary) in listed


def test_every_component_listens_on_loopback_only(sim: SimBackend) -> None:
    pids = list(sim.pids().values())
    assert len(pids) == 6, sim.pids()  # etcd, apiserver, kcm, scheduler, kwok, metrics-server
    sockets = procs.listening(pids)
    assert sockets, "no listening sockets found"
    exposed = [(h, p) for h, p in sockets if h not in ("127.0.0.1", "::1")]
    assert exposed == []


def test_three_ready_nodes_carry_the_metrics_annotation(kubectl: Kubectl) -> None:
    # Lab 09's drill node (NotReady on purpose) is the lab's, not the cluster's.
    out = kubectl("get", "nodes", "-l", "!kubelab.dev/drill", "-o", "json").stdout
    nodes = json.loads(out)["items"]
    assert len(nodes) == 3
    for node in nodes:
        name = node["metadata"]["name"]
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", name
        path = node["metadata"]["annotations"]["metrics.k8s.io/resource-metrics-path"]
        assert path == f"/metrics/nodes/{name}/metrics/resource"
        assert node["status"]["allocatable"]["cpu"] == "8"


def test_second_up_reuses_the_running_cluster(sim: SimBackend) -> None:
    before = sim.pids()
    status = sim.up(nodes=3)
    assert status.running and status.nodes_ready == 3
    assert sim.pids() == before


def test_lifecycle_restart_keeps_state_and_down_frees_everything() -> None:
    """After a reboot `up` restarts the processes with the data intact; `down` cleans up."""
    other = SimBackend(f"{TEST_CLUSTER}-lifecycle")
    if other.exists():
        other.down()
    other.up(nodes=1)
    kubectl = Kubectl(other.kubeconfig_path())
    kubectl("create", "configmap", "survivor", "--from-literal=k=v")

    for pid in other.pids().values():
        os.kill(pid, signal.SIGKILL)
    until(
        lambda: [p for p in other.pids().values() if procs.alive(p)],
        lambda left: not left,
        timeout=10,
        what="killed processes gone",
    )
    assert not other.healthy()
    status = other.up(nodes=1)
    assert status.running and status.nodes_ready == 1
    assert kubectl("get", "configmap", "survivor", "-o", "jsonpath={.data.k}").stdout == "v"

    pids = other.pids()
    ports = set(other.ports().values())
    assert pids and ports and all(procs.alive(p) for p in pids.values())
    assert ports <= procs.listening_ports()
    other.down()
    assert [n for n, p in pids.items() if procs.alive(p)] == []
    # the kernel may take a moment to drop closed listeners
    still = until(
        lambda: ports & procs.listening_ports(), lambda p: not p, timeout=10, raise_on_timeout=False
    )
    assert still == set()
    assert not other.exists()


def test_cluster_starts_with_no_network_but_loopback(tmp_path: Path) -> None:
    """Create, use and delete a cluster inside a network namespace that has only loopback.

    The strongest proof that nothing is downloaded at run time: there is nowhere to download from.
    """
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if not (unshare and ip):
        pytest.skip("needs unshare and ip (util-linux, iproute2)")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot create a network namespace here (needs root or user namespaces)")
    name = "kubelab-offline"
    cli = f"{shlex.quote(sys.executable)} -m kubelab cluster --name {name}"
    script = (
        f"{ip} link set lo up && {cli} up --backend sim --nodes 1 && {cli} status && {cli} down"
    )
    proc = subprocess.run(
        [unshare, "-n", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0 and SimBackend(name).exists():
        SimBackend(name).down()
    assert proc.returncode == 0, proc.stderr
    assert "1/1 Ready" in proc.stdout


def test_the_shared_fixtures_reach_this_workers_sim_cluster(
    sim: SimBackend, client: api.Api, kubectl: Kubectl
) -> None:
    """Even on the worker that ran the kind tests first (tests/kind overrides `kubeconfig`)."""
    cm = client.get(api.CONFIGMAPS, "kubelab-cluster", "kube-public")
    assert cm is not None and cm["data"]["substrate"] == "sim"
    assert kubectl.kubeconfig == sim.kubeconfig_path()
