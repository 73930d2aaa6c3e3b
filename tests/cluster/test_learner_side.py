"""The learner's side on the sim cluster: `kubelab check/reset/apply/labs`, bad input as one line,
and the notebook API (`graders.load`, `check`, `require`)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubelab import api, apply, graders, lab_namespaces, labs
from kubelab.errors import KubelabError
from kubelab.grading.context import Context
from tests.conftest import Kubectl, token_kubeconfig

LAB = labs.find("02")
SOLUTION = LAB.directory / "solution" / "overlays" / "prod"
DEV = LAB.directory / "solution" / "overlays" / "dev"  # task dev-overlay: beside prod
KUBELAB = [sys.executable, "-m", "kubelab"]


@pytest.fixture
def lab_ns(client: api.Api, kubectl: Kubectl) -> Iterator[str]:
    """A namespace made by kubelab for lab 02 (labelled as kubelab's)."""
    name = f"ls-{uuid.uuid4().hex[:6]}"
    lab_namespaces.ensure(client, LAB, name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def solved_ns(client: api.Api, kubectl: Kubectl) -> Iterator[str]:
    """A namespace holding the lab's solution, rolled out to v2."""
    name = f"solved-{uuid.uuid4().hex[:6]}"
    lab_namespaces.ensure(client, LAB, name)
    apply.apply(SOLUTION, namespace=name, client=client)
    apply.apply(DEV, namespace=name, client=client)
    kubectl("-n", name, "set", "image", "deployment/demo-web", "web=kubelab/demo-web:v2")
    kubectl("-n", name, "rollout", "status", "deployment/demo-web", "--timeout=60s")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def _env(kubeconfig: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), KUBELAB_DATA=str(tmp_path / "data"))
    env.pop("KUBELAB_NAMESPACE", None)
    env.update(extra)
    return env


def _kubelab(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KUBELAB, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def test_check_json_has_the_contract_shape_and_exit_0(
    solved_ns: str, kubeconfig: Path, tmp_path: Path
) -> None:
    proc = _kubelab(_env(kubeconfig, tmp_path), "check", "02", "-n", solved_ns, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {"lab", "namespace", "score", "max_score", "checks"}
    assert (report["lab"], report["namespace"]) == ("02-deployment", solved_ns)
    assert report["score"] == report["max_score"] == 14
    keys = {
        "id", "title", "passed", "outcome", "points", "max_points", "message", "hint", "problems",
    }  # fmt: skip
    assert all(set(c) == keys for c in report["checks"])
    assert [c["id"] for c in report["checks"]] == [t.id for t in LAB.tasks]


def test_progress_is_saved_and_listed(solved_ns: str, kubeconfig: Path, tmp_path: Path) -> None:
    env = _env(kubeconfig, tmp_path)
    assert "0/14" in _kubelab(env, "labs").stdout
    assert _kubelab(env, "check", "02-deployment", "-n", solved_ns).returncode == 0
    listing = _kubelab(env, "labs").stdout
    assert "02-deployment" in listing and "14/14" in listing


def test_check_exits_1_when_a_check_fails(lab_ns: str, kubeconfig: Path, tmp_path: Path) -> None:
    proc = _kubelab(_env(kubeconfig, tmp_path), "check", "02", "-n", lab_ns, "--timeout", "5")
    assert proc.returncode == 1
    assert "Deployment demo-web not found" in proc.stdout and "hint:" in proc.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("check", "99"), "unknown lab '99'"),
        (("check", "02", "--timeout", "soon"), "not a number of seconds"),
        (("check", "02", "--task", "nope"), "has no task 'nope'"),
        (("reset", "02", "-n", "kube-system"), "system namespace"),
    ],
)
def test_cannot_grade_is_exit_2_in_one_line(
    args: tuple[str, ...], needle: str, kubeconfig: Path, tmp_path: Path
) -> None:
    proc = _kubelab(_env(kubeconfig, tmp_path), *args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def _dead_kubeconfig(kubeconfig: Path, tmp_path: Path) -> Path:
    config = yaml.safe_load(kubeconfig.read_text())
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    dead = tmp_path / "dead.yaml"
    dead.write_text(yaml.safe_dump(config))
    return dead


@pytest.mark.parametrize(
    "command", [("check", "02"), ("reset", "02"), ("apply", "x", "--lab", "02")]
)
def test_a_dead_cluster_is_one_friendly_line(
    command: tuple[str, ...], kubeconfig: Path, tmp_path: Path
) -> None:
    (tmp_path / "x").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    env = _env(kubeconfig, tmp_path, KUBECONFIG=str(_dead_kubeconfig(kubeconfig, tmp_path)))
    proc = _kubelab(env, *command, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "no cluster answers" in proc.stderr and "kubelab cluster up" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_no_kubeconfig_is_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, KUBECONFIG=str(tmp_path / "missing.yaml"))
    proc = _kubelab(env, "check", "02")
    assert proc.returncode == 2 and "KUBECONFIG names" in proc.stderr
    assert "which does not exist" in proc.stderr


BAD_MANIFESTS = {
    "syntax": ("kind: Deployment\nmetadata:\n  name: x\n  labels: [a\n", "YAML syntax error"),
    "unknown-kind": (
        "apiVersion: apps/v1\nkind: Deploymnt\nmetadata: {name: x}\n",
        'no matches for kind "Deploymnt"',
    ),
    "wrong-apiversion": (
        "apiVersion: apps/v2\nkind: Deployment\nmetadata: {name: x}\n",
        'no matches for kind "Deployment" in version "apps/v2"',
    ),
    "misspelt-field": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndat: {a: b}\n",
        'unknown field "dat"',
    ),
    "other-namespace": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: elsewhere}\n",
        "remove metadata.namespace",
    ),
    "no-kind": ("apiVersion: v1\nmetadata: {name: x}\n", "needs apiVersion and kind"),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifests_are_one_line_and_apply_nothing(
    case: str, lab_ns: str, client: api.Api, tmp_path: Path
) -> None:
    text, needle = BAD_MANIFESTS[case]
    good = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\ndata: {a: b}\n---\n"
    path = tmp_path / f"{case}.yaml"
    path.write_text(good + text)
    with pytest.raises(KubelabError) as err:
        apply.apply(path, namespace=lab_ns, client=client)
    message = str(err.value)
    assert needle in message and "\n" not in message
    assert client.get(api.CONFIGMAPS, "good", lab_ns) is None  # validated before any change


def test_a_misspelt_field_on_an_existing_object_is_one_short_line(
    lab_ns: str, client: api.Api, tmp_path: Path
) -> None:
    apply.apply(SOLUTION, namespace=lab_ns, client=client)  # the object exists: kubectl patches
    copy = tmp_path / "solution"
    shutil.copytree(LAB.directory / "solution", copy)
    deployment = copy / "base" / "deployment.yaml"
    text = deployment.read_text()
    assert "imagePullPolicy:" in text
    deployment.write_text(text.replace("imagePullPolicy:", "imagePullPolicyy:"))
    field = "spec.template.spec.containers[0].imagePullPolicyy"
    for target in (deployment, copy / "overlays" / "prod"):  # -f, and -k (kubectl names neither)
        with pytest.raises(KubelabError) as err:
            apply.apply(target, namespace=lab_ns, client=client)
        assert str(err.value) == (
            f'{target}: Deployment demo-web: unknown field "{field}" (nothing was applied)'
        )


def test_syntax_error_names_file_line_and_column(
    lab_ns: str, client: api.Api, tmp_path: Path
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n")
    with pytest.raises(KubelabError, match=r"broken\.yaml:\d+:\d+: YAML syntax error"):
        apply.apply(path, namespace=lab_ns, client=client)


def test_apply_into_a_missing_namespace_is_one_line(client: api.Api, tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    with pytest.raises(KubelabError, match="namespace 'nowhere-42' does not exist"):
        apply.apply(path, namespace="nowhere-42", client=client)


def test_reset_empties_the_namespace_and_keeps_files(
    lab_ns: str, client: api.Api, kubeconfig: Path, tmp_path: Path
) -> None:
    apply.apply(SOLUTION, namespace=lab_ns, client=client)
    mine = tmp_path / "my-deployment.yaml"
    mine.write_text("my work")
    proc = _kubelab(_env(kubeconfig, tmp_path), "reset", "02", "-n", lab_ns)
    assert proc.returncode == 0, proc.stderr
    assert client.get(api.DEPLOYMENTS, "demo-web", lab_ns) is None
    labels = (client.get(api.NAMESPACES, lab_ns) or {})["metadata"]["labels"]
    assert labels[lab_namespaces.LAB_LABEL] == "02-deployment"
    assert mine.read_text() == "my work"


def test_reset_refuses_a_namespace_kubelab_did_not_make(
    namespace: str, client: api.Api, kubeconfig: Path, tmp_path: Path
) -> None:
    proc = _kubelab(_env(kubeconfig, tmp_path), "reset", "02", "-n", namespace)
    assert proc.returncode == 2 and "kubelab did not create it" in proc.stderr
    assert client.get(api.NAMESPACES, namespace) is not None


def test_notebook_api_require_and_check(
    solved_ns: str, lab_ns: str, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBELAB_DATA", str(tmp_path))
    solved = graders.load("02-deployment", namespace=solved_ns, kubeconfig=str(kubeconfig))
    assert solved.require("deployment") == 3
    report = solved.check_all()
    assert report.score == 14 and "kubelab-report" in report._repr_html_()

    monkeypatch.setenv("KUBELAB_NAMESPACE", lab_ns)
    empty = graders.load("02", kubeconfig=str(kubeconfig), timeout=5)
    assert empty.namespace == lab_ns
    with pytest.raises(graders.TaskFailed) as err:
        empty.require("service")
    shown = err.value._render_traceback_()
    assert len(shown) == 1 and "service: 0/2 points" in shown[0]
    assert not empty.check("security").passed


def test_confined_credentials_grade_their_own_namespace_only(
    solved_ns: str, lab_ns: str, kubectl: Kubectl, kubeconfig: Path, tmp_path: Path
) -> None:
    """A participant's or a submission's token reaches one namespace; grading still works there."""
    kubectl("-n", solved_ns, "create", "serviceaccount", "learner")
    kubectl(
        "-n", solved_ns, "create", "rolebinding", "learner-view", "--clusterrole=view",
        f"--serviceaccount={solved_ns}:learner",
    )  # fmt: skip
    confined = token_kubeconfig(kubectl, solved_ns, "learner", tmp_path / "learner.yaml")
    env = _env(kubeconfig, tmp_path, KUBECONFIG=str(confined))

    # The substrate marker is readable with any credentials, so confined graders can branch on it.
    conn = api.Api(confined)
    try:
        assert Context(conn, solved_ns, deadline=0).substrate == "sim"
    finally:
        conn.close()

    own = _kubelab(env, "check", "02", "-n", solved_ns, "--json")
    assert own.returncode == 0, own.stdout + own.stderr
    assert json.loads(own.stdout)["score"] == 14

    other = _kubelab(env, "check", "02", "-n", lab_ns, "--json", "--timeout", "5")
    assert other.returncode == 1, other.stderr
    checks = json.loads(other.stdout)["checks"]
    assert all("not allowed (403)" in c["message"] for c in checks)
    assert all("credentials cannot read this namespace" in (c["hint"] or "") for c in checks)
