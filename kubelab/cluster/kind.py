"""The kind cluster, for learners with Docker: real containers, real traffic.

Kept thin on purpose: kind creates the cluster; kubelab adds metrics-server (with
``--kubelet-insecure-tls``, since kind's kubelet certificates have no IP SANs), the same Gateway
API CRDs as the sim cluster, Envoy Gateway as the GatewayClass ``kubelab``, and the ``fast-ssd``
StorageClass. It then builds the course's demo app (``apps/demo-web``) as
``kubelab/demo-web:v1`` and ``:v2`` and loads both into the cluster, so labs never need a
registry. Every command is built by a function that tests can inspect without Docker.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import yaml

from kubelab import kube, paths, procs, progress, tools
from kubelab.cluster import state
from kubelab.cluster.base import DEFAULT_NODES, ClusterStatus
from kubelab.cluster.gateway_crds import VENDORED
from kubelab.errors import KubelabError

KIND_CONFIG = paths.MANIFESTS_DIR / "kind" / "kind-config.yaml"
GATEWAY_CRDS = VENDORED
ADDONS = paths.MANIFESTS_DIR / "cluster" / "kind"
METRICS_SERVER_URL = (
    "https://github.com/kubernetes-sigs/metrics-server/releases/download/v0.8.0/components.yaml"
)
ENVOY_GATEWAY_URL = "https://github.com/envoyproxy/gateway/releases/download/v1.9.1/install.yaml"

DEMO_WEB_DIR = paths.APPS_DIR / "demo-web"
DEMO_WEB_REPO = "kubelab/demo-web"
DEMO_WEB_VERSIONS = ("v1", "v2")
# Lab 08 seeds `kubelab/demo-web:latest` (the anti-pattern to fix) with imagePullPolicy
# IfNotPresent, so the nodes hold that tag too: a second name for v1.
DEMO_WEB_LATEST_OF = "v1"
# Image label holding the hash of the sources an image was built from.
SOURCE_LABEL = "dev.kubelab.demo-web.source"
# What the Dockerfile copies, plus the Dockerfile itself: a change to any of these means a rebuild.
DEMO_WEB_SOURCES = ("go.mod", "go.sum", "*.go", "Dockerfile")


def docker_available() -> bool:
    """Tell whether a Docker daemon answers (not just whether the client is installed)."""
    docker = tools.find("docker")
    if docker is None:
        return False
    try:
        proc = tools.run(
            [docker, "info", "--format", "{{.ServerVersion}}"], timeout=10, check=False
        )
    except KubelabError:
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def kind_config_host_ports(config: Path = KIND_CONFIG) -> list[int]:
    """Return the host ports the kind config maps, which must be free before `up`."""
    doc = yaml.safe_load(config.read_text())
    return [
        int(m["hostPort"])
        for node in doc.get("nodes", [])
        for m in node.get("extraPortMappings", []) or []
    ]


def demo_web_image(version: str) -> str:
    """Return the image reference of one demo-web version, e.g. ``kubelab/demo-web:v1``."""
    return f"{DEMO_WEB_REPO}:{version}"


def source_hash(app_dir: Path = DEMO_WEB_DIR) -> str:
    """Hash the names and contents of the files an app's image is built from."""
    files = sorted({f for pat in DEMO_WEB_SOURCES for f in app_dir.glob(pat) if f.is_file()})
    if not files:
        raise KubelabError(f"no sources for the demo app in {app_dir}")
    h = hashlib.sha256()
    for f in files:
        data = f.read_bytes()
        h.update(f"{f.name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:16]


def image_inspect_argv(docker: Path | str, image: str) -> list[str]:
    """Return the `docker image inspect` command that prints an image's labels as JSON."""
    return [str(docker), "image", "inspect", "--format", "{{json .Config.Labels}}", image]


def image_build_argv(
    docker: Path | str, version: str, digest: str, app_dir: Path = DEMO_WEB_DIR
) -> list[str]:
    """Return the `docker build` command for one demo-web version, labelled with `digest`."""
    return [
        str(docker),
        "build",
        "--build-arg",
        f"VERSION={version}",
        "--label",
        f"{SOURCE_LABEL}={digest}",
        "--tag",
        demo_web_image(version),
        str(app_dir),
    ]


def image_tag_argv(docker: Path | str, source: str, target: str) -> list[str]:
    """Return the `docker tag` command that gives an image a second name."""
    return [str(docker), "tag", source, target]


def kind_load_argv(kind: Path | str, cluster: str, images: Sequence[str]) -> list[str]:
    """Return the `kind load docker-image` command that copies images onto every node."""
    return [str(kind), "load", "docker-image", *images, "--name", cluster]


def needs_build(returncode: int, inspect_output: str, digest: str) -> bool:
    """Decide from `docker image inspect` output whether an image must be (re)built.

    Build when the image is missing (non-zero exit), carries no readable labels, or was built
    from other sources than `digest`.
    """
    if returncode != 0:
        return True
    try:
        labels = json.loads(inspect_output.strip() or "null")
    except json.JSONDecodeError:
        return True
    return not isinstance(labels, dict) or labels.get(SOURCE_LABEL) != digest


class KindBackend:
    """Run the course cluster in Docker with kind."""

    name = "kind"

    def __init__(self, cluster: str = "kubelab") -> None:
        self.cluster = cluster

    def kubeconfig_path(self) -> Path:
        """Return the kubeconfig kubelab keeps for this kind cluster (not ~/.kube/config)."""
        return paths.cache_home() / "kind" / f"{self.cluster}.kubeconfig"

    def _kind(self) -> Path:
        return tools.require("kind", "for --backend kind")

    def _check_docker(self) -> None:
        self._kind()
        if not docker_available():
            raise KubelabError(
                "--backend kind needs a running Docker daemon, and none answered; "
                "start Docker or use --backend sim"
            )

    def exists(self) -> bool:
        """Tell whether kind has a cluster of this name."""
        kind = tools.find("kind")
        if kind is None:
            return False
        proc = tools.run([kind, "get", "clusters"], timeout=30, check=False)
        return self.cluster in proc.stdout.split()

    def create_argv(self, nodes: int) -> list[str]:
        """Return the `kind create cluster` command line."""
        argv = [
            str(self._kind()),
            "create",
            "cluster",
            "--name",
            self.cluster,
            "--config",
            str(self._config_for(nodes)),
            "--kubeconfig",
            str(self.kubeconfig_path()),
            "--wait",
            "180s",
        ]
        return argv

    def _config_for(self, nodes: int) -> Path:
        """Write a kind config with `nodes - 1` workers (the shipped one has 2)."""
        if nodes == DEFAULT_NODES:
            return KIND_CONFIG
        doc = yaml.safe_load(KIND_CONFIG.read_text())
        control = [n for n in doc["nodes"] if n["role"] == "control-plane"]
        doc["nodes"] = control + [{"role": "worker"} for _ in range(max(nodes - 1, 0))]
        out = paths.cache_home() / "kind" / f"{self.cluster}-config.yaml"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(yaml.safe_dump(doc, sort_keys=False))
        return out

    def addon_steps(self) -> list[tuple[str, list[str]]]:
        """Return (label, kubectl argv) for every add-on, in the order they must be applied."""
        k = [str(tools.require("kubectl", "to install add-ons")), "--kubeconfig"]
        k.append(str(self.kubeconfig_path()))
        patch = (ADDONS / "metrics-server-patch.json").read_text()
        return [
            ("Gateway API CRDs", [*k, "apply", "--server-side", "-f", str(GATEWAY_CRDS)]),
            # Envoy Gateway's bundle carries its own copy of the Gateway API CRDs; re-applying ours
            # afterwards keeps the same CRD version as the sim cluster.
            ("Envoy Gateway", [*k, "apply", "--server-side", "-f", ENVOY_GATEWAY_URL]),
            (
                "Gateway API CRDs (pin)",
                [*k, "apply", "--server-side", "--force-conflicts", "-f", str(GATEWAY_CRDS)],
            ),
            (
                "Envoy Gateway ready",
                [
                    *k,
                    "-n",
                    "envoy-gateway-system",
                    "wait",
                    "--for=condition=Available",
                    "--timeout=300s",
                    "deployment/envoy-gateway",
                ],
            ),
            ("metrics-server", [*k, "apply", "-f", METRICS_SERVER_URL]),
            (
                "metrics-server --kubelet-insecure-tls",
                [
                    *k,
                    "-n",
                    "kube-system",
                    "patch",
                    "deployment",
                    "metrics-server",
                    "--type=json",
                    "-p",
                    json.dumps(json.loads(patch)),
                ],
            ),
            (
                "StorageClass fast-ssd, GatewayClass kubelab",
                [*k, "apply", "--server-side", "-k", str(ADDONS)],
            ),
        ]

    def up(self, *, nodes: int = DEFAULT_NODES, api_port: int | None = None) -> ClusterStatus:
        """Create the kind cluster and its add-ons, or reuse a running one."""
        self._check_docker()
        if api_port:
            raise KubelabError("--api-port is only supported with --backend sim")
        if not self.exists():
            busy = [p for p in kind_config_host_ports() if not procs.port_free(p)]
            if busy:
                raise KubelabError(
                    f"port {busy[0]} is already in use; kind maps it to the Gateway. Free it first"
                )
            self.kubeconfig_path().parent.mkdir(parents=True, exist_ok=True)
            with progress.status(f"Creating kind cluster {self.cluster!r} (pulls images once)"):
                tools.run(self.create_argv(nodes), timeout=900, what="kind create cluster")
        else:
            tools.run(
                [
                    self._kind(),
                    "export",
                    "kubeconfig",
                    "--name",
                    self.cluster,
                    "--kubeconfig",
                    str(self.kubeconfig_path()),
                ],
                what="kind export kubeconfig",
            )
        for label, argv in self.addon_steps():
            with progress.status(f"Installing {label}"):
                tools.run(argv, timeout=600, what=label)
        self.load_demo_images()
        state.record(self.cluster, self.name)
        return self.status()

    def load_demo_images(self) -> None:
        """Build the demo-web images if missing or stale, then load them into the cluster."""
        docker = tools.require("docker", "to build the demo app's images")
        digest = source_hash()
        images = [demo_web_image(v) for v in DEMO_WEB_VERSIONS]
        for version, image in zip(DEMO_WEB_VERSIONS, images, strict=True):
            inspect = tools.run(image_inspect_argv(docker, image), timeout=30, check=False)
            if not needs_build(inspect.returncode, inspect.stdout, digest):
                continue
            with progress.status(f"Building image {image}"):
                tools.run(
                    image_build_argv(docker, version, digest),
                    timeout=900,
                    what=f"docker build {image}",
                )
        latest = demo_web_image("latest")
        tools.run(
            image_tag_argv(docker, demo_web_image(DEMO_WEB_LATEST_OF), latest),
            timeout=30,
            what=f"docker tag {latest}",
        )
        images.append(latest)
        with progress.status(f"Loading {', '.join(images)} into kind"):
            tools.run(
                kind_load_argv(self._kind(), self.cluster, images),
                timeout=600,
                what="kind load docker-image",
            )

    def down(self) -> None:
        """Delete the kind cluster."""
        if not self.exists():
            raise KubelabError(f"no kind cluster named {self.cluster!r} is up")
        with progress.status(f"Deleting kind cluster {self.cluster!r}"):
            tools.run([self._kind(), "delete", "cluster", "--name", self.cluster], timeout=300)
        self.kubeconfig_path().unlink(missing_ok=True)
        state.forget(self.cluster)

    def status(self) -> ClusterStatus:
        """Report whether the kind cluster runs and how many nodes are Ready."""
        if not (tools.find("kind") and docker_available() and self.exists()):
            return ClusterStatus(self.name, self.cluster, running=False, detail="not created")
        try:
            ready, total = kube.ready_nodes(kube.api_client(self.kubeconfig_path()))
        except Exception as err:
            return ClusterStatus(
                self.name,
                self.cluster,
                running=False,
                kubeconfig=self.kubeconfig_path(),
                detail=f"API server not reachable ({err.__class__.__name__})",
            )
        return ClusterStatus(
            self.name,
            self.cluster,
            running=True,
            kubeconfig=self.kubeconfig_path(),
            nodes_ready=ready,
            nodes_total=total,
        )
