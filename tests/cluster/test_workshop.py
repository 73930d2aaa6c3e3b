"""`kubelab workshop` on the real sim cluster: participants get certificates the cluster signed,
grade their own copies of a lab with an unchanged `kubelab check`, cannot reach each other, show
up on the leader's board, and `down` removes exactly what `up` made.

The tests share one workshop (alice, bob, carol) and run in file order; the last takes it down.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubelab import access, api, labs
from kubelab.fence import admission, fairness
from kubelab.lab_namespaces import PARTICIPANT
from kubelab.workshop import certs
from tests.conftest import Kubectl

KUBELAB = str(Path(sys.executable).parent / "kubelab")
LAB = labs.find("02-deployment")
SOLUTION = LAB.directory / "solution" / "overlays" / "prod"
NAMES = ["alice", "bob", "carol"]


def kubelab(
    *args: str, kubeconfig: Path, data: Path, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run the `kubelab` console script as a person holding `kubeconfig` would."""
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), KUBELAB_DATA=str(data))
    env.pop("KUBELAB_NAMESPACE", None)
    return subprocess.run(
        [KUBELAB, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


class Workshop:
    """One workshop on the test cluster: its kubeconfig folder and a way to act as the leader."""

    def __init__(self, kubeconfig: Path, folder: Path) -> None:
        self.kubeconfig = kubeconfig
        self.folder = folder
        self.out = folder / "kubeconfigs"
        self.data = folder / "data"

    def leader(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `kubelab ARGS` with the cluster admin's kubeconfig."""
        return kubelab(*args, kubeconfig=self.kubeconfig, data=self.data)

    def up(self, names: list[str]) -> subprocess.CompletedProcess[str]:
        """Run `workshop up` for `names` and lab 02; fail the test if it fails."""
        file = self.folder / "names.txt"
        file.write_text("# test workshop\n" + "\n".join(names) + "\n")
        proc = self.leader(
            "workshop", "up", "--participants-file", str(file), "--labs", "02",
            "--out", str(self.out),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc

    def kubeconfig_of(self, name: str) -> Path:
        """Return a participant's kubeconfig."""
        return self.out / f"{name}.kubeconfig"

    def as_participant(self, name: str) -> Kubectl:
        """Return kubectl holding a participant's credentials."""
        return Kubectl(self.kubeconfig_of(name))


@pytest.fixture(scope="module")
def workshop(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    ws = Workshop(kubeconfig, tmp_path_factory.mktemp("workshop"))
    ws.up(NAMES)
    yield ws
    ws.leader("workshop", "down")  # in case the last test did not get to it


def test_up_writes_private_kubeconfigs_with_signed_certificates(workshop: Workshop) -> None:
    assert stat.S_IMODE(workshop.out.stat().st_mode) == 0o700
    assert (workshop.out / "README.txt").is_file()
    for name in NAMES:
        path = workshop.kubeconfig_of(name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        config = yaml.safe_load(path.read_text())
        user = config["users"][0]["user"]
        assert set(user) == {"client-certificate-data", "client-key-data"}
        assert config["contexts"][0]["context"]["namespace"] == f"{name}-lab-02"
        # Authenticated by the certificate itself: no token, no impersonation.
        who = json.loads(workshop.as_participant(name)("auth", "whoami", "-o", "json").stdout)
        info = who["status"]["userInfo"]
        assert info["username"] == f"kubelab:participant:{name}"
        assert "kubelab:participants" in info["groups"]


def test_up_again_keeps_everyone_and_adds_the_missing(workshop: Workshop, client: api.Api) -> None:
    before = {n: workshop.kubeconfig_of(n).read_bytes() for n in NAMES}
    proc = workshop.up([*NAMES, "dave"])
    assert "1 new kubeconfigs, 3 kept" in proc.stdout
    assert {n: workshop.kubeconfig_of(n).read_bytes() for n in NAMES} == before
    assert workshop.kubeconfig_of("dave").is_file()
    labelled = client.list(api.NAMESPACES, labels=PARTICIPANT)
    assert sorted(ns["metadata"]["name"] for ns in labelled) == [
        f"{n}-lab-02" for n in sorted([*NAMES, "dave"])
    ]


def test_participant_checks_their_own_copy_and_the_board_shows_it(workshop: Workshop) -> None:
    alice = workshop.kubeconfig_of("alice")

    def check() -> tuple[int, dict[str, object]]:
        proc = kubelab("check", "02", "--json", kubeconfig=alice, data=workshop.data)
        assert proc.returncode in (0, 1), proc.stderr
        return proc.returncode, json.loads(proc.stdout)

    code, report = check()
    assert report["namespace"] == "alice-lab-02" and code == 1

    # Apply the solution as alice would, with her own kubeconfig and no namespace flag.
    for overlay in (SOLUTION, SOLUTION.parent / "dev"):  # prod, and dev beside it
        applied = kubelab(
            "apply", str(overlay), "--lab", "02", kubeconfig=alice, data=workshop.data
        )
        assert applied.returncode == 0, applied.stderr
    as_alice = workshop.as_participant("alice")
    as_alice("set", "image", "deployment/demo-web", "web=kubelab/demo-web:v2")  # her default ns
    as_alice("rollout", "status", "deployment/demo-web", "--timeout=90s", timeout=120)
    code, report = check()
    assert report["namespace"] == "alice-lab-02"
    assert (code, report["score"]) == (0, LAB.max_score), report

    board = workshop.leader("workshop", "status", "--once")
    assert board.returncode == 0, board.stderr
    rows = {line.split()[0]: line for line in board.stdout.splitlines() if line.strip()}
    assert rows["alice"].split()[1:3] == [f"{LAB.max_score}/{LAB.max_score}"] * 2
    assert rows["alice"].endswith("ago")
    assert rows["bob"].split()[1] == "·" and rows["bob"].endswith("not checked")
    data = json.loads(workshop.leader("workshop", "status", "--json").stdout)
    by_name = {p["name"]: p for p in data["participants"]}
    assert by_name["alice"]["labs"][LAB.id]["score"] == LAB.max_score
    assert by_name["bob"]["labs"][LAB.id]["score"] is None


def _refused(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode != 0 and (
        "forbidden" in proc.stderr.lower() or "denied request" in proc.stderr
    )


def test_participants_cannot_reach_each_other(workshop: Workshop, kubectl: Kubectl) -> None:
    bob_ns = "bob-lab-02"
    kubectl("-n", bob_ns, "create", "configmap", "notes", "--from-literal=a=1")
    kubectl("-n", bob_ns, "create", "secret", "generic", "token", "--from-literal=t=s3cret")
    kubectl("-n", bob_ns, "run", "web", "--image=nginx", "--restart=Never")
    alice = workshop.as_participant("alice")

    # In her own namespace alice may do all of it, so the refusals below are about bob's.
    own = "alice-lab-02"
    alice("-n", own, "create", "configmap", "mine", "--from-literal=a=1")
    alice("-n", own, "get", "secrets")
    alice("-n", own, "delete", "configmap", "mine")

    for kind, name in (("pods", "web"), ("secrets", "token"), ("configmaps", "notes")):
        assert _refused(alice("-n", bob_ns, "get", kind, name, check=False)), kind
        assert _refused(alice("-n", bob_ns, "get", kind, check=False)), kind
        assert _refused(alice("-n", bob_ns, "delete", kind, name, check=False)), kind
    assert _refused(alice("-n", bob_ns, "create", "configmap", "x", check=False))
    assert _refused(alice("-n", bob_ns, "create", "secret", "generic", "x", check=False))
    assert _refused(alice("-n", bob_ns, "run", "x", "--image=nginx", check=False))
    assert _refused(alice("delete", "namespace", bob_ns, "--wait=false", check=False))
    assert _refused(alice("get", "namespaces", check=False))
    assert _refused(
        alice(
            "create", "clusterrolebinding", "alice-admin", "--clusterrole=cluster-admin",
            "--user=kubelab:participant:alice", check=False,
        )
    )  # fmt: skip
    # Her own namespace: labels a lab asks for, yes; deleting it or its kubelab labels, no.
    alice("label", "namespace", own, "pod-security.kubernetes.io/warn=baseline", "--overwrite")
    assert _refused(alice("delete", "namespace", own, "--wait=false", check=False))
    assert _refused(
        alice("label", "namespace", own, f"{PARTICIPANT}=bob", "--overwrite", check=False)
    )
    assert _refused(alice("label", "namespace", own, f"{PARTICIPANT}-", check=False))
    # Bob's objects are all still there.
    for kind, name in (("pod", "web"), ("secret", "token"), ("configmap", "notes")):
        kubectl("-n", bob_ns, "get", kind, name)
    labels = json.loads(kubectl("get", "namespace", own, "-o", "json").stdout)["metadata"]["labels"]
    assert labels[PARTICIPANT] == "alice"
    assert labels["pod-security.kubernetes.io/warn"] == "baseline"


def test_down_removes_what_up_made_and_nothing_else(
    workshop: Workshop, client: api.Api, namespace: str
) -> None:
    names = [*NAMES, "dave"]
    assert client.list(certs.CSRS, labels=PARTICIPANT)
    (workshop.out / "notes.md").write_text("the leader's own notes")
    proc = workshop.leader("workshop", "down", "--out", str(workshop.out))
    assert proc.returncode == 0, proc.stderr
    assert "removed 4 participants" in proc.stdout
    assert client.list(api.NAMESPACES, labels=PARTICIPANT) == []
    assert client.list(certs.CSRS, labels=PARTICIPANT) == []
    for name in names:
        own = f"kubelab:own:participant:{name}"
        assert client.get(access.CLUSTERROLES, own) is None
        assert client.get(access.CLUSTERROLEBINDINGS, own) is None
        assert client.get(access.CLUSTERROLEBINDINGS, f"{own}:reader") is None
        assert client.get(fairness.FLOWSCHEMAS, fairness.schema_name(f"participant:{name}")) is None
    # The fence policy stays: it guards every namespace kubelab makes, not only this workshop's.
    for policy in admission.policies():
        assert client.get(admission.BINDINGS, policy["metadata"]["name"]) is not None
    # What the workshop did not make stays: another namespace, the leader's file.
    assert client.get(api.NAMESPACES, namespace) is not None
    assert sorted(p.name for p in workshop.out.iterdir()) == ["notes.md"]
