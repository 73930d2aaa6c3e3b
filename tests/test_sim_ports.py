"""Sim clusters on one machine never share a port, even while one of them is stopped."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml

from kubelab.cluster.sim import PORT_OPTIONS, SimBackend


def _saved(workdir: Path, cluster: str, ports: dict[str, int]) -> None:
    folder = workdir / "clusters" / cluster
    folder.mkdir(parents=True)
    doc = {"kind": "KwokctlConfiguration", "options": ports}
    (folder / "kwok.yaml").write_text(yaml.safe_dump(doc))


def test_ports_avoid_other_clusters_saved_ports_and_bound_ones(tmp_path: Path) -> None:
    # A stopped cluster holds nothing bound, but will take its ports back when restarted.
    stopped = {option: 32767 - i for i, option in enumerate(PORT_OPTIONS)}
    _saved(tmp_path, "stopped", stopped)
    with socket.socket() as busy:
        # Hold the highest port below the stopped cluster's that is free (real clusters on this
        # machine may hold some): the one the picker would otherwise take first.
        for port in range(32767 - len(PORT_OPTIONS), 30000, -1):
            try:
                busy.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        chosen = SimBackend("new", workdir=tmp_path)._pick_ports(None)
        held = busy.getsockname()[1]
    assert set(chosen) == set(PORT_OPTIONS)
    assert len(set(chosen.values())) == len(PORT_OPTIONS)
    assert not set(chosen.values()) & set(stopped.values())
    assert held not in chosen.values()
    assert all(20000 <= p < 32768 for p in chosen.values())  # below the clients' port range


def test_an_asked_for_api_port_is_kept_and_its_own_saved_ports_do_not_count(
    tmp_path: Path,
) -> None:
    _saved(tmp_path, "again", {"kubeApiserverPort": 32767})  # this cluster's own, earlier
    chosen = SimBackend("again", workdir=tmp_path)._pick_ports(31000)
    assert chosen["kubeApiserverPort"] == 31000
    assert 32767 in chosen.values()
