"""The kind cluster used as an "existing" one: `kubelab cluster use | prepare` against it.

The sim's twin (tests/cluster/test_existing_cluster.py) shows `use` finds what the course needs on
a cluster without a data plane; on kind every requirement is met, the GatewayClass included, and
`prepare` leaves every object as it found it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelab import api
from kubelab.cluster import existing
from tests.cluster.test_existing_cluster import kubelab, resource_versions, rows


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A fresh cluster name, no KUBECONFIG, progress in scratch; forgotten afterwards."""
    name = f"kt-kind-used-{uuid.uuid4().hex[:6]}"
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBELAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KUBELAB_CLUSTER", name)
    yield name
    backend = existing.ExistingBackend(name)
    if backend.exists():
        backend.down()


def test_use_finds_everything_the_course_needs_on_kind(
    used: str, kubeconfig: Path, client: api.Api, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = kubelab(capsys, "cluster", "use", "--kubeconfig", str(kubeconfig))
    assert code == 0, out + err
    table = rows(out)
    assert {k: v[1] for k, v in table.items() if v[1] != "ok"} == {}, out
    assert table["GatewayClass kubelab"][0].startswith("accepted by traefik"), out
    assert "the cluster has what the course needs" in out

    before = resource_versions(client)
    code, out, err = kubelab(capsys, "cluster", "prepare", "--kubeconfig", str(kubeconfig))
    assert code == 0, out + err
    assert "0 created" in out and "0 needs cluster-admin" in out, out
    assert resource_versions(client) == before

    code, out, _ = kubelab(capsys, "check", "01", "--namespace", f"absent-{used}")
    assert code != 0 and "does not exist" in out + _, out
