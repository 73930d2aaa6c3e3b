"""What the kind cluster is built from: Go modules, Debian packages, image names.

The Go wrapper modules live in ``kind/modules/<name>/`` (``go.mod`` pins the version, ``go.sum``
the checksums), made by ``scripts/repin-kind`` from `COMPONENTS`. The Debian side is pinned by
suite in ``kind/debian.json``. `kind_build` builds from these and nothing else.
"""

from __future__ import annotations

from kubelab import paths
from kubelab.cluster.sim_build import K8S_VERSION, Component, _k8s_ldflags

KIND_DIR = paths.KIND_DIR
MODULES_DIR = KIND_DIR / "modules"
DEBIAN_PINS = KIND_DIR / "debian.json"

ETCD_VERSION = "v3.6.16"  # the sim's etcd pin; kubeadm 1.36 defaults to 3.6.8, not served
COREDNS_VERSION = "v1.14.7"  # kubeadm 1.36 defaults to v1.14.2, not served
PAUSE_VERSION = "3.10.2"  # what kubeadm 1.36 names (constants.PauseVersion)
CNI_PLUGINS = ("bridge", "host-local", "loopback", "ptp", "portmap")
CNI_PLUGIN_PACKAGES = {
    "bridge": "main/bridge",
    "host-local": "ipam/host-local",
    "loopback": "main/loopback",
    "ptp": "main/ptp",
    "portmap": "meta/portmap",
}
CONTAINERD_TAGS = ("no_aufs", "no_zfs", "no_btrfs", "no_devmapper")


def _c(**kw: object) -> Component:
    return Component(modules_root=MODULES_DIR, **kw)  # type: ignore[arg-type]


K8S_CMDS = (
    "kubelet",
    "kubeadm",
    "kubectl",
    "kube-proxy",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
)

COMPONENTS: tuple[Component, ...] = (
    _c(
        name="kubernetes",
        module="k8s.io/kubernetes",
        version=K8S_VERSION,
        binaries={b: f"k8s.io/kubernetes/cmd/{b}" for b in K8S_CMDS},
        ldflags=_k8s_ldflags(K8S_VERSION),
        staging_replaces=True,
    ),
    _c(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version=ETCD_VERSION,
        binaries={"etcd": "go.etcd.io/etcd/server/v3"},
    ),
    _c(
        name="containerd",
        module="github.com/containerd/containerd/v2",
        version="v2.3.4",  # kind v0.33.0's pin
        binaries={
            b: f"github.com/containerd/containerd/v2/cmd/{b}"
            for b in ("containerd", "ctr", "containerd-shim-runc-v2")
        },
        ldflags=("-X github.com/containerd/containerd/v2/version.Version=v2.3.4",),
        tags=CONTAINERD_TAGS,
    ),
    _c(
        name="runc",
        module="github.com/opencontainers/runc",
        version="v1.4.3",  # kind v0.33.0's pin
        binaries={"runc": "github.com/opencontainers/runc"},
        ldflags=("-X main.version=1.4.3", "-extldflags -static"),
        tags=("seccomp", "urfave_cli_no_docs", "netgo", "osusergo"),
        cgo=True,
    ),
    _c(
        name="cri-tools",
        module="sigs.k8s.io/cri-tools",
        version="v1.37.0",  # kind pins v1.36.0, which the module proxy does not serve
        binaries={"crictl": "sigs.k8s.io/cri-tools/cmd/crictl"},
    ),
    _c(
        name="cni-plugins",
        module="github.com/containernetworking/plugins",
        version="v1.9.1",
        binaries={
            p: f"github.com/containernetworking/plugins/plugins/{CNI_PLUGIN_PACKAGES[p]}"
            for p in CNI_PLUGINS
        },
    ),
    _c(
        name="coredns",
        module="github.com/coredns/coredns",
        version=COREDNS_VERSION,
        binaries={"coredns": "github.com/coredns/coredns"},
    ),
    _c(
        name="kube-router",
        module="github.com/cloudnativelabs/kube-router/v2",
        version="v2.1.0",
        binaries={"kube-router": "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"},
        ldflags=("-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v2.1.0",),
        assets=(("daemonset", "kube-router-daemonset"),),
    ),
    _c(
        name="local-path-provisioner",
        module="github.com/rancher/local-path-provisioner",
        version="v0.0.30",
        binaries={"local-path-provisioner": "github.com/rancher/local-path-provisioner"},
        assets=(("deploy", "local-path-provisioner-deploy"),),
    ),
    _c(
        name="metrics-server",
        module="sigs.k8s.io/metrics-server",
        version="v0.8.0",
        binaries={"metrics-server": "sigs.k8s.io/metrics-server/cmd/metrics-server"},
        ldflags=("-X k8s.io/client-go/pkg/version.gitVersion=v0.8.0",),
        assets=(("manifests/base", "metrics-server-manifests"),),
    ),
    _c(
        name="kind",
        module="sigs.k8s.io/kind",
        version="v0.33.0",
        binaries={"kind": "sigs.k8s.io/kind"},
        # kind's base image files (entrypoint, systemd units, containerd config)
        assets=(("images/base/files", "kind-base-files"),),
    ),
    # Gateway API implementation (GatewayClass `kubelab`). v3.7.x needs modules the proxy does
    # not serve (lego DNS provider SDKs, traefik/dynamic/ext); v3.6.12 resolves.
    _c(
        name="traefik",
        module="github.com/traefik/traefik/v3",
        version="v3.6.12",
        binaries={"traefik": "github.com/traefik/traefik/v3/cmd/traefik"},
        ldflags=("-X github.com/traefik/traefik/v3/pkg/version.Version=v3.6.12",),
        # its Gateway API RBAC, as documented
        assets=(("docs/content/reference/dynamic-configuration", "traefik-dynamic-config"),),
    ),
)
