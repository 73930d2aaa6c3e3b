"""The parts of `kubelab workshop` that need no cluster: participant names, which namespace a
participant's kubeconfig grades, the board's table, and one-line errors."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from kubelab import lab_namespaces, labs
from kubelab.errors import KubelabError
from kubelab.grading.result import CheckResult, Report
from kubelab.workshop import board, participants, scores

LAB02 = labs.find("02")
LAB03 = labs.find("03")
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


# --- participant names --------------------------------------------------------------------------


def test_names_file_allows_comments_and_blank_lines() -> None:
    text = "# morning group\nalice\n\n  bob   # joined late\ncarol-2\n"
    assert participants.parse(text, "names.txt") == ["alice", "bob", "carol-2"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("alice\nBob\n", "names.txt line 2: 'Bob' is not a valid participant name"),
        ("alice\nal_ice\n", "line 2: 'al_ice'"),
        ("-alice\n", "line 1"),
        ("alice\n# x\nalice\n", "line 3: 'alice' is listed twice (first on line 1)"),
        ("a" * 41 + "\n", "longer than 40 characters"),
        ("kube-system\n", "reserves"),
        ("# nobody yet\n\n", "lists no participants"),
    ],
)
def test_bad_names_file_says_which_line(text: str, fragment: str) -> None:
    with pytest.raises(KubelabError) as err:
        participants.parse(text, "names.txt")
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_unreadable_names_file(tmp_path: Path) -> None:
    with pytest.raises(KubelabError, match="cannot read names file"):
        participants.from_file(tmp_path / "missing.txt")


def test_generated_names() -> None:
    assert participants.generated(3) == ["p01", "p02", "p03"]
    many = participants.generated(120)
    assert many[0] == "p001" and many[-1] == "p120" and len(set(many)) == 120
    with pytest.raises(KubelabError, match="at least 1"):
        participants.generated(0)


def test_what_a_name_becomes() -> None:
    assert participants.namespace("alice", LAB02) == "alice-lab-02"
    assert participants.user("alice") == "kubelab:participant:alice"
    # the longest name still gives valid namespace names
    longest = "a" * participants.MAX_NAME
    assert participants.problem(longest) is None
    assert len(participants.namespace(longest, LAB02)) <= 63


# --- which namespace a kubeconfig grades --------------------------------------------------------


def _kubeconfig(path: Path, participant: str | None, context: str = "ctx") -> Path:
    ctx: dict[str, object] = {"cluster": "c", "user": "u"}
    if participant:
        ctx["extensions"] = [{"name": lab_namespaces.PARTICIPANT, "extension": participant}]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": context, "context": ctx}],
                "current-context": context,
            }
        )
    )
    return path


def test_participant_kubeconfig_grades_their_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBELAB_NAMESPACE", raising=False)
    alice = str(_kubeconfig(tmp_path / "alice", "alice"))
    plain = str(_kubeconfig(tmp_path / "plain", None))
    assert lab_namespaces.participant(alice) == "alice"
    assert lab_namespaces.default_namespace("lab-02", alice) == "alice-lab-02"
    assert lab_namespaces.participant(plain) is None
    assert lab_namespaces.default_namespace("lab-02", plain) == "lab-02"
    # $KUBECONFIG is what `kubelab check` uses when no kubeconfig is given
    monkeypatch.setenv("KUBECONFIG", alice)
    assert lab_namespaces.default_namespace("lab-02") == "alice-lab-02"
    monkeypatch.setenv("KUBELAB_NAMESPACE", "mine")
    assert lab_namespaces.default_namespace("lab-02", alice) == "mine"


def test_notebook_grader_uses_the_same_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubelab.grading.notebook import LabGrader

    monkeypatch.delenv("KUBELAB_NAMESPACE", raising=False)
    alice = str(_kubeconfig(tmp_path / "alice", "alice"))
    assert LabGrader(LAB02, kubeconfig=alice).namespace == "alice-lab-02"
    assert LabGrader(LAB02, kubeconfig=alice, namespace="x").namespace == "x"
    plain = str(_kubeconfig(tmp_path / "plain", None))
    assert LabGrader(LAB02, kubeconfig=plain).namespace == "lab-02"


def test_participant_from_merged_kubeconfigs(tmp_path: Path) -> None:
    # As kubectl: the first file's current-context wins, even when a later file defines it.
    first = tmp_path / "first"
    first.write_text(yaml.safe_dump({"current-context": "ws"}))
    second = _kubeconfig(tmp_path / "second", "bob", context="ws")
    assert lab_namespaces.participant(f"{first}{os.pathsep}{second}") == "bob"
    assert lab_namespaces.participant(str(tmp_path / "missing")) is None
    (tmp_path / "bad").write_text("{not yaml: [")
    assert lab_namespaces.participant(str(tmp_path / "bad")) is None


# --- the board ----------------------------------------------------------------------------------


def _ns(name: str, who: str, lab: labs.Lab) -> dict[str, object]:
    labels = {lab_namespaces.PARTICIPANT: who, lab_namespaces.LAB_LABEL: lab.id}
    return {"metadata": {"name": name, "labels": labels}}


def _stamp(delta: timedelta) -> str:
    return (NOW - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_board_table() -> None:
    namespaces = [
        _ns("alice-lab-02", "alice", LAB02),
        _ns("alice-lab-03", "alice", LAB03),
        _ns("bob-lab-02", "bob", LAB02),
        _ns("bob-lab-03", "bob", LAB03),
    ]
    full02 = {t.id: float(t.points) for t in LAB02.tasks}
    posted = [
        scores.Posted("alice-lab-02", LAB02.id, full02, _stamp(timedelta(minutes=3))),
        # more points than a task has, and a task the lab does not have: neither counts
        scores.Posted(
            "alice-lab-03",
            LAB03.id,
            {LAB03.tasks[0].id: 99.0, "nonsense": 5.0},
            _stamp(timedelta(seconds=20)),
        ),
        # a result of another lab in bob's lab-02 namespace is not a lab-02 result
        scores.Posted("bob-lab-02", LAB03.id, {LAB03.tasks[0].id: 1.0}, _stamp(timedelta(0))),
    ]
    course = labs.all_labs()
    b = board.build(namespaces, posted, course)
    assert [lab.id for lab in b.labs] == [LAB02.id, LAB03.id]  # only the labs in use
    alice, bob = b.rows
    assert alice.participant == "alice" and bob.participant == "bob"
    assert alice.cells[LAB02.id].score == LAB02.max_score
    assert alice.cells[LAB03.id].score == LAB03.tasks[0].points
    assert alice.score == LAB02.max_score + LAB03.tasks[0].points
    assert alice.last_checked == _stamp(timedelta(seconds=20))
    assert bob.cells[LAB02.id].score is None and bob.last_checked is None

    lines = board.render(b, NOW).splitlines()
    assert lines[0].split() == ["participant", "02", "03", "total", "last", "check"]
    assert lines[1].split()[:3] == [
        "alice",
        f"{LAB02.max_score}/{LAB02.max_score}",
        f"{LAB03.tasks[0].points}/{LAB03.max_score}",
    ]
    assert lines[1].endswith("20s ago")
    bob_cells = lines[2].split()
    assert bob_cells[:3] == ["bob", board.NOT_CHECKED, board.NOT_CHECKED]
    assert bob_cells[3] == f"0/{LAB02.max_score + LAB03.max_score}"
    assert lines[2].endswith("not checked")
    data = board.to_json(b)
    assert json.loads(json.dumps(data)) == data
    assert data["participants"][0]["labs"][LAB02.id]["score"] == LAB02.max_score
    assert data["participants"][1]["labs"][LAB02.id]["score"] is None


def test_board_with_nobody() -> None:
    assert "workshop up" in board.render(board.build([], [], labs.all_labs()), NOW)


@pytest.mark.parametrize(
    ("delta", "shown"),
    [
        (timedelta(seconds=5), "5s ago"),
        (timedelta(minutes=7, seconds=3), "7m ago"),
        (timedelta(hours=2, minutes=5), "2h 05m ago"),
        (timedelta(days=3), "2026-02-26 12:00 UTC"),
    ],
)
def test_ago(delta: timedelta, shown: str) -> None:
    assert board.ago(_stamp(delta), NOW) == shown
    assert board.ago(None, NOW) == "not checked"


def test_posted_results_merge_partial_checks() -> None:
    first, second = LAB02.tasks[0], LAB02.tasks[1]

    def report(*results: tuple[str, float]) -> Report:
        checks = tuple(CheckResult(t, t, p > 0, p, 9, "", None) for t, p in results)
        return Report(LAB02.id, LAB02.title, "alice-lab-02", checks)

    one = scores.body(report((first.id, first.points)), "alice", None)
    assert one["metadata"]["labels"][lab_namespaces.PARTICIPANT] == "alice"
    assert one["data"]["score"] == str(first.points)
    assert one["data"]["max-score"] == str(LAB02.max_score)
    # a later `--task` run of another task keeps the first task's points
    two = scores.body(report((second.id, 0.0)), "alice", one)
    assert json.loads(two["data"]["tasks"]) == {first.id: first.points, second.id: 0}
    assert two["data"]["score"] == str(first.points)
    # a check that did not converge was not judged: the first task keeps its points
    unsettled = CheckResult(first.id, first.id, False, 0, 9, "not converged", None, True)
    three = scores.body(Report(LAB02.id, LAB02.title, "alice-lab-02", (unsettled,)), "alice", two)
    assert json.loads(three["data"]["tasks"])[first.id] == first.points
    # a record of another lab is not merged
    other = {"data": {"lab": "03-hpa-pdb", "tasks": json.dumps({second.id: 1})}}
    assert json.loads(scores.body(report(), "alice", other)["data"]["tasks"]) == {}


# --- one-line errors ----------------------------------------------------------------------------


def _kubelab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubelab", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _one_line_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_bad_names_file_is_one_line(tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("alice\nBob Smith\n")
    proc = _kubelab("workshop", "up", "--participants-file", str(names))
    _one_line_error(proc, f"{names} line 2")


def test_no_participants_is_one_line() -> None:
    _one_line_error(_kubelab("workshop", "up", "--participants", "0"), "at least 1")
    _one_line_error(_kubelab("workshop", "up", "--participants", "-2"), "at least 1")
    _one_line_error(_kubelab("workshop", "up", "--participants", "x"), "invalid int value")
    _one_line_error(_kubelab("workshop", "up"), "--participants")
    _one_line_error(_kubelab("workshop", "up", "--participants", "2", "--labs", "99"), "99")


def test_dead_cluster_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = _kubeconfig(tmp_path / "dead", None)
    dead.write_text(dead.read_text().replace("127.0.0.1:1", f"127.0.0.1:{port}"))
    env = dict(os.environ, KUBECONFIG=str(dead))
    out = tmp_path / "out"
    up = _kubelab("workshop", "up", "--participants", "2", "--out", str(out), env=env)
    _one_line_error(up, "no cluster answers")
    assert not out.exists()  # nothing written for a cluster that is not there
    _one_line_error(_kubelab("workshop", "status", "--once", env=env), "no cluster answers")
    _one_line_error(_kubelab("workshop", "down", env=env), "no cluster answers")


def test_participant_kubeconfig_cannot_run_the_workshop(tmp_path: Path) -> None:
    env = dict(os.environ, KUBECONFIG=str(_kubeconfig(tmp_path / "alice", "alice")))
    _one_line_error(_kubelab("workshop", "status", "--once", env=env), "participant alice's")


def test_keys_need_no_openssl_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubelab.workshop import certs

    monkeypatch.setenv("PATH", str(tmp_path))  # no openssl anywhere: the package makes the key
    key, request = certs.key_and_request("kubelab:participant:alice", participants.GROUP)
    assert key.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert request.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")


def test_key_and_request_name_the_participant() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    from kubelab.workshop import certs

    key, request = certs.key_and_request("kubelab:participant:alice", participants.GROUP)
    private = serialization.load_pem_private_key(key, password=None)
    csr = x509.load_pem_x509_csr(request)
    assert csr.is_signature_valid  # signed with the key that goes into the kubeconfig
    assert csr.public_key() == private.public_key()
    # the API server takes the user from CN and the group from O, as `openssl req -subj` set them
    assert csr.subject.rfc4514_string() == "CN=kubelab:participant:alice,O=kubelab:participants"
    assert [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [
        "kubelab:participant:alice"
    ]


def _sign(request: bytes, days: float) -> bytes:
    """Sign a request as the cluster CA would (a throwaway CA here); return the certificate."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    csr = x509.load_pem_x509_csr(request)
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_name)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_a_signed_certificate_goes_with_its_key_and_its_validity_is_read() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from kubelab.workshop import certs

    key, request = certs.key_and_request("kubelab:participant:bob", participants.GROUP)
    pem = _sign(request, days=7)
    cert = x509.load_pem_x509_certificate(pem)
    private = serialization.load_pem_private_key(key, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert cert.public_key() == private.public_key()  # the kubeconfig's key fits its certificate
    assert cert.subject.rfc4514_string() == "CN=kubelab:participant:bob,O=kubelab:participants"
    credential = certs.Credential(pem, key)
    user = credential.kubeconfig_user()
    assert base64.b64decode(user["client-certificate-data"]) == pem
    assert base64.b64decode(user["client-key-data"]) == key

    assert certs.still_valid(pem, 86400)  # 7 days left: still good tomorrow
    assert not certs.still_valid(pem, 8 * 86400)  # not in 8 days
    short = _sign(request, days=0.5)
    assert not certs.still_valid(short, 86400)  # `workshop up` mints a new one
    assert not certs.still_valid(b"not a certificate", 0)
