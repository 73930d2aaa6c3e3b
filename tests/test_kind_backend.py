"""The kind substrate cannot run here (no Docker): check the files and commands it would use."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from kubelab import tools
from kubelab.cluster import kind
from kubelab.cluster.base import ClusterStatus
from kubelab.cluster.kind import KindBackend
from kubelab.errors import KubelabError


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


def test_demo_web_build_inspect_and_load_commands() -> None:
    assert kind.demo_web_image("v2") == "kubelab/demo-web:v2"
    assert kind.image_build_argv("/usr/bin/docker", "v2", "abc123") == [
        "/usr/bin/docker",
        "build",
        "--build-arg",
        "VERSION=v2",
        "--label",
        f"{kind.SOURCE_LABEL}=abc123",
        "--tag",
        "kubelab/demo-web:v2",
        str(kind.DEMO_WEB_DIR),
    ]
    assert kind.image_inspect_argv(Path("/usr/bin/docker"), "kubelab/demo-web:v1") == [
        "/usr/bin/docker",
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        "kubelab/demo-web:v1",
    ]
    assert kind.kind_load_argv(
        Path("/opt/kind"), "kubelab", ["kubelab/demo-web:v1", "kubelab/demo-web:v2"]
    ) == [
        "/opt/kind",
        "load",
        "docker-image",
        "kubelab/demo-web:v1",
        "kubelab/demo-web:v2",
        "--name",
        "kubelab",
    ]


def test_demo_web_dockerfile_matches_the_build() -> None:
    dockerfile = (kind.DEMO_WEB_DIR / "Dockerfile").read_text()
    assert "FROM golang:1.23 AS build" in dockerfile
    assert "FROM gcr.io/distroless/static-debian12:nonroot" in dockerfile
    assert "ARG VERSION=v1" in dockerfile
    assert "-X main.version=${VERSION}" in dockerfile
    assert "USER 65532:65532" in dockerfile
    assert "EXPOSE 8080" in dockerfile


@pytest.mark.parametrize(
    ("returncode", "output", "expected"),
    [
        (1, "", True),  # no such image
        (0, "null\n", True),  # an image without labels (built by hand)
        (0, "not json", True),
        (0, json.dumps({kind.SOURCE_LABEL: "old"}) + "\n", True),  # sources changed
        (0, json.dumps({"other": "x"}), True),
        (0, json.dumps({kind.SOURCE_LABEL: "cafe", "other": "x"}) + "\n", False),
    ],
    ids=["missing", "no-labels", "garbage", "stale", "unlabelled", "current"],
)
def test_rebuild_only_when_missing_or_sources_changed(
    returncode: int, output: str, expected: bool
) -> None:
    assert kind.needs_build(returncode, output, "cafe") is expected


def test_source_hash_follows_the_build_inputs_only(tmp_path: Path) -> None:
    app = tmp_path / "demo-web"
    app.mkdir()
    for name in ("go.mod", "main.go", "main_test.go", "Dockerfile", "README.md"):
        (app / name).write_bytes((kind.DEMO_WEB_DIR / name).read_bytes())
    first = kind.source_hash(app)
    assert first == kind.source_hash(app)  # stable
    assert first == kind.source_hash(kind.DEMO_WEB_DIR)  # names and bytes, not the folder
    (app / "README.md").write_text("docs only\n")
    (app / "demo-web").write_bytes(b"\x7fELF a local build")  # a stray binary
    assert kind.source_hash(app) == first
    (app / "main.go").write_text((app / "main.go").read_text() + "\n// edited\n")
    assert kind.source_hash(app) != first
    (app / "main.go").write_bytes((kind.DEMO_WEB_DIR / "main.go").read_bytes())
    (app / "Dockerfile").write_text("FROM scratch\n")
    assert kind.source_hash(app) != first


def test_source_hash_without_sources_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(KubelabError, match="no sources for the demo app"):
        kind.source_hash(tmp_path)


def test_load_demo_images_rebuilds_only_the_stale_one_then_loads_both(
    backend: KindBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = kind.source_hash()
    labels = {
        "kubelab/demo-web:v1": {kind.SOURCE_LABEL: digest},
        "kubelab/demo-web:v2": {kind.SOURCE_LABEL: "stale"},
    }
    calls: list[list[str]] = []

    def fake_run(argv: list[str | Path], **_: object) -> subprocess.CompletedProcess[str]:
        args = [str(a) for a in argv]
        calls.append(args)
        if args[1:3] == ["image", "inspect"]:
            return subprocess.CompletedProcess(args, 0, json.dumps(labels[args[-1]]) + "\n", "")
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(tools, "require", lambda name, why: Path(f"/opt/{name}"))
    monkeypatch.setattr(tools, "run", fake_run)
    backend.load_demo_images()
    verbs = [(Path(c[0]).name, c[1]) for c in calls]
    assert verbs == [
        ("docker", "image"),
        ("docker", "image"),
        ("docker", "build"),
        ("docker", "tag"),
        ("kind", "load"),
    ]
    assert calls[2] == kind.image_build_argv(Path("/opt/docker"), "v2", digest)
    # lab 08's seed runs :latest (IfNotPresent): it is v1 under a second name
    assert calls[3] == ["/opt/docker", "tag", "kubelab/demo-web:v1", "kubelab/demo-web:latest"]
    assert calls[4] == kind.kind_load_argv(
        "/opt/kind",
        "kubelab",
        ["kubelab/demo-web:v1", "kubelab/demo-web:v2", "kubelab/demo-web:latest"],
    )


def test_load_demo_images_builds_missing_images_and_reports_failures(
    backend: KindBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_run(
        argv: list[str | Path], *, check: bool = True, what: str | None = None, **_: object
    ) -> subprocess.CompletedProcess[str]:
        args = [str(a) for a in argv]
        if args[1:3] == ["image", "inspect"]:
            return subprocess.CompletedProcess(args, 1, "", "Error: No such image")
        raise KubelabError(f"{what} failed: no space left on device")

    monkeypatch.setattr(tools, "require", lambda name, why: Path(f"/opt/{name}"))
    monkeypatch.setattr(tools, "run", fake_run)
    with pytest.raises(KubelabError, match=r"^docker build kubelab/demo-web:v1 failed: no space"):
        backend.load_demo_images()


def test_up_loads_the_demo_images_after_the_add_ons(
    backend: KindBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[str] = []
    monkeypatch.setattr(kind, "docker_available", lambda: True)
    monkeypatch.setattr(KindBackend, "exists", lambda self: True)
    monkeypatch.setattr(
        KindBackend, "addon_steps", lambda self: [("add-on", ["/opt/kubectl", "apply"])]
    )
    monkeypatch.setattr(KindBackend, "load_demo_images", lambda self: steps.append("images"))
    monkeypatch.setattr(
        KindBackend, "status", lambda self: ClusterStatus("kind", self.cluster, running=True)
    )

    def fake_run(argv: list[str | Path], **_: object) -> subprocess.CompletedProcess[str]:
        steps.append(" ".join(Path(str(a)).name for a in argv[:2]))
        return subprocess.CompletedProcess([str(a) for a in argv], 0, "", "")

    monkeypatch.setattr(tools, "run", fake_run)
    assert backend.up().running
    assert steps == ["kind export", "kubectl apply", "images"]
