"""A cluster kubelab did not start: a cloud one, or a lab's own, registered with `cluster use`.

`kubelab cluster use --kubeconfig FILE [--context NAME]` records the file and the context under
the course cluster's name. kubelab then keeps a one-context copy of that kubeconfig in its cache
(relative paths made absolute, the chosen context current, refreshed whenever the source file
changes), and `kubeconfig_path()` returns that copy. Every command that finds the course cluster
through `api.default_kubeconfig()` (`check`, `reset`, `workshop`, `grade`, notebooks) therefore
works there unchanged, and kubectl reads the same file. kubelab never starts, stops or deletes
such a cluster: `down` only forgets it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubelab import api, cluster_files, kube
from kubelab.cluster import state
from kubelab.cluster.base import DEFAULT_NODES, ClusterStatus
from kubelab.cluster_files import read_kubeconfig, single_context, write_private
from kubelab.errors import KubelabError
from kubelab.i18n import _

__all__ = ["NAME", "ExistingBackend", "read_kubeconfig", "single_context", "write_private"]

NAME = cluster_files.EXISTING


class ExistingBackend:
    """A cluster someone else runs, reached through a registered kubeconfig and context."""

    name = NAME

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster

    @property
    def source(self) -> Path | None:
        """The kubeconfig file given to `cluster use`."""
        recorded = state.details(self.cluster).get("kubeconfig")
        return Path(recorded) if recorded else None

    @property
    def context(self) -> str | None:
        """The context chosen in it."""
        return state.details(self.cluster).get("context")

    def exists(self) -> bool:
        """Tell whether a cluster of this name was registered with `cluster use`."""
        return state.recorded_backend(self.cluster) == NAME

    def register(self, source: Path, context: str | None) -> str:
        """Record `source` and `context` as this course cluster; return the context used."""
        source = source.expanduser().resolve()
        chosen, copy = single_context(source, context)
        write_private(state.side_file(self.cluster, ".kubeconfig"), copy)
        state.record(self.cluster, NAME, kubeconfig=str(source), context=chosen)
        return chosen

    def kubeconfig_path(self) -> Path:
        """Return kubelab's one-context copy, rewritten first if the source file changed."""
        return cluster_files.existing_kubeconfig(self.cluster)

    def up(self, *, nodes: int = DEFAULT_NODES, api_port: int | None = None) -> ClusterStatus:
        """Nothing to start: report the cluster, failing in one line when it does not answer."""
        status = self.status()
        if not status.running:
            raise KubelabError(
                _("cluster {name} (existing) {detail}").format(
                    name=repr(self.cluster), detail=status.detail
                )
            )
        return status

    def down(self) -> None:
        """Forget the registration; the cluster itself is never touched."""
        state.side_file(self.cluster, ".kubeconfig").unlink(missing_ok=True)
        state.forget(self.cluster)

    def status(self) -> ClusterStatus:
        """Report whether the API server answers these credentials, and the nodes if visible."""
        kubeconfig = self.kubeconfig_path()
        components = {
            _("source"): _("{file} (context {context})").format(
                file=self.source, context=self.context
            )
        }
        try:
            conn = api.Api(kubeconfig)
        except KubelabError as err:
            return self._down(kubeconfig, components, str(err))
        try:
            conn.request("GET", "/version")
            ready = total = 0
            try:
                nodes = conn.list(api.NODES, labels=f"!{kube.LAB_NODE_LABEL}")
            except api.ApiError as err:
                components[_("nodes")] = _("not readable with these credentials ({status})").format(
                    status=err.status
                )
            else:
                total = len(nodes)
                ready = sum(1 for n in nodes if _ready(n))
        except KubelabError as err:
            return self._down(kubeconfig, components, str(err))
        finally:
            conn.close()
        return ClusterStatus(
            NAME,
            self.cluster,
            running=True,
            kubeconfig=kubeconfig,
            server=conn.server,
            nodes_ready=ready,
            nodes_total=total,
            components=components,
        )

    def _down(self, kubeconfig: Path, components: dict[str, str], why: str) -> ClusterStatus:
        return ClusterStatus(
            NAME,
            self.cluster,
            running=False,
            kubeconfig=kubeconfig,
            components=components,
            detail=_("does not answer: {reason}").format(reason=why),
        )


def _ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
