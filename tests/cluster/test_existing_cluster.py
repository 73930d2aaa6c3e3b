"""The sim cluster used as an "existing" one: `kubelab cluster use | check | prepare` against it.

`use` registers the sim's admin kubeconfig under another name; `check` must see what the sim has;
`prepare` must create only what is absent (labelled as kubelab's), leave every object it did not
create as it was, and say what needs cluster-admin; `kubelab check 02` then grades through the
registered cluster. Tests that delete or plant cluster-wide objects put the sim's add-ons back.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubelab import api, cli, labs
from kubelab.cluster import existing, parts, recorded
from kubelab.cluster.sim import SimBackend
from tests.conftest import Kubectl, token_kubeconfig
from tests.lab_attempt import LabAttempt

GATEWAY_V1 = "gateway.networking.k8s.io/v1"
SPARE_CRD = "tlsroutes.gateway.networking.k8s.io"  # no lab or test uses TLSRoutes
OLD_CRD = "udproutes.gateway.networking.k8s.io"
MANAGED = f"{parts.MANAGED_BY}={parts.KUBELAB}"
VENDORED_BUNDLE = parts._version(parts.crd_objects(None)[0])  # type: ignore[arg-type]


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No KUBECONFIG: commands find the cluster as a learner's would, by its recorded name.
    Progress that `kubelab check` saves goes to a scratch folder."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBELAB_DATA", str(tmp_path / "data"))
    return monkeypatch


@pytest.fixture
def used(kubeconfig: Path, quiet_env: pytest.MonkeyPatch) -> Iterator[str]:
    """A name under which nothing is recorded yet; the registration is forgotten afterwards."""
    name = f"kt-used-{uuid.uuid4().hex[:6]}"
    quiet_env.setenv("KUBELAB_CLUSTER", name)
    yield name
    backend = existing.ExistingBackend(name)
    if backend.exists():
        backend.down()


def kubelab(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in this process; return (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> dict[str, tuple[str, str, str]]:
    """Parse the requirement table: requirement -> (found, status, what to do)."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("REQUIREMENT"))
    header = lines[head]
    cols = [header.index(c) for c in ("FOUND", "STATUS", "WHAT TO DO")]
    table: dict[str, tuple[str, str, str]] = {}
    for line in lines[head + 1 :]:
        if not line.strip():
            break
        table[line[: cols[0]].strip()] = (
            line[cols[0] : cols[1]].strip(),
            line[cols[1] : cols[2]].strip(),
            line[cols[2] :].strip(),
        )
    return table


def actions(out: str) -> list[tuple[str, str]]:
    """Parse prepare's lines into (what it did, the rest), e.g. ("kept", "StorageClass x: ...")."""
    return [
        (line[:19].strip(), line[20:]) for line in out.split("\n\n")[0].splitlines() if line.strip()
    ]


def one_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], lines[0]


def resource_versions(client: api.Api) -> dict[str, str]:
    """resourceVersion of every cluster-wide object the course parts cover."""
    target = parts.Target(client)
    seen = {}
    for part in parts.PARTS:
        try:
            desired = part.objects(target)
        except parts.Skip:
            continue
        for d in desired:
            f = parts.look(target, d)
            if f.current is not None:
                seen[f.label] = f.current["metadata"]["resourceVersion"]
    return seen


@pytest.fixture
def restore_addons(sim: SimBackend, kubectl: Kubectl) -> Iterator[None]:
    """Put the sim's add-ons back as `cluster up` made them (dropping what prepare created)."""
    yield
    # only what prepare creates: cluster-wide classes and CRDs, and kube-public's substrate
    for kind in ("storageclass", "gatewayclass", "crd"):
        kubectl("delete", kind, "-l", MANAGED, check=False)
    kubectl("delete", "storageclass", "fast-ssd", check=False)  # a planted one too (immutable)
    for kind in ("configmap", "role", "rolebinding"):
        kubectl("-n", "kube-public", "delete", kind, "-l", MANAGED, check=False)
    kubectl("delete", "gatewayclass", "-l", "kubelab.dev/test=fake-controller", check=False)
    sim._apply_addons()


# --- use, then everything works there -------------------------------------------------------------


def test_use_registers_the_cluster_and_shows_what_it_has(
    used: str, kubeconfig: Path, client: api.Api, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = kubelab(capsys, "cluster", "use", "--kubeconfig", str(kubeconfig))
    assert code == 0, out + err
    backend = recorded(used)
    assert isinstance(backend, existing.ExistingBackend)
    copy = backend.kubeconfig_path()
    assert api.default_kubeconfig() == str(copy)
    assert f"cluster {used!r} is now {client.server}" in out
    table = rows(out)
    status = {k: v[1] for k, v in table.items()}
    assert status == {
        "API server and credentials": "ok",
        "Kubernetes version": "ok",
        "cluster-admin credentials": "ok",
        "RBAC authorization": "ok",
        "Ready nodes": "ok",
        "metrics API (metrics.k8s.io)": "ok",
        "default StorageClass": "ok",
        "Pod Security admission": "ok",
        "ValidatingAdmissionPolicy API": "ok",
        "flow control (APF) API": "ok",
        "Gateway API CRDs": "ok",
        "GatewayClass kubelab": "warn",  # the sim has no Gateway controller
        "StorageClass fast-ssd": "ok",
        "substrate ConfigMap": "ok",
        # the course's clusters come up fenced
        "kubelab ClusterRoles": "ok",
        "fence admission policies": "ok",
        "fence API fairness": "ok",
    }, out
    assert table["Kubernetes version"][0].startswith("v1.36.")
    assert table["RBAC authorization"][0] == "on (a stranger is refused)"
    assert table["default StorageClass"][0] == "standard (kubernetes.io/host-path)"
    assert "sim: no data plane" in table["GatewayClass kubelab"][2]
    assert "the cluster has what the course needs" in out
    # the check left no scratch namespace behind
    assert not [
        n
        for n in client.list(api.NAMESPACES, labels=MANAGED)
        if n["metadata"]["name"].startswith("kubelab-check-")
        and not n["metadata"].get("deletionTimestamp")
    ]

    code, out, _ = kubelab(capsys, "cluster", "status")
    assert code == 0 and "existing" in out and "Ready" in out, out
    code, out, _ = kubelab(capsys, "cluster", "kubeconfig")
    assert out.strip() == str(copy)
    code, out, _ = kubelab(capsys, "cluster", "doctor")  # checks the used cluster by default
    assert code == 0 and rows(out).keys() == table.keys()

    code, out, _ = kubelab(capsys, "cluster", "down")
    assert code == 0 and "not touched" in out
    assert recorded(used) is None
    assert client.request("GET", "/version")  # the cluster itself still runs


def test_check_and_reset_work_through_the_used_cluster(
    used: str,
    kubeconfig: Path,
    kubectl: Kubectl,
    client: api.Api,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lab = labs.find("02-deployment")
    code, out, err = kubelab(capsys, "cluster", "use", "--kubeconfig", str(kubeconfig))
    assert code == 0, out + err
    attempt = LabAttempt(lab, kubectl, client)
    try:
        attempt.apply(lab.directory / "solution" / "overlays" / "prod")
        attempt.apply(lab.directory / "solution" / "overlays" / "dev")
        attempt.run("set", "image", "deployment/demo-web", "web=kubelab/demo-web:v2")
        attempt.run("rollout", "status", "deployment/demo-web", "--timeout=60s")
        code, out, err = kubelab(capsys, "check", "02", "-n", attempt.name, "--json")
        assert code == 0, out + err
        report: dict[str, Any] = yaml.safe_load(out)
        assert report["score"] == report["max_score"] == lab.max_score

        code, out, err = kubelab(capsys, "reset", "02", "-n", attempt.name)
        assert code == 0 and f"namespace {attempt.name} is ready" in out, out + err
        code, out, _ = kubelab(capsys, "check", "02", "-n", attempt.name, "--timeout", "5")
        assert code == 1, out
    finally:
        attempt.delete()


def test_a_workshop_runs_on_the_used_cluster(
    used: str,
    kubeconfig: Path,
    client: api.Api,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = kubelab(capsys, "cluster", "use", "--kubeconfig", str(kubeconfig))
    assert code == 0, out + err
    folder = tmp_path / "kubeconfigs"
    up = ("workshop", "up", "--participants", "1", "--labs", "02", "--out", str(folder))
    code, out, err = kubelab(capsys, *up)
    assert code == 0, out + err
    given = yaml.safe_load((folder / "p01.kubeconfig").read_text())
    assert given["clusters"][0]["cluster"]["server"] == client.server
    code, out, err = kubelab(capsys, "workshop", "down", "--out", str(folder))
    assert code == 0 and "removed 1 participants" in out, out + err


def test_use_refuses_a_dead_server_or_a_wrong_context(
    used: str,
    kubeconfig: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = yaml.safe_load(kubeconfig.read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{s.getsockname()[1]}"
    for c in config["clusters"]:
        c["cluster"]["server"] = dead
    gone = tmp_path / "dead.kubeconfig"
    gone.write_text(yaml.safe_dump(config))
    code, _, err = kubelab(capsys, "cluster", "use", "--kubeconfig", str(gone))
    one_line(code, err, dead)
    assert recorded(used) is None
    for command in ("check", "prepare"):
        code, _, err = kubelab(capsys, "cluster", command, "--kubeconfig", str(gone))
        one_line(code, err, dead)

    code, _, err = kubelab(
        capsys, "cluster", "use", "--kubeconfig", str(kubeconfig), "--context", "nope"
    )
    one_line(code, err, "no context 'nope'", str(kubeconfig))
    assert recorded(used) is None


def test_use_will_not_shadow_a_sim_cluster(
    sim: SimBackend,
    kubeconfig: Path,
    quiet_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = kubelab(
        capsys, "cluster", "--name", sim.cluster, "use", "--kubeconfig", str(kubeconfig)
    )
    one_line(code, err, "runs on sim")
    assert recorded(sim.cluster) is not None and recorded(sim.cluster).name == "sim"  # type: ignore[union-attr]


# --- prepare -------------------------------------------------------------------------------------


def test_prepare_on_the_sim_changes_nothing_it_did_not_create(
    kubeconfig: Path,
    client: api.Api,
    quiet_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = resource_versions(client)
    for _ in range(2):
        code, out, err = kubelab(capsys, "cluster", "prepare", "--kubeconfig", str(kubeconfig))
        assert code == 0, out + err
        assert "0 created" in out and "0 needs cluster-admin" in out, out
        assert ("kept", "StorageClass fast-ssd: not created by kubelab, left as it is") in actions(
            out
        ), out
        assert "GatewayClass kubelab" in out
    assert resource_versions(client) == before


@pytest.mark.usefixtures("restore_addons")
def test_prepare_installs_what_is_missing_once(
    kubeconfig: Path,
    client: api.Api,
    kubectl: Kubectl,
    quiet_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A Gateway controller that has accepted its own class (faked: the sim runs none).
    kubectl(
        "apply",
        "-f",
        "-",
        stdin=yaml.safe_dump(
            {
                "apiVersion": GATEWAY_V1,
                "kind": "GatewayClass",
                "metadata": {"name": "kt-other", "labels": {"kubelab.dev/test": "fake-controller"}},
                "spec": {"controllerName": "example.com/gateway-controller"},
            }
        ),
    )
    res = api.Resource(GATEWAY_V1, "gatewayclasses", "GatewayClass", namespaced=False)
    gen = client.get(res, "kt-other")["metadata"]["generation"]  # type: ignore[index]
    client.request(
        "PATCH",
        res.path(None, "kt-other") + "/status",
        body={
            "status": {
                "conditions": [
                    {
                        "type": "Accepted",
                        "status": "True",
                        "reason": "Accepted",
                        "message": "faked by the test",
                        "observedGeneration": gen,
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ]
            }
        },
        content_type="application/merge-patch+json",
    )
    kubectl("delete", "storageclass", "fast-ssd")
    kubectl("delete", "gatewayclass", "kubelab")
    kubectl("delete", "crd", SPARE_CRD)
    kubectl("-n", "kube-public", "delete", "configmap", "kubelab-cluster")

    code, out, _ = kubelab(capsys, "cluster", "check", "--kubeconfig", str(kubeconfig))
    assert code == 1, out
    table = rows(out)
    missing = {k for k, v in table.items() if v[1] == "missing"}
    assert missing == {
        "Gateway API CRDs",
        "GatewayClass kubelab",
        "StorageClass fast-ssd",
        "substrate ConfigMap",
    }, out
    assert SPARE_CRD in table["Gateway API CRDs"][0]
    assert "example.com/gateway-controller" in table["GatewayClass kubelab"][2]

    code, out, err = kubelab(capsys, "cluster", "prepare", "--kubeconfig", str(kubeconfig))
    assert code == 0, out + err
    created = sorted(rest.split(":")[0] for what, rest in actions(out) if what == "created")
    assert created == [
        "ConfigMap kube-public/kubelab-cluster",
        f"CustomResourceDefinition {SPARE_CRD}",
        "GatewayClass kubelab",
        "StorageClass fast-ssd",
    ], out
    assert "4 created" in out

    sc = client.get(api.STORAGECLASSES, "fast-ssd")
    assert sc is not None and sc["metadata"]["labels"][parts.MANAGED_BY] == "kubelab"
    assert sc["provisioner"] == "kubernetes.io/host-path"  # the default class's
    gc = client.get(res, "kubelab")
    assert gc is not None and gc["spec"]["controllerName"] == "example.com/gateway-controller"
    cm = client.get(api.CONFIGMAPS, "kubelab-cluster", "kube-public")
    assert cm is not None and cm["data"] == {"substrate": "sim"}  # KWOK nodes
    crd = client.get(api.CRDS, SPARE_CRD)
    assert crd is not None and crd["metadata"]["labels"][parts.MANAGED_BY] == "kubelab"
    # the Role and RoleBinding of the substrate part were there already: kept, not relabelled
    role = client.get(api.ROLES, "kubelab-cluster-reader", "kube-public")
    assert role is not None and parts.MANAGED_BY not in (role["metadata"].get("labels") or {})

    before = resource_versions(client)
    code, out, _ = kubelab(capsys, "cluster", "prepare", "--kubeconfig", str(kubeconfig))
    assert code == 0 and "0 created" in out, out
    assert (
        "present",
        f"CustomResourceDefinition {SPARE_CRD}: created by kubelab earlier",
    ) in actions(out), out
    assert resource_versions(client) == before
    code, out, _ = kubelab(capsys, "cluster", "check", "--kubeconfig", str(kubeconfig))
    assert code == 0, out
    assert rows(out)["GatewayClass kubelab"][:2] == (
        "present, not accepted by any controller (example.com/gateway-controller)",
        "warn",
    )

    # kubelab's own CRD, older than the vendored one (an earlier kubelab made it): upgraded
    kubectl("annotate", "crd", SPARE_CRD, f"{parts.BUNDLE_VERSION}=v1.6.0-rc.1", "--overwrite")
    code, out, _ = kubelab(capsys, "cluster", "check", "--kubeconfig", str(kubeconfig))
    assert rows(out)["Gateway API CRDs"][1:] == (
        "warn",
        "`kubelab cluster prepare` updates what kubelab created",
    ), out
    code, out, _ = kubelab(capsys, "cluster", "prepare", "--kubeconfig", str(kubeconfig))
    assert code == 0 and "0 created, 1 updated" in out, out
    assert (
        "upgraded",
        f"CustomResourceDefinition {SPARE_CRD}: to {VENDORED_BUNDLE}",
    ) in actions(out), out
    crd = client.get(api.CRDS, SPARE_CRD)
    assert crd is not None and parts._version(crd) == VENDORED_BUNDLE
    assert crd["metadata"]["labels"][parts.MANAGED_BY] == "kubelab"


@pytest.mark.usefixtures("restore_addons")
def test_a_pre_existing_fast_ssd_and_older_crds_are_reported_and_left_alone(
    kubeconfig: Path,
    client: api.Api,
    kubectl: Kubectl,
    quiet_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kubectl("delete", "storageclass", "fast-ssd")
    kubectl(
        "apply",
        "-f",
        "-",
        stdin=yaml.safe_dump(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": "fast-ssd"},
                "provisioner": "example.com/nvme",
                "parameters": {"tier": "gold"},
            }
        ),
    )
    kubectl("annotate", "crd", OLD_CRD, f"{parts.BUNDLE_VERSION}=v1.6.0-rc.1", "--overwrite")
    before = resource_versions(client)

    code, out, _ = kubelab(capsys, "cluster", "check", "--kubeconfig", str(kubeconfig))
    table = rows(out)
    assert table["StorageClass fast-ssd"][1] == "warn", out
    assert "differs in provisioner" in table["StorageClass fast-ssd"][0]
    assert table["Gateway API CRDs"][1] == "warn"
    older = f"{OLD_CRD}: bundle v1.6.0-rc.1, older than kubelab's {VENDORED_BUNDLE}"
    assert older in table["Gateway API CRDs"][0]
    assert code == 0, out  # both work, with limits: warnings

    code, out, _ = kubelab(capsys, "cluster", "prepare", "--kubeconfig", str(kubeconfig))
    assert code == 0, out
    done = actions(out)
    assert (
        "kept",
        "StorageClass fast-ssd: not created by kubelab, left as it is (differs in provisioner)",
    ) in done, out
    assert (
        "kept",
        f"CustomResourceDefinition {OLD_CRD}: not created by kubelab, left as it is "
        f"(bundle v1.6.0-rc.1, older than kubelab's {VENDORED_BUNDLE})",
    ) in done, out
    assert resource_versions(client) == before
    sc = client.get(api.STORAGECLASSES, "fast-ssd")
    assert sc is not None and sc["provisioner"] == "example.com/nvme"
    crd = client.get(api.CRDS, OLD_CRD)
    assert crd is not None and crd["metadata"]["annotations"][parts.BUNDLE_VERSION] == "v1.6.0-rc.1"


def test_a_registered_part_is_checked_installed_and_kept_up_to_date(
    kubeconfig: Path,
    client: api.Api,
    kubectl: Kubectl,
    quiet_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """How the fences' ClusterRoles, admission policy and APF objects join `prepare`."""
    name = f"kt-part-{uuid.uuid4().hex[:6]}"
    theirs = f"{name}-theirs"
    data = {"level": "1"}

    def objects(_target: parts.Target) -> list[dict[str, Any]]:
        return [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": n, "namespace": "kube-public"},
                "data": dict(data),
            }
            for n in (name, theirs)
        ]

    kubectl("-n", "kube-public", "create", "configmap", theirs, "--from-literal=level=0")
    before = list(parts.PARTS)
    parts.register(parts.Part("test part", objects, why="a test"))
    prepare = ("cluster", "prepare", "--kubeconfig", str(kubeconfig))
    try:
        code, out, _ = kubelab(capsys, "cluster", "check", "--kubeconfig", str(kubeconfig))
        assert rows(out)["test part"][:2] == (f"absent: ConfigMap kube-public/{name}", "missing")
        assert code == 1, out
        code, out, _ = kubelab(capsys, *prepare)
        assert code == 0 and ("created", f"ConfigMap kube-public/{name}") in actions(out), out
        assert (
            "kept",
            f"ConfigMap kube-public/{theirs}: not created by kubelab, left as it is "
            "(differs in data)",
        ) in actions(out)

        data["level"] = "2"  # a later kubelab wants more
        code, out, _ = kubelab(capsys, *prepare)
        assert code == 0 and "0 created, 1 updated" in out, out
        assert ("updated", f"ConfigMap kube-public/{name}: differs in data") in actions(out)
        ours = client.get(api.CONFIGMAPS, name, "kube-public")
        assert ours is not None and ours["data"] == {"level": "2"}
        assert ours["metadata"]["labels"][parts.MANAGED_BY] == "kubelab"
        other = client.get(api.CONFIGMAPS, theirs, "kube-public")
        assert other is not None and other["data"] == {"level": "0"}
        assert parts.MANAGED_BY not in (other["metadata"].get("labels") or {})
    finally:
        parts.PARTS[:] = before
        kubectl("-n", "kube-public", "delete", "configmap", name, theirs, check=False)


# --- limited credentials -------------------------------------------------------------------------


def test_namespace_confined_credentials_get_needs_cluster_admin(
    kubectl: Kubectl,
    client: api.Api,
    namespace: str,
    tmp_path: Path,
    quiet_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kubectl("-n", namespace, "create", "serviceaccount", "student")
    kubectl(
        "-n",
        namespace,
        "create",
        "rolebinding",
        "student-admin",
        "--clusterrole=admin",
        f"--serviceaccount={namespace}:student",
    )
    confined = token_kubeconfig(kubectl, namespace, "student", tmp_path / "student.kubeconfig")
    before = resource_versions(client)

    code, out, err = kubelab(capsys, "cluster", "check", "--kubeconfig", str(confined))
    assert code == 1, out + err
    table = rows(out)
    user = f"system:serviceaccount:{namespace}:student"
    assert table["API server and credentials"][0].endswith(f"as {user}")
    assert table["cluster-admin credentials"][:2] == (
        f"no: {user} has only what RBAC grants it",
        "warn",
    )
    assert "needs cluster-admin" in table["cluster-admin credentials"][2]
    no_access = {k for k, v in table.items() if v[1] == "no access"}
    assert {"Ready nodes", "default StorageClass", "Pod Security admission"} <= no_access, out
    assert all("needs cluster-admin" in table[k][2] for k in no_access)
    # what every user may read still is
    assert table["metrics API (metrics.k8s.io)"][1] == "ok"
    assert table["RBAC authorization"][:2] == ("on (these credentials are limited)", "ok")

    code, out, err = kubelab(capsys, "cluster", "prepare", "--kubeconfig", str(confined))
    assert code == 1, out + err
    assert "needs cluster-admin" in out
    assert "ask the cluster's admin to run `kubelab cluster prepare`" in out
    assert "0 created" in out
    assert resource_versions(client) == before
