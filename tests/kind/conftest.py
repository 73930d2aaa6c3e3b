"""The kind tests share one kind cluster per run, built from the pinned images on first use.

They skip, all of them, when no Docker daemon answers (`scripts/ci-docker` starts one on CI).
The fixtures `kubeconfig`, `kubectl` and `client` point at the kind cluster here, so the
lab helpers the sim tests use work unchanged.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelab import api
from kubelab.cluster import kind_build
from kubelab.cluster.kind import KindBackend, docker_available
from tests.conftest import Kubectl

KIND_TEST_CLUSTER = os.environ.get("KUBELAB_KIND_TEST_CLUSTER", "kubelab-kind-test")
# Figures the benchmark and the closing note quote; printed at the end of the session.
TIMINGS: dict[str, float] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/kind/ as a kind test."""
    for item in items:
        if "kind" in Path(str(item.fspath)).parts[-2:-1]:
            item.add_marker(pytest.mark.kind)


@pytest.fixture(scope="session")
def kind_cluster() -> Iterator[KindBackend]:
    """A running 3-node kind cluster with every add-on (deleted at the end unless kept).

    KUBELAB_KIND_KEEP=1 keeps it after the run and reuses it in the next (`up` is idempotent):
    for working on the kind tests without a new cluster each time.
    """
    if not docker_available():
        pytest.skip("no Docker daemon answers (scripts/ci-docker starts one)")
    started = time.monotonic()
    kind_build.ensure_built()
    TIMINGS["build (cached or not)"] = time.monotonic() - started
    # Tests reach the Gateway through the node's address, not localhost ports that other
    # programs on a shared machine may hold.
    backend = KindBackend(KIND_TEST_CLUSTER, publish_ports=False)
    keep = os.environ.get("KUBELAB_KIND_KEEP") == "1"
    if backend.exists() and not keep:  # left over from an interrupted run: start clean
        backend.down()
    started = time.monotonic()
    backend.up(nodes=3)
    TIMINGS["cluster up"] = time.monotonic() - started
    try:
        yield backend
    finally:
        if not keep and backend.exists():
            backend.down()


@pytest.fixture(scope="session")
def kubeconfig(kind_cluster: KindBackend) -> Path:
    """The admin kubeconfig of the kind test cluster."""
    return kind_cluster.kubeconfig_path()


# Overridden here, not inherited: the sim's own are bound to the sim cluster (tests/conftest.py).
@pytest.fixture(scope="session")
def client(kubeconfig: Path) -> Iterator[api.Api]:
    """A kubelab API connection to the kind test cluster, with admin credentials."""
    conn = api.Api(kubeconfig)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Kubectl:
    """Run kubectl against the kind test cluster."""
    return Kubectl(kubeconfig)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how long the kind cluster took to build and start."""
    for what, seconds in TIMINGS.items():
        terminalreporter.write_line(f"kind {what}: {seconds:.1f}s")
