"""`kubelab cluster use | check | prepare` without a cluster: kubeconfig handling, one-line
errors for a dead server or a wrong context, the registration's lifecycle, the table, the parts."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubelab import api
from kubelab.cluster import backend_for, existing, parts, recorded, state
from kubelab.cluster.findings import MISSING, NO_ACCESS, OK, WARN, Finding, table
from kubelab.errors import KubelabError


def kubeconfig(
    path: Path, server: str, *, contexts: tuple[str, ...] = ("a", "b"), files: bool = True
) -> Path:
    """A kubeconfig with one cluster/user per context; `a` is current; relative file paths."""
    cluster: dict[str, Any] = {"server": server}
    user: dict[str, Any] = {}
    if files:
        cluster["certificate-authority"] = "ca.crt"
        user["tokenFile"] = "../tok"
    else:
        cluster["insecure-skip-tls-verify"] = True
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": f"c-{c}", "cluster": cluster} for c in contexts],
                "users": [
                    {"name": f"u-{c}", "user": {"token": f"token-{c}", **user}} for c in contexts
                ],
                "contexts": [
                    {"name": c, "context": {"cluster": f"c-{c}", "user": f"u-{c}", "namespace": c}}
                    for c in contexts
                ],
                "current-context": contexts[0],
            }
        )
    )
    return path


def dead_server() -> str:
    """An https URL on a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"https://127.0.0.1:{port}"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv("KUBELAB_CACHE", str(where))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return where


def run(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["KUBELAB_CACHE"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "kubelab", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# --- the one-context copy ----------------------------------------------------------------------


def test_single_context_keeps_only_that_context_with_absolute_paths(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    src = kubeconfig(tmp_path / "conf" / "kc.yaml", "https://k.example:6443")
    name, copy = existing.single_context(src, "b")
    assert name == "b" and copy["current-context"] == "b"
    assert [c["name"] for c in copy["contexts"]] == ["b"]
    assert [c["name"] for c in copy["clusters"]] == ["c-b"]
    assert copy["users"] == [
        {"name": "u-b", "user": {"token": "token-b", "tokenFile": str(tmp_path / "tok")}}
    ]
    assert copy["clusters"][0]["cluster"]["certificate-authority"] == str(
        tmp_path / "conf" / "ca.crt"
    )
    assert copy["contexts"][0]["context"]["namespace"] == "b"
    # without --context: the file's current one
    assert existing.single_context(src, None)[0] == "a"


def test_wrong_context_names_the_ones_there(tmp_path: Path) -> None:
    src = kubeconfig(tmp_path / "kc", "https://k.example")
    with pytest.raises(KubelabError, match=r"no context 'nope' in .*\(it has: a, b\)"):
        existing.single_context(src, "nope")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clusters: [\n  - {name: x", "not valid YAML"),
        ("just: a map\n", "is not a kubeconfig"),
    ],
)
def test_unusable_kubeconfig_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    src = tmp_path / "kc"
    src.write_text(text)
    with pytest.raises(KubelabError, match=message):
        existing.single_context(src, None)
    with pytest.raises(KubelabError, match="no kubeconfig at"):
        existing.single_context(tmp_path / "absent", None)


# --- registration --------------------------------------------------------------------------------


def test_registration_lifecycle(tmp_path: Path, cache: Path) -> None:
    src = kubeconfig(tmp_path / "kc", "https://one.example:6443")
    backend = existing.ExistingBackend("far")
    assert not backend.exists() and recorded("far") is None
    assert backend.register(src, "b") == "b"
    assert state.details("far") == {"backend": "existing", "kubeconfig": str(src), "context": "b"}
    found = recorded("far")
    assert isinstance(found, existing.ExistingBackend) and found.exists()
    copy = backend.kubeconfig_path()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600  # it holds credentials
    assert yaml.safe_load(copy.read_text())["current-context"] == "b"

    # the course's commands find it as they find a sim or kind cluster
    os.environ["KUBELAB_CLUSTER"] = "far"
    try:
        assert api.default_kubeconfig() == str(copy)
    finally:
        del os.environ["KUBELAB_CLUSTER"]

    # the source changes (a rotated token): the copy follows
    time.sleep(0.01)
    kubeconfig(src, "https://two.example:6443")
    os.utime(src, (time.time() + 5, time.time() + 5))
    conf: dict[str, Any] = yaml.safe_load(backend.kubeconfig_path().read_text())
    assert conf["clusters"][0]["cluster"]["server"] == "https://two.example:6443"

    # `up --backend sim` under its name is refused; `down` forgets it without touching it
    with pytest.raises(KubelabError, match="existing cluster registered"):
        backend_for("far", "sim")
    assert isinstance(backend_for("far", "auto"), existing.ExistingBackend)
    backend.down()
    assert recorded("far") is None and not copy.exists() and src.is_file()


def test_status_of_a_dead_registered_cluster(tmp_path: Path, cache: Path) -> None:
    backend = existing.ExistingBackend("gone")
    backend.register(kubeconfig(tmp_path / "kc", dead_server(), files=False), None)
    status = backend.status()
    assert not status.running and "does not answer" in status.detail
    with pytest.raises(KubelabError, match="does not answer"):
        backend.up()


# --- the CLI: one line, exit 2, nothing recorded -------------------------------------------------


def test_use_with_a_wrong_context_is_one_line(tmp_path: Path, cache: Path) -> None:
    src = kubeconfig(tmp_path / "kc", dead_server(), files=False)
    proc = run(
        "cluster", "--name", "x", "use", "--kubeconfig", str(src), "--context", "zz", cache=cache
    )
    one_line_error(proc, "no context 'zz'", "a, b")
    assert not (cache / "clusters" / "x.json").exists()


def test_use_of_a_dead_server_is_one_line_and_records_nothing(tmp_path: Path, cache: Path) -> None:
    server = dead_server()
    src = kubeconfig(tmp_path / "kc", server, files=False)
    proc = run("cluster", "--name", "x", "use", "--kubeconfig", str(src), cache=cache)
    one_line_error(proc, server)
    assert not (cache / "clusters" / "x.json").exists()
    for command in ("check", "doctor", "prepare"):
        proc = run("cluster", command, "--kubeconfig", str(src), "--context", "b", cache=cache)
        one_line_error(proc, server)


def test_use_of_a_missing_file_is_one_line(tmp_path: Path, cache: Path) -> None:
    proc = run("cluster", "use", "--kubeconfig", str(tmp_path / "nope"), cache=cache)
    one_line_error(proc, "no kubeconfig at")


# --- the table and the parts ---------------------------------------------------------------------


def test_table_is_one_row_per_requirement() -> None:
    rows = [
        Finding("metrics API", "served", OK),
        Finding("StorageClass fast-ssd", "not readable", NO_ACCESS, "needs cluster-admin to check"),
        Finding("Kubernetes version", "v1.33.1", WARN, "older than 1.36"),
    ]
    text = table(rows).splitlines()
    assert text[0].split() == ["REQUIREMENT", "FOUND", "STATUS", "WHAT", "TO", "DO"]
    assert len(text) == 4
    status_at = text[0].index("STATUS")
    assert [line[status_at:].split("  ")[0] for line in text[1:]] == ["ok", "no access", "warn"]
    assert [r.failing for r in rows] == [False, True, False]
    assert Finding("x", "absent", MISSING).failing


def test_pre_existing_objects_are_compared_not_changed() -> None:
    want = {"kind": "StorageClass", "provisioner": "p", "parameters": {"type": "ssd"}}
    assert parts.subset_difference(want, {**want, "extra": 1, "metadata": {"x": 1}}) is None
    other = {"kind": "StorageClass", "provisioner": "q", "parameters": {"type": "hdd"}}
    assert parts.subset_difference(want, other) == "differs in parameters, provisioner"


def test_bundle_versions_order() -> None:
    assert parts.version_key("v1.6.3") > parts.version_key("v1.5.10") > parts.version_key(None)
    assert parts.version_key("v1.6.0-rc.1") == parts.version_key("v1.6.0")

    def crd(v: str) -> dict[str, Any]:
        return {"metadata": {"annotations": {parts.BUNDLE_VERSION: v}}}

    assert parts._crd_compare(crd("v1.6.3"), crd("v1.4.0")) == (
        "bundle v1.4.0, older than kubelab's v1.6.3"
    )
    assert parts._crd_compare(crd("v1.6.3"), crd("v1.7.0")) is None  # newer: fine, never replaced


def test_every_part_has_a_unique_name_and_register_replaces() -> None:
    names = [p.name for p in parts.PARTS]
    assert len(names) == len(set(names))
    before = list(parts.PARTS)
    try:
        extra = parts.Part("shared ClusterRoles", lambda _t: [])
        parts.register(extra)
        parts.register(parts.Part("shared ClusterRoles", lambda _t: []))
        assert [p.name for p in parts.PARTS].count("shared ClusterRoles") == 1
        assert parts.PARTS[-1] is not extra
    finally:
        parts.PARTS[:] = before


def test_crds_part_is_the_vendored_file() -> None:
    crds = parts.crd_objects(None)  # type: ignore[arg-type]
    kinds = {c["kind"] for c in crds}
    # the bundle's own ValidatingAdmissionPolicy (safe upgrades) comes with it
    assert kinds <= {
        "CustomResourceDefinition",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    names = [c["metadata"]["name"] for c in crds if c["kind"] == "CustomResourceDefinition"]
    assert "gateways.gateway.networking.k8s.io" in names and len(names) >= 5
    versions = {parts._version(c) for c in crds if c["kind"] == "CustomResourceDefinition"}
    assert len(versions) == 1 and None not in versions


def test_an_unusable_file_named_in_it_is_one_line_naming_the_source(
    tmp_path: Path, cache: Path
) -> None:
    src = kubeconfig(tmp_path / "kc", dead_server())  # ca.crt does not exist
    proc = run("cluster", "check", "--kubeconfig", str(src), cache=cache)
    line = one_line_error(proc, str(src), "ca.crt")
    assert "/kubelab-" not in line  # not the temporary copy's path


def test_a_context_alone_is_read_from_kubeconfig(tmp_path: Path, cache: Path) -> None:
    src = kubeconfig(tmp_path / "kc", dead_server(), files=False)
    env = {k: v for k, v in os.environ.items()}
    env.update(KUBELAB_CACHE=str(cache), KUBECONFIG=str(src))
    proc = subprocess.run(
        [sys.executable, "-m", "kubelab", "cluster", "check", "--context", "b"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    one_line_error(proc, f"context b of {src}")


class FakeApi:
    """Answers GETs from a dict of path -> JSON (404 otherwise); lists from `objects`."""

    server = "https://fake.example"

    def __init__(self, answers: dict[str, Any], objects: dict[str, list[Any]] | None = None):
        self.answers = answers
        self.objects = objects or {}

    def request(self, method: str, path: str, **_: Any) -> Any:
        if path in self.answers:
            return self.answers[path]
        raise api.ApiError(404, "NotFound", f"not found (404): {path}")

    def list(self, res: api.Resource, namespace: str | None = None, **_: Any) -> list[Any]:
        return self.objects.get(res.plural, [])


@pytest.mark.parametrize(
    ("git", "status", "lacking"),
    [
        ("v1.36.3", OK, ""),
        ("v1.37.0-alpha.1", OK, ""),
        ("v1.33.5-eks-123", WARN, "untested"),
        ("v1.29.4+k3s1", WARN, "ValidatingAdmissionPolicy v1"),
    ],
)
def test_version_row_names_what_an_older_server_lacks(git: str, status: str, lacking: str) -> None:
    from kubelab.cluster.requirements import Checker

    row = Checker(FakeApi({"/version": {"gitVersion": git}})).version()  # type: ignore[arg-type]
    assert (row.found, row.status) == (git, status)
    assert lacking in row.todo
    if git.startswith("v1.29"):
        assert "API Priority" not in row.todo  # 1.29 has flowcontrol v1


def gateway_api(*classes: tuple[str, str, bool]) -> FakeApi:
    discovery = {
        "/apis/gateway.networking.k8s.io/v1": {
            "resources": [{"name": "gatewayclasses", "kind": "GatewayClass", "namespaced": False}]
        }
    }
    items = [
        {
            "metadata": {"name": name},
            "spec": {"controllerName": controller},
            "status": {"conditions": [{"type": "Accepted", "status": str(ok)}]},
        }
        for name, controller, ok in classes
    ]
    return FakeApi(discovery, {"gatewayclasses": items})


def test_gatewayclass_kubelab_goes_to_the_one_controller_there() -> None:
    def target(fake: FakeApi) -> parts.Target:
        return parts.Target(fake)  # type: ignore[arg-type]

    one = gateway_api(("traefik", "traefik.io/gateway-controller", True), ("x", "dead.io/c", False))
    (gc,) = parts.gatewayclass_objects(target(one))
    assert gc["metadata"]["name"] == "kubelab"
    assert gc["spec"]["controllerName"] == "traefik.io/gateway-controller"
    with pytest.raises(parts.Skip, match="needs a Gateway controller"):
        parts.gatewayclass_objects(target(gateway_api(("x", "dead.io/c", False))))
    two = gateway_api(("a", "a.io/c", True), ("b", "b.io/c", True))
    with pytest.raises(parts.Skip, match=r"several Gateway controllers answer \(a.io/c, b.io/c\)"):
        parts.gatewayclass_objects(target(two))
    with pytest.raises(parts.Skip, match="Gateway API CRDs come first"):
        parts.gatewayclass_objects(target(FakeApi({})))
    row = parts.gatewayclass_check(target(two), parts.PARTS[1])
    assert (row.found, row.status) == ("absent", MISSING)


def test_the_client_finds_every_backends_kubeconfig_from_the_record(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # api.default_kubeconfig reads the record (kubelab.cluster_files), not the backends: the
    # paths it finds are the ones the backends themselves use.
    from kubelab import cluster_files
    from kubelab.cluster.kind import KindBackend
    from kubelab.cluster.sim import SimBackend

    monkeypatch.setenv("KUBELAB_CLUSTER", "rec")
    assert cluster_files.recorded_kubeconfig("rec") is None
    assert api.default_kubeconfig() == str(Path.home() / ".kube" / "config")
    state.record("rec", "sim")
    assert api.default_kubeconfig() == str(SimBackend("rec").kubeconfig_path())
    assert SimBackend("rec").kubeconfig_path().is_relative_to(cache)
    state.record("rec", "kind")
    assert api.default_kubeconfig() == str(KindBackend("rec").kubeconfig_path())
    state.forget("rec")
    assert cluster_files.recorded_kubeconfig("rec") is None
