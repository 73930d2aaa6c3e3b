"""The kind substrate cannot run here (no Docker): check the files and commands it would use."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from kubelab import tools
from kubelab.cluster import kind
from kubelab.cluster.kind import KindBackend


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> KindBackend:
    """A KindBackend whose cache is a temp dir and whose `kind` is a stand-in path."""
    monkeypatch.setenv("KUBELAB_CACHE", str(tmp_path))
    monkeypatch.setattr(KindBackend, "_kind", lambda self: Path("/opt/kind"))
    return KindBackend("kubelab")


def test_kind_config_has_one_control_plane_two_workers_and_gateway_ports() -> None:
    doc = yaml.safe_load(kind.KIND_CONFIG.read_text())
    roles = [n["role"] for n in doc["nodes"]]
    assert roles == ["control-plane", "worker", "worker"]
    mappings = doc["nodes"][0]["extraPortMappings"]
    assert {(m["containerPort"], m["hostPort"]) for m in mappings} == {(30080, 8080), (30443, 8443)}
    assert all(m["listenAddress"] == "127.0.0.1" for m in mappings)
    assert kind.kind_config_host_ports() == [8080, 8443]


def test_create_command(backend: KindBackend) -> None:
    argv = backend.create_argv(3)
    assert argv[:5] == ["/opt/kind", "create", "cluster", "--name", "kubelab"]
    assert argv[argv.index("--config") + 1] == str(kind.KIND_CONFIG)
    assert argv[argv.index("--kubeconfig") + 1] == str(backend.kubeconfig_path())


def test_other_node_counts_get_a_generated_config(backend: KindBackend) -> None:
    argv = backend.create_argv(5)
    config = Path(argv[argv.index("--config") + 1])
    doc = yaml.safe_load(config.read_text())
    assert [n["role"] for n in doc["nodes"]] == ["control-plane"] + ["worker"] * 4
    assert doc["nodes"][0]["extraPortMappings"]  # the gateway ports survive


def test_addons_in_order_with_insecure_kubelet_tls(backend: KindBackend) -> None:
    steps = backend.addon_steps()
    labels = [label for label, _ in steps]
    assert labels.index("Envoy Gateway") < labels.index("Gateway API CRDs (pin)")
    assert labels.index("Envoy Gateway ready") < labels.index(
        "StorageClass fast-ssd, GatewayClass kubelab"
    )
    patch_argv = dict(steps)["metrics-server --kubelet-insecure-tls"]
    patch = json.loads(patch_argv[patch_argv.index("-p") + 1])
    assert patch == [
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/args/-",
            "value": "--kubelet-insecure-tls",
        }
    ]
    for _, argv in steps:
        assert argv[1:3] == ["--kubeconfig", str(backend.kubeconfig_path())]


def test_kind_addons_kustomization_builds_offline() -> None:
    kubectl = tools.require("kubectl", "by this test")
    out = subprocess.run(
        [str(kubectl), "kustomize", str(kind.ADDONS)],
        capture_output=True,
        text=True,
        check=True,
    )
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout)}
    sc = docs[("StorageClass", "fast-ssd")]
    assert sc["provisioner"] == "rancher.io/local-path"
    gc = docs[("GatewayClass", "kubelab")]
    assert gc["spec"]["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"
    proxy = docs[("EnvoyProxy", "kubelab")]
    ports = proxy["spec"]["provider"]["kubernetes"]["envoyService"]["patch"]["value"]["spec"]
    assert {p["nodePort"] for p in ports["ports"]} == {30080, 30443}


def test_api_port_is_refused_for_kind(
    backend: KindBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kind, "docker_available", lambda: True)
    with pytest.raises(Exception, match="only supported with --backend sim"):
        backend.up(api_port=6443)
