"""Cluster backends and how one is chosen.

``sim`` runs a real control plane with simulated nodes (no Docker); ``kind`` runs real
containers in Docker, from images built from pinned sources (`kind_build`). ``auto`` picks kind
when a Docker daemon answers and the kind images are already built, else sim.
``existing`` is a cluster kubelab did not start, registered with `kubelab cluster use` (see
`existing`). Which backend runs a named cluster is recorded, so later commands need no flag.

The backends are imported when one is made, not here: they import the kubernetes client (0.2-0.3 s),
and `kubelab --help` and `kubelab labs` import this package without ever needing a cluster.
"""

from __future__ import annotations

from kubelab.cluster import state
from kubelab.cluster.base import Backend, ClusterStatus
from kubelab.cluster_files import EXISTING, default_cluster_name
from kubelab.errors import KubelabError
from kubelab.i18n import _

BACKENDS = ("auto", "sim", "kind")
__all__ = [
    "BACKENDS",
    "EXISTING",
    "Backend",
    "ClusterStatus",
    "backend_for",
    "default_cluster_name",
]


def docker_available() -> bool:
    """Tell whether a Docker daemon answers (see `kind.docker_available`)."""
    from kubelab.cluster import kind

    return kind.docker_available()


def _make(name: str, cluster: str) -> Backend:
    if name == EXISTING:
        from kubelab.cluster.existing import ExistingBackend

        return ExistingBackend(cluster)
    if name == "sim":
        from kubelab.cluster.sim import SimBackend

        return SimBackend(cluster)
    from kubelab.cluster.kind import KindBackend

    return KindBackend(cluster)


def backend_for(cluster: str, requested: str = "auto") -> Backend:
    """Return the backend to use for `cluster`, honouring what is already running."""
    if requested not in BACKENDS:
        raise KubelabError(
            _("unknown backend {backend}; choose one of {choices}").format(
                backend=repr(requested), choices=", ".join(BACKENDS)
            )
        )
    recorded = state.recorded_backend(cluster)
    if recorded == EXISTING and requested != "auto":
        raise KubelabError(
            _(
                "cluster {name} is an existing cluster registered with `kubelab cluster use`;"
                " `kubelab cluster down` forgets it (the cluster is not touched), or pass"
                " another --name"
            ).format(name=repr(cluster))
        )
    if recorded and requested not in ("auto", recorded):
        raise KubelabError(
            _(
                "cluster {name} already runs on {backend}; run `kubelab cluster down` before"
                " starting it on {requested}"
            ).format(name=repr(cluster), backend=recorded, requested=requested)
        )
    if recorded:
        return _make(recorded, cluster)
    if requested == "auto":
        from kubelab.cluster import kind_build

        use_kind = docker_available() and kind_build.obtainable()
        return _make("kind" if use_kind else "sim", cluster)
    return _make(requested, cluster)


def recorded(cluster: str) -> Backend | None:
    """Return the backend recorded for `cluster`, or None if nothing is up."""
    name = state.recorded_backend(cluster)
    return _make(name, cluster) if name else None
