"""The kind cluster's add-on manifests, rendered from the pinned modules' own files.

Nothing comes from a URL: kube-router's DaemonSet, local-path-provisioner's deployment and
metrics-server's kustomize base are read from the module sources that `kind_build` copied into its
cache, and only what must differ here is changed (image names that exist in the node image, no
kubeconfig file on the host, kind's /var path for volumes, metrics-server's insecure kubelet TLS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kubelab import tools
from kubelab.cluster import kind_build
from kubelab.errors import KubelabError
from kubelab.i18n import N_

IMAGES = kind_build.IMAGES


def _dump(docs: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def kube_router(bins: Path) -> str:
    """kube-router as CNI (bridge + host-local, routes between nodes) and NetworkPolicy enforcer.

    Chosen because it enforces policy with iptables and ipset, which this kernel family has;
    kube-network-policies (kindnet's) needs nftables' queue, which some kernels lack. Without
    a kubeconfig file on kind's nodes it uses its service account (in-cluster), which works from
    the start: kube-proxy runs on the host network and needs no CNI.
    """
    docs = _load(bins / "assets" / "kube-router-daemonset" / "kubeadm-kuberouter.yaml")
    for doc in docs:
        if doc["kind"] != "DaemonSet":
            continue
        spec = doc["spec"]["template"]["spec"]
        for c in _containers(doc):
            c["image"] = IMAGES["kube-router"]
            c["imagePullPolicy"] = "IfNotPresent"
            c["volumeMounts"] = [m for m in c.get("volumeMounts", []) if m["name"] != "kubeconfig"]
        spec["volumes"] = [v for v in spec["volumes"] if v["name"] != "kubeconfig"]
        # Its request (250m CPU, 250Mi) is sized for real nodes; three kind nodes share a laptop.
        for c in spec["containers"]:
            c["resources"] = {"requests": {"cpu": "50m", "memory": "64Mi"}}
    return _dump(docs)


def local_path_storage(bins: Path) -> str:
    """local-path-provisioner as kind's default StorageClass ``standard``, as kind ships it."""
    docs = _load(bins / "assets" / "local-path-provisioner-deploy" / "local-path-storage.yaml")
    for doc in docs:
        if doc["kind"] == "Deployment":
            for c in _containers(doc):
                c["image"] = IMAGES["local-path-provisioner"]
        elif doc["kind"] == "StorageClass":
            doc["metadata"]["name"] = "standard"
            doc["metadata"]["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
        elif doc["kind"] == "ConfigMap":
            data = doc["data"]
            # kind keeps node data under /var (a volume of each node container).
            data["config.json"] = data["config.json"].replace(
                "/opt/local-path-provisioner", "/var/local-path-provisioner"
            )
            helper = yaml.safe_load(data["helperPod.yaml"])
            helper["spec"]["containers"][0]["image"] = IMAGES["busybox"]
            data["helperPod.yaml"] = yaml.safe_dump(helper, sort_keys=False)
    return _dump(docs)


def metrics_server(bins: Path) -> str:
    """metrics-server from its kustomize base, our image, ``--kubelet-insecure-tls``.

    kind's kubelet serving certificates are self-signed, with no IP SANs.
    """
    kubectl = tools.require("kubectl", N_("to render metrics-server's manifests"))
    base = bins / "assets" / "metrics-server-manifests"
    out = tools.run([kubectl, "kustomize", base], timeout=60, what="kubectl kustomize").stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    for doc in docs:
        if doc["kind"] == "Deployment":
            for c in _containers(doc):
                c["image"] = IMAGES["metrics-server"]
                c["args"] = [*c.get("args", []), "--kubelet-insecure-tls"]
    return _dump(docs)


def node_manifests(bins: Path) -> dict[str, str]:
    """Files for ``/kind/manifests`` in the node image: kind installs these itself.

    kind applies ``default-storage.yaml`` on every cluster, and ``default-cni.yaml`` unless the
    config says ``disableDefaultCNI`` (kubelab's does, and installs kube-router itself; a plain
    ``kind create cluster --image`` with this node image still gets a policy-enforcing CNI).
    """
    for name in ("kube-router-daemonset", "local-path-provisioner-deploy"):
        if not (bins / "assets" / name).is_dir():
            raise KubelabError(f"the kind build has no {name}: rebuild with scripts/build-kind")
    return {
        "default-cni.yaml": kube_router(bins),
        "default-storage.yaml": local_path_storage(bins),
    }


TRAEFIK_NAMESPACE = "traefik"
# Gateway listener ports are matched to Traefik entry points by port, so the entry points listen
# on the ports labs' Gateways use (80, 443); the Service maps them to the NodePorts that
# manifests/kind/kind-config.yaml publishes on localhost:8080 and :8443.
TRAEFIK_ARGS = (
    "--entryPoints.web.address=:80",
    "--entryPoints.websecure.address=:443",
    "--entryPoints.traefik.address=:9000",
    "--ping=true",
    "--providers.kubernetesgateway=true",
    f"--providers.kubernetesgateway.statusAddress.service.namespace={TRAEFIK_NAMESPACE}",
    "--providers.kubernetesgateway.statusAddress.service.name=traefik",
    "--log.level=INFO",
)


def traefik(bins: Path) -> str:
    """Traefik as the Gateway API implementation: RBAC as Traefik documents it, one replica.

    Envoy Gateway is what the course named first, but Envoy (C++) cannot be built here; Traefik is
    one Go program, and implements the core HTTPRoute features the labs use.
    """
    rbac = _load(bins / "assets" / "traefik-dynamic-config" / "kubernetes-gateway-rbac.yml")
    for doc in rbac:
        doc["metadata"]["name"] = "kubelab-traefik"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = "kubelab-traefik"
            doc["subjects"] = [
                {"kind": "ServiceAccount", "name": "traefik", "namespace": TRAEFIK_NAMESPACE}
            ]
    labels = {"app.kubernetes.io/name": "traefik"}
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TRAEFIK_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "traefik", "namespace": TRAEFIK_NAMESPACE},
        },
        *rbac,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "traefik", "namespace": TRAEFIK_NAMESPACE, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "traefik",
                        "containers": [
                            {
                                "name": "traefik",
                                "image": IMAGES["traefik"],
                                "imagePullPolicy": "IfNotPresent",
                                "args": list(TRAEFIK_ARGS),
                                "ports": [
                                    {"name": "web", "containerPort": 80},
                                    {"name": "websecure", "containerPort": 443},
                                    {"name": "admin", "containerPort": 9000},
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/ping", "port": 9000},
                                    "periodSeconds": 2,
                                },
                                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "traefik", "namespace": TRAEFIK_NAMESPACE, "labels": labels},
            "spec": {
                "type": "NodePort",
                "selector": labels,
                "ports": [
                    {"name": "web", "port": 80, "targetPort": 80, "nodePort": 30080},
                    {"name": "websecure", "port": 443, "targetPort": 443, "nodePort": 30443},
                ],
            },
        },
    ]
    return _dump(docs)
