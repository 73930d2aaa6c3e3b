"""What every cluster backend provides, and the status it reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

DEFAULT_NODES = 3


@dataclass(frozen=True)
class ClusterStatus:
    """A snapshot of one cluster, as `kubelab cluster status` shows it."""

    backend: str
    name: str
    running: bool
    kubeconfig: Path | None = None
    server: str | None = None
    nodes_ready: int = 0
    nodes_total: int = 0
    components: dict[str, str] = field(default_factory=dict)  # component -> "running (pid 12)"
    detail: str = ""


class Backend(Protocol):
    """A way to run a cluster: the simulated control plane or kind."""

    name: str
    cluster: str

    def up(self, *, nodes: int = DEFAULT_NODES, api_port: int | None = None) -> ClusterStatus:
        """Start the cluster, or reuse it if it is already running."""
        ...

    def down(self) -> None:
        """Stop every process the cluster runs and remove its state."""
        ...

    def status(self) -> ClusterStatus:
        """Report whether the cluster runs, and how healthy it is."""
        ...

    def exists(self) -> bool:
        """Tell whether this backend has a cluster of this name (running or not)."""
        ...

    def kubeconfig_path(self) -> Path:
        """Return the kubeconfig file for this cluster."""
        ...
