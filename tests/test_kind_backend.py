"""The kind backend's files and recipes, checked without Docker (tests/kind/ runs the cluster)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from kubelab import tools
from kubelab.cluster import backend_for, kind, kind_build, kind_manifests, kind_pins
from kubelab.cluster.kind import KindBackend
from kubelab.errors import KubelabError


def test_kind_config_has_one_control_plane_two_workers_and_gateway_ports() -> None:
    doc = yaml.safe_load(kind.KIND_CONFIG.read_text())
    roles = [n["role"] for n in doc["nodes"]]
    assert roles == ["control-plane", "worker", "worker"]
    mappings = doc["nodes"][0]["extraPortMappings"]
    assert {(m["containerPort"], m["hostPort"]) for m in mappings} == {(30080, 8080), (30443, 8443)}
    assert all(m["listenAddress"] == "127.0.0.1" for m in mappings)
    assert kind.kind_config_host_ports() == [8080, 8443]


def test_cluster_config_uses_the_pinned_node_image_and_our_patches() -> None:
    doc = kind.cluster_config("c1", 3, "kubelab/kind-node:v1.36.3-abc")
    assert doc["name"] == "c1"
    assert [n["role"] for n in doc["nodes"]] == ["control-plane", "worker", "worker"]
    assert {n["image"] for n in doc["nodes"]} == {"kubelab/kind-node:v1.36.3-abc"}
    assert doc["networking"]["disableDefaultCNI"] is True
    patches = [yaml.safe_load(p) for p in doc["kubeadmConfigPatches"]]
    kubelet = next(p for p in patches if p["kind"] == "KubeletConfiguration")
    assert kubelet["failCgroupV1"] is False
    cluster = next(p for p in patches if p["kind"] == "ClusterConfiguration")
    assert cluster["etcd"]["local"]["imageTag"] == kind_build.ETCD_TAG
    assert f":{cluster['dns']['imageTag']}" in kind_build.IMAGES["coredns"]
    assert doc["nodes"][0]["extraPortMappings"]  # the Gateway's ports survive


def test_other_node_counts_and_unpublished_ports() -> None:
    doc = kind.cluster_config("c1", 5, "img", publish_ports=False)
    assert [n["role"] for n in doc["nodes"]] == ["control-plane"] + ["worker"] * 4
    assert all("extraPortMappings" not in n for n in doc["nodes"])


def test_kind_addons_kustomization_builds_offline() -> None:
    kubectl = tools.require("kubectl", "by this test")
    out = subprocess.run(
        [str(kubectl), "kustomize", str(kind.ADDONS)], capture_output=True, text=True, check=True
    )
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout)}
    assert docs[("StorageClass", "fast-ssd")]["provisioner"] == "rancher.io/local-path"
    gc = docs[("GatewayClass", "kubelab")]
    assert gc["spec"]["controllerName"] == "traefik.io/gateway-controller"
    assert docs[("ConfigMap", "kubelab-cluster")]["data"] == {"substrate": "kind"}


def test_no_manifest_comes_from_a_url() -> None:
    for path in [kind.ADDONS, kind.KIND_CONFIG.parent]:
        for f in path.rglob("*"):
            if f.is_file():
                text = f.read_text()
                assert "github.com" not in text and "releases/download" not in text, f
    for module in (kind, kind_manifests, kind_build):
        source = Path(str(module.__file__)).read_text()
        assert "releases/download" not in source


def test_api_port_is_refused_for_kind() -> None:
    with pytest.raises(KubelabError, match="only supported with --backend sim"):
        KindBackend("kubelab").up(api_port=6443)


def test_without_docker_up_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kind, "docker_available", lambda: False)
    with pytest.raises(KubelabError, match="needs a running Docker daemon") as err:
        KindBackend("kubelab").up()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("answers", "obtainable", "expected"),
    [(True, True, "kind"), (False, True, "sim"), (True, False, "sim")],
)
def test_auto_picks_kind_only_where_docker_answers_and_the_images_can_be_had(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answers: bool, obtainable: bool, expected: str
) -> None:
    monkeypatch.setenv("KUBELAB_DATA", str(tmp_path))
    import kubelab.cluster as cluster

    monkeypatch.setattr(cluster, "docker_available", lambda: answers)
    monkeypatch.setattr(kind_build, "obtainable", lambda: obtainable)
    assert backend_for("never-started", "auto").name == expected


# --- pins and keys -------------------------------------------------------------------------------


def test_every_component_is_pinned_with_checksums() -> None:
    for comp in kind_pins.COMPONENTS:
        gomod = (comp.module_dir / "go.mod").read_text()
        assert f"{comp.module} {comp.version}" in gomod, comp.name
        assert (comp.module_dir / "go.sum").stat().st_size > 0
    k8s = next(c for c in kind_pins.COMPONENTS if c.name == "kubernetes")
    assert set(k8s.binaries) >= {"kubelet", "kubeadm", "kubectl", "kube-proxy"}
    assert k8s.version == "v1.36.3"


def test_keys_follow_the_pins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first = kind_build.image_key()
    assert first == kind_build.image_key()
    pins = json.loads(kind_pins.DEBIAN_PINS.read_text())
    pins["postgresql"].append("postgresql-contrib")
    changed = tmp_path / "debian.json"
    changed.write_text(json.dumps(pins))
    monkeypatch.setattr(kind_pins, "DEBIAN_PINS", changed)
    assert kind_build.image_key() != first
    assert kind_build.node_image().startswith("kubelab/kind-node:v1.36.3-")


def test_image_names_are_what_kubeadm_and_the_labs_name() -> None:
    images = kind_build.IMAGES
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"):
        assert images[name] == f"registry.k8s.io/{name}:v1.36.3"
    assert images["pause"] == "registry.k8s.io/pause:3.10.2"
    tags = kind_build.image_tags()
    assert tags["demo-web-v1"] == ["kubelab/demo-web:v1", "kubelab/demo-web:latest"]
    from kubelab import load
    from kubelab.graders import lab03_hpa_pdb, lab06_rbac_policy

    assert lab06_rbac_policy.PROBE_IMAGE == load.LOAD_IMAGE == images["busybox"]
    # lab 03's eviction drill starts stand-ins: with no registry, only the node's pause will do
    assert images["pause"] == lab03_hpa_pdb.STAND_IN_IMAGE


# --- image archives ------------------------------------------------------------------------------


def test_write_image_is_a_docker_archive_with_matching_digests(tmp_path: Path) -> None:
    layer = kind_build.Layer().dir("/bin").file("/bin/hello", b"#!/bin/sh\necho hi\n", 0o755)
    image = kind_build.Image(["example.test/hello:v1", "example.test/hello:latest"], [layer])
    image.entrypoint = ["/bin/hello"]
    target = tmp_path / "hello.tar"
    kind_build.write_image(image, target, tmp_path)
    with tarfile.open(target) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        (entry,) = manifest
        assert entry["RepoTags"] == image.tags
        config_bytes = tar.extractfile(entry["Config"]).read()  # type: ignore[union-attr]
        assert entry["Config"].endswith(hashlib.sha256(config_bytes).hexdigest())
        config = json.loads(config_bytes)
        blob = tar.extractfile(entry["Layers"][0]).read()  # type: ignore[union-attr]
    assert entry["Layers"][0].endswith(hashlib.sha256(blob).hexdigest())
    raw = gzip.decompress(blob)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]
    assert config["config"]["Entrypoint"] == ["/bin/hello"]
    with tarfile.open(fileobj=__import__("io").BytesIO(raw)) as inner:
        hello = inner.getmember("bin/hello")
        assert hello.mode == 0o755 and hello.uid == 0 and hello.mtime == 0
    # Deterministic: the same inputs give the same bytes.
    again = tmp_path / "again.tar"
    kind_build.write_image(image, again, tmp_path)
    assert again.read_bytes() == target.read_bytes()


def test_containerd_config_names_our_pause_and_the_shim(tmp_path: Path) -> None:
    kind_comp = next(c for c in kind_pins.COMPONENTS if c.name == "kind")
    files = kind_build.module_source(kind_comp) / "images" / "base" / "files"
    text = kind_build._containerd_config(files).decode()
    assert f'sandbox_image = "{kind_build.IMAGES["pause"]}"' in text
    assert text.count('BinaryName = "/usr/local/sbin/runc-shim"') == 2


# --- add-on manifests, rendered from the pinned modules ------------------------------------------


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bins folder whose assets are the pinned modules' folders (from the Go module cache)."""
    if tools.find("go") is None:
        pytest.skip("needs Go to read the pinned modules")
    bins = tmp_path_factory.mktemp("bins")
    for comp in kind_pins.COMPONENTS:
        for source, name in comp.assets:
            (bins / "assets").mkdir(exist_ok=True)
            (bins / "assets" / name).symlink_to(kind_build.module_source(comp) / source)
    return bins


def test_kube_router_manifest_runs_our_image_without_a_host_kubeconfig(assets: Path) -> None:
    docs = list(yaml.safe_load_all(kind_manifests.kube_router(assets)))
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    spec = ds["spec"]["template"]["spec"]
    images = {c["image"] for c in spec["containers"] + spec["initContainers"]}
    assert images == {kind_build.IMAGES["kube-router"]}
    assert all(v["name"] != "kubeconfig" for v in spec["volumes"])
    assert "--run-firewall=true" in spec["containers"][0]["args"]


def test_local_path_is_the_default_standard_class_with_our_busybox(assets: Path) -> None:
    docs = list(yaml.safe_load_all(kind_manifests.local_path_storage(assets)))
    sc = next(d for d in docs if d["kind"] == "StorageClass")
    assert sc["metadata"]["name"] == "standard"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    assert "/var/local-path-provisioner" in cm["data"]["config.json"]
    assert kind_build.IMAGES["busybox"] in cm["data"]["helperPod.yaml"]


def test_traefik_and_metrics_server_manifests(assets: Path) -> None:
    docs = list(yaml.safe_load_all(kind_manifests.traefik(assets)))
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "traefik", "namespace": "traefik"}
    ]
    svc = next(d for d in docs if d["kind"] == "Service")
    assert {p["nodePort"] for p in svc["spec"]["ports"]} == {30080, 30443}
    ms = list(yaml.safe_load_all(kind_manifests.metrics_server(assets)))
    container = next(d for d in ms if d["kind"] == "Deployment")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["image"] == kind_build.IMAGES["metrics-server"]
    assert "--kubelet-insecure-tls" in container["args"]


# --- the runtime shim ----------------------------------------------------------------------------


def _missing_caps() -> bool:
    bnd = next(
        line.split()[1]
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("CapBnd:")
    )
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    return int(bnd, 16) != (1 << (last + 1)) - 1


def test_runc_shim_edits_the_bundle_only_where_a_capability_is_missing(tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        pytest.skip("the shim needs jq")
    shim = tmp_path / "runc-shim"
    shutil.copy(kind_build.SHIM, shim)
    # The shim execs the `runc` beside it: here one that prints the bundle's config.
    (tmp_path / "runc").write_text('#!/bin/sh\ncat "$BUNDLE/config.json"\n')
    os.chmod(tmp_path / "runc", 0o755)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    caps = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_SYS_ADMIN"]
    config = {"process": {"oomScoreAdj": -998, "capabilities": {"bounding": caps}}}
    (bundle / "config.json").write_text(json.dumps(config))
    out = subprocess.run(
        [str(shim), "--root", "/run/x", "create", "--bundle", str(bundle), "id1"],
        env={**os.environ, "BUNDLE": str(bundle)},
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(out.stdout)
    if _missing_caps():
        assert "CAP_SYS_RESOURCE" not in seen["process"]["capabilities"]["bounding"]
        assert "CAP_CHOWN" in seen["process"]["capabilities"]["bounding"]
        assert seen["process"]["oomScoreAdj"] == 0
    else:
        assert seen == config


def _limits(folder: Path, instances: int, watches: int) -> Path:
    folder.mkdir()
    (folder / "max_user_instances").write_text(f"{instances}\n")
    (folder / "max_user_watches").write_text(f"{watches}\n")
    return folder


def test_low_inotify_limits_are_raised_where_writable(tmp_path: Path) -> None:
    folder = _limits(tmp_path / "inotify", 128, 8192)  # the kernel's defaults
    assert kind.inotify_shortfall(folder) == {"max_user_instances": 128, "max_user_watches": 8192}
    kind.ensure_inotify(folder)
    assert kind.inotify_shortfall(folder) == {}
    assert (folder / "max_user_instances").read_text() == "512"
    high = _limits(tmp_path / "high", 8192, 1048576)  # higher limits are left as they are
    kind.ensure_inotify(high)
    assert (high / "max_user_watches").read_text() == "1048576\n"


def test_low_inotify_limits_that_cannot_be_raised_are_one_line_with_the_fix(
    tmp_path: Path,
) -> None:
    folder = _limits(tmp_path / "inotify", 128, 524288)
    # A limit this process may not change, even as root: a read-only sysctl holding a small
    # number (the kernel refuses writes to a 0444 sysctl whoever asks).
    fixed = Path("/proc/sys/kernel/cap_last_cap")
    if not fixed.is_file():
        pytest.skip("needs Linux's /proc/sys")
    (folder / "max_user_instances").unlink()
    (folder / "max_user_instances").symlink_to(fixed)
    with pytest.raises(KubelabError) as err:
        kind.ensure_inotify(folder)
    line = str(err.value)
    assert "\n" not in line and "too many open files" in line
    assert f"max_user_instances is {int(fixed.read_text())}" in line
    assert "sudo sysctl -w fs.inotify.max_user_instances=512" in line
    assert "max_user_watches" not in line.split("raise the limits")[1]  # only the low one
