"""The kind cluster, for learners with Docker: real containers, real traffic, no registry.

Every image comes from `kind_build` (pinned sources, built once and cached): the node image
already holds the control-plane images, CoreDNS, pause, kube-router, local-path-provisioner,
metrics-server, Traefik, demo-web, postgres and busybox in its containerd store, so creating a
cluster pulls nothing. kind itself is built from its pinned module too.

`up` creates one control plane and two workers with kind's default CNI disabled, then installs:
kube-router (pod network and NetworkPolicy), the vendored Gateway API CRDs, metrics-server,
Traefik as the GatewayClass ``kubelab``, the ``fast-ssd`` StorageClass and the substrate
ConfigMap, all rendered from the pinned modules' own manifests (`kind_manifests`).
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from kubelab import api, cluster_files, cluster_record, kube, paths, procs, progress, tools, wait
from kubelab.cluster import kind_build, kind_manifests, parts, state
from kubelab.cluster.base import DEFAULT_NODES, ClusterStatus
from kubelab.cluster.gateway_crds import VENDORED
from kubelab.errors import KubelabError
from kubelab.i18n import N_, _

KIND_CONFIG = paths.MANIFESTS_DIR / "kind" / "kind-config.yaml"
GATEWAY_CRDS = VENDORED
ADDONS = paths.MANIFESTS_DIR / "cluster" / "kind"
DEMO_WEB_DIR = paths.APPS_DIR / "demo-web"
CLUSTER_LABEL = "io.x-k8s.kind.cluster"
# Deployments that must be Available before the cluster counts as up: (namespace, name).
SERVING = (
    ("kube-system", "coredns"),
    ("kube-system", "metrics-server"),
    ("local-path-storage", "local-path-provisioner"),
    ("traefik", "traefik"),
)


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


# Every kubelet, kube-proxy and controller in the node containers takes inotify instances from the
# host's per-user pool; at the default 128 a second cluster (or a busy desktop) runs out and pods
# fail with "too many open files". kind's known-issues page gives these values.
INOTIFY_DOCS = (
    "https://kind.sigs.k8s.io/docs/user/known-issues/#pod-errors-due-to-too-many-open-files"
)
INOTIFY_MINIMUM = {"max_user_instances": 512, "max_user_watches": 524288}
INOTIFY_DIR = Path("/proc/sys/fs/inotify")


def inotify_shortfall(folder: Path = INOTIFY_DIR) -> dict[str, int]:
    """Return the inotify limits below kind's recommended minimum: name -> current value."""
    low = {}
    for name, minimum in INOTIFY_MINIMUM.items():
        try:
            value = int((folder / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # not Linux, or not readable: nothing to say
        if value < minimum:
            low[name] = value
    return low


def ensure_inotify(folder: Path = INOTIFY_DIR) -> None:
    """Raise low inotify limits where we may (root), else stop with the one command that does."""
    low = inotify_shortfall(folder)
    for name in list(low):
        try:
            (folder / name).write_text(str(INOTIFY_MINIMUM[name]))
            del low[name]
        except OSError:
            pass
    if low:
        settings = " ".join(f"fs.inotify.{k}={INOTIFY_MINIMUM[k]}" for k in low)
        found = ", ".join(f"{k} is {v}" for k, v in low.items())
        raise KubelabError(
            _(
                "kind's pods would fail with 'too many open files' ({found}); raise the limits"
                " with `sudo sysctl -w {settings}` and try again (why: {docs})"
            ).format(found=found, settings=settings, docs=INOTIFY_DOCS)
        )


def cgroup_v1() -> bool:
    """Tell whether this machine mounts cgroup v1 (no unified hierarchy at /sys/fs/cgroup)."""
    return platform.system() == "Linux" and not Path("/sys/fs/cgroup/cgroup.controllers").exists()


def cluster_config(
    name: str, nodes: int, image: str, *, publish_ports: bool = True
) -> dict[str, Any]:
    """Return the kind config: the shipped one, sized, on our node image, with our patches.

    - kind's default CNI (kindnetd, not buildable here) is off; `up` installs kube-router.
    - kubeadm is told the etcd and CoreDNS tags we build (its defaults are not served).
    - ``failCgroupV1: false``: since 1.35 the kubelet refuses cgroup v1 hosts otherwise (KEP-5573);
      it changes nothing on cgroup v2.
    """
    doc: dict[str, Any] = yaml.safe_load(KIND_CONFIG.read_text())
    doc["name"] = name
    control = [n for n in doc["nodes"] if n["role"] == "control-plane"]
    doc["nodes"] = control + [{"role": "worker"} for _ in range(max(nodes - 1, 0))]
    for node in doc["nodes"]:
        node["image"] = image
        if not publish_ports:
            node.pop("extraPortMappings", None)
    doc.setdefault("networking", {})["disableDefaultCNI"] = True
    patches = doc.setdefault("kubeadmConfigPatches", [])
    patches.append(
        yaml.safe_dump(
            {
                "kind": "ClusterConfiguration",
                "etcd": {"local": {"imageTag": kind_build.ETCD_TAG}},
                "dns": {"imageTag": kind_build.IMAGES["coredns"].rsplit(":", 1)[1]},
            }
        )
    )
    patches.append(yaml.safe_dump({"kind": "KubeletConfiguration", "failCgroupV1": False}))
    return doc


def _installing(label: str) -> str:
    return _("installing {what}").format(what=label)


def _at_once(steps: list[tuple[str, Callable[[], object]]]) -> None:
    """Run independent install steps in parallel under one status line; raise the first error."""
    labels = ", ".join(label for label, _step in steps)
    installing = _("Installing {parts}").format(parts=labels)
    with progress.status(installing), ThreadPoolExecutor(len(steps)) as pool:
        running = [pool.submit(step) for _label, step in steps]
        for done in running:
            done.result()


class KindBackend:
    """Run the course cluster in Docker with kind."""

    name = "kind"

    def __init__(self, cluster: str = "kubelab", *, publish_ports: bool = True) -> None:
        self.cluster = cluster
        # False leaves the Gateway's localhost ports unmapped (tests on a shared machine).
        self.publish_ports = publish_ports

    def kubeconfig_path(self) -> Path:
        """Return the kubeconfig kubelab keeps for this kind cluster (not ~/.kube/config)."""
        return cluster_files.kind_kubeconfig(self.cluster)

    def _workdir(self) -> Path:
        d = paths.cache_home() / "kind" / "clusters" / self.cluster
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _check_docker(self) -> None:
        if not docker_available():
            raise KubelabError(
                _(
                    "--backend kind needs a running Docker daemon, and none answered;"
                    " start Docker or use --backend sim"
                )
            )

    def _kind(self) -> Path:
        """The pinned kind binary if built, else one on PATH."""
        built = kind_build.built_kind()
        if built is not None:
            return built
        return tools.require("kind", N_("for --backend kind (scripts/build-kind builds it)"))

    def node_containers(self) -> list[str]:
        """Return the names of this cluster's node containers (running or not)."""
        docker = tools.find("docker")
        if docker is None:
            return []
        proc = tools.run(
            [
                docker,
                "ps",
                "-a",
                "--filter",
                f"label={CLUSTER_LABEL}={self.cluster}",
                "--format",
                "{{.Names}}",
            ],
            timeout=30,
            check=False,
        )
        return sorted(proc.stdout.split()) if proc.returncode == 0 else []

    def gateway_url(self) -> str:
        """Return where the Gateway (Traefik's NodePort 30080) answers from this machine.

        With published ports that is localhost:8080 (manifests/kind/kind-config.yaml); without,
        the control-plane node's address on Docker's network (reachable from a Linux host).
        """
        if self.publish_ports:
            return "http://localhost:8080"
        docker = tools.require("docker", N_("to find the kind node's address"))
        node = f"{self.cluster}-control-plane"
        fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
        out = tools.run([docker, "inspect", "-f", fmt, node], timeout=30).stdout.split()
        if not out:
            raise KubelabError(
                _("kind node {node} has no address on a Docker network").format(node=node)
            )
        return f"http://{out[0]}:30080"

    def exists(self) -> bool:
        """Tell whether kind has a cluster of this name (its node containers exist)."""
        return bool(self.node_containers())

    def create_argv(self, config: Path) -> list[str]:
        """Return the `kind create cluster` command line (no --wait: the CNI comes after)."""
        return [
            str(self._kind()),
            "create",
            "cluster",
            "--name",
            self.cluster,
            "--config",
            str(config),
            "--kubeconfig",
            str(self.kubeconfig_path()),
            "--retain",
        ]

    def _kubectl(self, *args: str | Path, timeout: float = 300, what: str | None = None) -> str:
        kubectl = tools.require("kubectl", N_("to install the kind cluster's add-ons"))
        argv: list[str | Path] = [kubectl, "--kubeconfig", self.kubeconfig_path(), *args]
        return tools.run(argv, timeout=timeout, what=what).stdout

    def _write(self, name: str, text: str) -> Path:
        path = self._workdir() / name
        path.write_text(text)
        return path

    def up(self, *, nodes: int = DEFAULT_NODES, api_port: int | None = None) -> ClusterStatus:
        """Create the kind cluster and its add-ons (building the images if needed), or reuse it."""
        if api_port:
            raise KubelabError(_("--api-port is only supported with --backend sim"))
        if nodes < 1:
            raise KubelabError(_("--nodes must be at least 1"))
        self._check_docker()
        ensure_inotify()
        build = kind_build.ensure_built()
        if not self.exists():
            ports = kind_config_host_ports() if self.publish_ports else []
            busy = [p for p in ports if not procs.port_free(p)]
            if busy:
                raise KubelabError(
                    _(
                        "port {port} is already in use; kind maps it to the Gateway. Free it first"
                    ).format(port=busy[0])
                )
            config = self._write(
                "kind-config.yaml",
                yaml.safe_dump(
                    cluster_config(
                        self.cluster, nodes, build.node_image, publish_ports=self.publish_ports
                    )
                ),
            )
            self.kubeconfig_path().parent.mkdir(parents=True, exist_ok=True)
            creating = _("Creating kind cluster {name} ({n} nodes)").format(
                name=repr(self.cluster), n=nodes
            )
            with progress.status(creating) as st:
                kind_build.run_streaming(
                    self.create_argv(config), st, "kind create cluster", show_lines=True
                )
        else:
            tools.run(
                [
                    self._kind(),
                    "export",
                    "kubeconfig",
                    "--name",
                    self.cluster,
                    "--kubeconfig",
                    self.kubeconfig_path(),
                ],
                timeout=60,
                what="kind export kubeconfig",
            )
        self._tag_aliases()
        self._ensure_addons(build, nodes)
        self._record_gateway_url()
        state.record(self.cluster, self.name)
        return self.status()

    def _record_gateway_url(self) -> None:
        """Write where the Gateway answers into the cluster's record, for graders and notebooks.

        Only this process knows it (published ports, or the node's Docker address, which can change
        when Docker restarts), so it is written at every `up`.
        """
        ns, name = cluster_record.CONFIGMAP
        patch = {"data": {cluster_record.GATEWAY_URL_KEY: self.gateway_url()}}
        self._kubectl(
            "patch",
            "configmap",
            name,
            "-n",
            ns,
            "--type=merge",
            "-p",
            json.dumps(patch),
            what=_("recording the Gateway's address"),
        )

    def _tag_aliases(self) -> None:
        """Answer the upstream postgres names the labs use with the node's own postgresql."""
        docker = tools.require("docker", N_("to tag images on the kind nodes"))
        source = f"docker.io/{kind_build.IMAGES['postgresql']}"

        def tag(node: str) -> None:
            tools.run(
                [
                    docker,
                    "exec",
                    node,
                    "ctr",
                    "-n",
                    "k8s.io",
                    "images",
                    "tag",
                    "--force",
                    source,
                    *kind_build.POSTGRES_ALIASES,
                ],
                timeout=60,
                what=_("tagging postgres aliases on {node}").format(node=node),
            )

        nodes = self.node_containers()
        with ThreadPoolExecutor(max(len(nodes), 1)) as pool:  # one `docker exec` per node, at once
            list(pool.map(tag, nodes))

    def _addon_files(self, build: kind_build.KindBuild) -> list[tuple[str, Path]]:
        """Render every add-on to a file in the cluster's folder: (label, file), in order."""
        bins = build.bins
        return [
            (
                _("kube-router (pod network, NetworkPolicy)"),
                self._write("kube-router.yaml", kind_manifests.kube_router(bins)),
            ),
            (
                "metrics-server",
                self._write("metrics-server.yaml", kind_manifests.metrics_server(bins)),
            ),
            (_("Traefik (Gateway API)"), self._write("traefik.yaml", kind_manifests.traefik(bins))),
        ]

    def _ensure_addons(self, build: kind_build.KindBuild, nodes: int) -> None:
        files = self._addon_files(build)
        digest = hashlib.sha256(GATEWAY_CRDS.read_bytes())
        for _label, f in files:
            digest.update(f.read_bytes())
        for f in sorted(ADDONS.iterdir()):
            digest.update(f.name.encode() + f.read_bytes())
        digest.update(parts.fence_digest().encode())
        stamp = self._workdir() / "addons.sha256"
        if not (stamp.is_file() and stamp.read_text() == digest.hexdigest()):
            self._apply_addons(files)
        self._wait_ready(nodes)
        stamp.write_text(digest.hexdigest())

    def _apply_addons(self, files: list[tuple[str, Path]]) -> None:
        # Two rounds of independent installs, each round's at once (the API server serves them
        # in parallel): kube-router, metrics-server and the Gateway API CRDs (the slowest step)
        # need nothing from each other; Traefik watches those CRDs, so it comes in the second
        # round with the course's own objects and the fence.
        (cni_label, cni), (ms_label, ms), *rest = files
        first: list[tuple[str, Callable[[], object]]] = [
            (cni_label, lambda: self._kubectl("apply", "-f", cni, what=_installing(cni_label))),
            (ms_label, lambda: self._apply_server_side("-f", ms, what=_installing(ms_label))),
            (_("the Gateway API CRDs"), self._install_gateway_crds),
        ]
        second: list[tuple[str, Callable[[], object]]] = [
            *(
                (
                    label,
                    lambda path=path, label=label: self._apply_server_side(
                        "-f", path, what=_installing(label)
                    ),
                )
                for label, path in rest
            ),
            (
                _("StorageClass fast-ssd, GatewayClass kubelab, substrate"),
                lambda: self._apply_server_side(
                    "-k", ADDONS, what=_("applying the cluster add-ons")
                ),
            ),
            (_("the fence (roles, admission policies, API fairness)"), self._install_fence),
        ]
        for round_ in (first, second):
            _at_once(round_)

    def _apply_server_side(self, *args: str | Path, what: str) -> str:
        return self._kubectl("apply", "--server-side", "--force-conflicts", *args, what=what)

    def _install_gateway_crds(self) -> None:
        self._apply_server_side("-f", GATEWAY_CRDS, what=_("applying the Gateway API CRDs"))
        crds = [
            f"crd/{d['metadata']['name']}"
            for d in yaml.safe_load_all(GATEWAY_CRDS.read_text())
            if d and d.get("kind") == "CustomResourceDefinition"
        ]
        self._kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            *crds,
            what=_("waiting for the Gateway API CRDs"),
        )

    def _install_fence(self) -> None:
        conn = api.Api(self.kubeconfig_path())
        try:
            parts.fence_up(conn)
        finally:
            conn.close()

    def _wait_ready(self, nodes: int) -> None:
        api = kube.api_client(self.kubeconfig_path())
        with progress.status(_("Waiting for {n} Ready nodes").format(n=nodes)) as st:

            def count() -> tuple[int, int]:
                ready, total = kube.ready_nodes(api)
                st.update(_("{ready}/{total} Ready").format(ready=ready, total=nodes))
                return ready, total

            ready, _total = wait.until(
                count, lambda rt: rt == (nodes, nodes), timeout=300, raise_on_timeout=False
            )
        if ready != nodes:
            raise KubelabError(
                _(
                    "only {ready} of {nodes} kind nodes became Ready within 300s;"
                    " `kubectl --kubeconfig {kubeconfig} describe nodes` says why"
                ).format(ready=ready, nodes=nodes, kubeconfig=self.kubeconfig_path())
            )
        with progress.status(_("Waiting for the add-ons to serve")) as st:
            for ns, name in SERVING:
                st.update(f"{ns}/{name}")
                self._kubectl(
                    "-n",
                    ns,
                    "rollout",
                    "status",
                    f"deployment/{name}",
                    "--timeout=300s",
                    timeout=330,
                    what=_("waiting for {object}").format(object=f"{ns}/{name}"),
                )

    def down(self) -> None:
        """Delete the kind cluster."""
        if not self.exists():
            raise KubelabError(
                _("no kind cluster named {name} is up").format(name=repr(self.cluster))
            )
        with progress.status(_("Deleting kind cluster {name}").format(name=repr(self.cluster))):
            tools.run(
                [self._kind(), "delete", "cluster", "--name", self.cluster],
                timeout=300,
                what="kind delete cluster",
            )
        self.kubeconfig_path().unlink(missing_ok=True)
        (self._workdir() / "addons.sha256").unlink(missing_ok=True)
        state.forget(self.cluster)

    def status(self) -> ClusterStatus:
        """Report whether the kind cluster runs and how many nodes are Ready."""
        if not (docker_available() and self.exists()):
            return ClusterStatus(self.name, self.cluster, running=False, detail=_("not created"))
        try:
            ready, total = kube.ready_nodes(kube.api_client(self.kubeconfig_path()))
        except Exception as err:
            return ClusterStatus(
                self.name,
                self.cluster,
                running=False,
                kubeconfig=self.kubeconfig_path(),
                detail=_("API server not reachable ({error})").format(error=err.__class__.__name__),
            )
        return ClusterStatus(
            self.name,
            self.cluster,
            running=True,
            kubeconfig=self.kubeconfig_path(),
            nodes_ready=ready,
            nodes_total=total,
        )
