"""The course cluster in the learner's own kubeconfig: added as `kind create cluster` adds one,
backed up once, no other entry touched, and removed again exactly."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubelab.cluster import state, user_kubeconfig

THEIRS = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "work", "cluster": {"server": "https://work.example:6443"}}],
    "users": [{"name": "me", "user": {"token": "secret-token"}}],
    "contexts": [{"name": "work", "context": {"cluster": "work", "user": "me"}}],
    "current-context": "work",
    "preferences": {},
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME, cache and KUBECONFIG of the test's own: the developer's files are never read."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KUBELAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture
def cluster_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig as kwokctl writes one: certificates by path."""
    pki = tmp_path / "pki"
    pki.mkdir()
    for name in ("ca.crt", "admin.crt", "admin.key"):
        (pki / name).write_text(f"-----BEGIN {name}-----\n")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kwok-x",
                "cluster": {
                    "server": "https://127.0.0.1:32725",
                    "certificate-authority": str(pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": "kwok-x",
                "user": {
                    "client-certificate": str(pki / "admin.crt"),
                    "client-key": str(pki / "admin.key"),
                },
            }
        ],
        "contexts": [{"name": "kwok-x", "context": {"cluster": "kwok-x", "user": "kwok-x"}}],
        "current-context": "kwok-x",
    }
    path = tmp_path / "cluster.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def _read(path: Path) -> dict:  # type: ignore[type-arg]
    loaded: dict = yaml.safe_load(path.read_text())  # type: ignore[type-arg]
    return loaded


def _named(config: dict, kind: str, name: str) -> dict | None:  # type: ignore[type-arg]
    return next((e for e in config.get(kind) or [] if e["name"] == name), None)


def _others(config: dict) -> dict:  # type: ignore[type-arg]
    """Every entry not named kubelab, and the current context."""
    return {
        kind: [e for e in config.get(kind) or [] if e["name"] != "kubelab"]
        for kind in ("clusters", "users", "contexts")
    } | {"current-context": config.get("current-context") or ""}


def test_up_writes_a_kubelab_context_into_a_new_kube_config(
    home: Path, cluster_kubeconfig: Path
) -> None:
    added = user_kubeconfig.add("kubelab", cluster_kubeconfig)
    target = home / ".kube" / "config"
    assert added == user_kubeconfig.Added(target, "kubelab", current=True)
    config = _read(target)
    assert config["current-context"] == "kubelab"
    assert _named(config, "contexts", "kubelab")["context"] == {  # type: ignore[index]
        "cluster": "kubelab",
        "user": "kubelab",
    }
    cluster = _named(config, "clusters", "kubelab")["cluster"]  # type: ignore[index]
    assert cluster["server"] == "https://127.0.0.1:32725"
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    assert ca == "-----BEGIN ca.crt-----\n"  # inline, as kind writes it
    user = _named(config, "users", "kubelab")["user"]  # type: ignore[index]
    assert base64.b64decode(user["client-key-data"]).decode() == "-----BEGIN admin.key-----\n"
    assert not (home / ".kube" / "config.kubelab-backup").exists()  # nothing was there to keep
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_up_keeps_other_contexts_and_the_current_one(home: Path, cluster_kubeconfig: Path) -> None:
    target = home / ".kube" / "config"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump(THEIRS))
    original = target.read_text()
    added = user_kubeconfig.add("kubelab", cluster_kubeconfig)
    assert added is not None and not added.current
    config = _read(target)
    assert _others(config) == _others(THEIRS)
    assert _named(config, "contexts", "kubelab")
    backup = home / ".kube" / "config.kubelab-backup"
    assert backup.read_text() == original
    # A second `up` keeps the first backup: it is the file before kubelab ever touched it.
    user_kubeconfig.add("kubelab", cluster_kubeconfig)
    assert backup.read_text() == original


def test_down_removes_exactly_what_up_added(home: Path, cluster_kubeconfig: Path) -> None:
    target = home / ".kube" / "config"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump(THEIRS))
    user_kubeconfig.add("kubelab", cluster_kubeconfig)
    removed = user_kubeconfig.remove("kubelab")
    assert removed == user_kubeconfig.Added(target, "kubelab", current=False)
    config = _read(target)
    assert _others(config) == _others(THEIRS)
    assert not any(_named(config, kind, "kubelab") for kind in ("clusters", "users", "contexts"))
    assert user_kubeconfig.remove("kubelab") is None  # nothing recorded any more: nothing to do


def test_kubelabs_context_made_current_is_unset_by_down(
    home: Path, cluster_kubeconfig: Path
) -> None:
    target = home / ".kube" / "config"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump({**THEIRS, "current-context": ""}))
    assert user_kubeconfig.add("kubelab", cluster_kubeconfig).current  # type: ignore[union-attr]
    # kubelab's context stays current across a second `up` (it was kubelab's)
    assert user_kubeconfig.add("kubelab", cluster_kubeconfig).current  # type: ignore[union-attr]
    user_kubeconfig.remove("kubelab")
    config = _read(target)
    assert not config.get("current-context")
    assert _others(config)["contexts"] == THEIRS["contexts"]


def test_up_writes_to_the_first_file_of_kubeconfig(
    home: Path, cluster_kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    second.write_text(yaml.safe_dump(THEIRS))
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(second)]))
    added = user_kubeconfig.add("kubelab", cluster_kubeconfig)
    assert added is not None and added.file == first
    assert _named(_read(first), "contexts", "kubelab")
    assert _read(second) == THEIRS
    assert not (home / ".kube").exists()


def test_kubeconfig_that_is_the_clusters_own_is_left_alone(
    home: Path, cluster_kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster_kubeconfig))
    before = cluster_kubeconfig.read_text()
    assert user_kubeconfig.add("kubelab", cluster_kubeconfig) is None
    assert cluster_kubeconfig.read_text() == before


def test_opt_out_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(user_kubeconfig.OPT_OUT_ENV, raising=False)
    assert not user_kubeconfig.opted_out()
    monkeypatch.setenv(user_kubeconfig.OPT_OUT_ENV, "0")
    assert not user_kubeconfig.opted_out()
    monkeypatch.setenv(user_kubeconfig.OPT_OUT_ENV, "1")
    assert user_kubeconfig.opted_out()


def test_cluster_down_command_removes_the_context(
    home: Path, cluster_kubeconfig: Path, tmp_path: Path
) -> None:
    # A cluster kubelab did not start (down leaves it running), so no cluster is needed.
    user_kubeconfig.add("wired", cluster_kubeconfig)
    state.record("wired", "existing", kubeconfig=str(cluster_kubeconfig))
    env = dict(os.environ)  # HOME and KUBELAB_CACHE: the test's own (the `home` fixture)
    proc = subprocess.run(
        [sys.executable, "-m", "kubelab", "cluster", "--name", "wired", "down"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    target = home / ".kube" / "config"
    assert f"removed context 'wired' from {target}" in proc.stdout
    config = _read(target)
    assert not any(_named(config, kind, "wired") for kind in ("clusters", "users", "contexts"))
    assert not config.get("current-context")
