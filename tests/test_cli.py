"""`kubelab` reports every user error as one line with exit code 2, and never a traceback."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelab import progress
from tests import fake_api

KUBELAB = [sys.executable, "-m", "kubelab"]
REPO = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the kubelab CLI as a user would."""
    return subprocess.run(
        [*KUBELAB, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """The command failed with code 2 and one line naming the problem."""
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_unknown_backend() -> None:
    assert_one_line_error(run("cluster", "up", "--backend", "minikube"), "invalid choice")


def test_bad_node_count() -> None:
    assert_one_line_error(run("cluster", "up", "--nodes", "0"), "at least 1")


def test_down_with_nothing_up() -> None:
    assert_one_line_error(run("cluster", "--name", "never-started", "down"), "no cluster")


def test_kubeconfig_with_nothing_up() -> None:
    assert_one_line_error(run("cluster", "--name", "never-started", "env"), "no cluster")


def test_status_with_nothing_up() -> None:
    proc = run("cluster", "--name", "never-started", "status")
    assert_one_line_error(proc, "kubelab cluster up")


def _path_without(*names: str, tmp: Path, extra: dict[str, str] | None = None) -> str:
    """A PATH with this Python's bin plus stub programs, hiding the named programs."""
    stubs = tmp / "stubs"
    stubs.mkdir(exist_ok=True)
    for name, script in (extra or {}).items():
        f = stubs / name
        f.write_text(f"#!/bin/sh\n{script}\n")
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    keep = [str(stubs), str(Path(sys.executable).parent), "/usr/bin", "/bin"]
    hidden = [d for d in keep if any((Path(d) / n).exists() for n in names) and d != str(stubs)]
    return os.pathsep.join(d for d in keep if d not in hidden)


def test_kind_requested_without_the_build_tools(tmp_path: Path) -> None:
    # Docker answers (a stub), but the kind images are not built and Go is missing.
    stubs = {"docker": "echo 20.10.24"}
    env = dict(os.environ, PATH=_path_without("go", "docker", tmp=tmp_path, extra=stubs))
    env["KUBELAB_CACHE"] = str(tmp_path / "cache")
    proc = run("cluster", "--name", "goless-kind", "up", "--backend", "kind", env=env)
    assert_one_line_error(proc, "`go` is needed to build the kind images", "--backend sim")


def test_kind_requested_without_a_docker_daemon(tmp_path: Path) -> None:
    # kind is "installed" (a stub), but docker answers with an error, as with a stopped daemon.
    stubs = {"kind": "exit 0", "docker": "echo 'Cannot connect to the Docker daemon' >&2; exit 1"}
    env = dict(os.environ, PATH=_path_without("kind", "docker", tmp=tmp_path, extra=stubs))
    env["KUBELAB_CACHE"] = str(tmp_path / "cache")
    proc = run("cluster", "--name", "dockerless", "up", "--backend", "kind", env=env)
    assert_one_line_error(proc, "Docker daemon")


def test_go_missing_when_binaries_must_be_built(tmp_path: Path) -> None:
    # An empty cache, the Go build asked for (as ./run-tests does), and go hidden: the line
    # saying what `up` is about to do, then the one-line error.
    env = dict(os.environ, PATH=_path_without("go", tmp=tmp_path), KUBELAB_SIM_SOURCE="build")
    env["KUBELAB_CACHE"] = str(tmp_path / "cache")
    proc = run("cluster", "--name", "goless", "up", "--backend", "sim", env=env)
    assert proc.returncode == 2, proc
    said, error = proc.stderr.strip().splitlines()
    assert said.startswith("sim binaries: none cached") and "building" in said
    assert "`go` is needed" in error and "Traceback" not in proc.stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.cluster
def test_api_port_in_use(busy_port: int) -> None:
    proc = run("cluster", "--name", "busy", "up", "--backend", "sim", "--api-port", str(busy_port))
    assert_one_line_error(proc, f"port {busy_port} is already in use")


def test_start_with_jupyter_port_in_use(busy_port: int) -> None:
    proc = run("start", "--backend", "sim", "--port", str(busy_port), "--no-browser")
    assert_one_line_error(proc, f"port {busy_port} is already in use")


# The console script, as a learner runs it (not `python -m`): its entry point is what must cope.
KUBELAB_SCRIPT = str(Path(sys.executable).parent / "kubelab")


def _script(
    *args: str, env: dict[str, str] | None = None, stdout: int | None = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBELAB_SCRIPT, *args],
        cwd=REPO,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    "args", [("labs",), ("--help",), ("--version",), ("check", "--help"), ("cluster", "--help")]
)
def test_a_reader_that_left_is_a_quiet_exit(args: tuple[str, ...], tmp_path: Path) -> None:
    """`kubelab labs | head -3`: the reader is gone before kubelab writes; no BrokenPipeError."""
    read, write = os.pipe()
    os.close(read)  # as `head` has after its lines: every write now fails with EPIPE
    try:
        env = dict(os.environ, KUBELAB_DATA=str(tmp_path))
        proc = _script(*args, env=env, stdout=write)
    finally:
        os.close(write)
    assert proc.stderr == "", proc.stderr  # no "internal error", no "Exception ignored"
    # 141 is what the shell reports for a program SIGPIPE stopped; argparse's own help and
    # version printing ignores write errors and exits 0, which is as quiet.
    assert proc.returncode == (141 if args == ("labs",) else 0)


NS = "lab-02"
UNSETTLED = {  # a Deployment whose rollout never finishes: `check` waits, showing its status
    f"/api/v1/namespaces/{NS}": {"kind": "Namespace", "metadata": {"name": NS}},
    f"/apis/apps/v1/namespaces/{NS}/deployments/demo-web": {
        "kind": "Deployment",
        "metadata": {"name": "demo-web", "namespace": NS, "uid": "u1", "generation": 2},
        "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "demo-web"}}}},
        "status": {"observedGeneration": 1},
    },
}


def test_ctrl_c_during_check_is_one_line_and_exit_130(tmp_path: Path) -> None:
    with fake_api.serve(UNSETTLED) as server:
        env = dict(os.environ, KUBELAB_DATA=str(tmp_path / "data"), KUBELAB_NAMESPACE=NS)
        env["KUBECONFIG"] = str(fake_api.kubeconfig_for(server, tmp_path / "config"))
        proc = subprocess.Popen(
            [KUBELAB_SCRIPT, "check", "02", "--task", "deployment", "--timeout", "60"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert proc.stderr is not None
        started = proc.stderr.readline()  # the status line: the check is waiting now
        assert "grading 02-deployment" in started, started
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["kubelab: interrupted"]  # no "0/1 checks passed"
    assert out == ""  # no table of a run that did not finish


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_ctrl_c_clears_a_spinner_and_prints_no_outcome() -> None:
    shown = _Terminal()
    with pytest.raises(KeyboardInterrupt), progress.status("starting the cluster", stream=shown):
        time.sleep(0.3)  # long enough for the spinner to draw
        raise KeyboardInterrupt
    assert "starting the cluster" in shown.getvalue()  # the spinner ran
    assert shown.getvalue().endswith("\r\033[K")  # and its line is cleared, with no "failed"
    assert "failed" not in shown.getvalue()


def _closed_port() -> int:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


KUBECONFIG_CASES = {  # how the file differs from a good one -> what the message must say
    "missing": (None, "which does not exist"),
    "a-folder": ("folder", "which cannot be read: Is a directory"),
    "empty": ("", "which is empty"),
    "not-yaml": ("clusters: [\n", "which is not valid YAML"),
    "no-context": ("drop current-context", "which sets no current-context"),
    "context-gone": ("current-context: gone", "whose current-context 'gone' is not among"),
}


@pytest.mark.parametrize("case", sorted(KUBECONFIG_CASES))
def test_a_wrong_kubeconfig_is_named_not_answered_with_start_the_cluster(
    case: str, tmp_path: Path
) -> None:
    change, needle = KUBECONFIG_CASES[case]
    path = tmp_path / "config.yaml"
    good = fake_api.kubeconfig_for(f"https://127.0.0.1:{_closed_port()}", path).read_text()
    if change == "folder":
        path.unlink()
        path.mkdir()
    elif change == "drop current-context":
        path.write_text(good.replace("current-context: fake\n", ""))
    elif change is not None and change.startswith("current-context:"):
        path.write_text(good.replace("current-context: fake", change))
    elif change is not None:
        path.write_text(change)
    else:
        path.unlink()
    env = dict(os.environ, KUBECONFIG=str(path), KUBELAB_DATA=str(tmp_path / "data"))
    proc = _script("check", "02", env=env)
    assert_one_line_error(proc, f"KUBECONFIG names {path}, {needle}")
    assert "cluster up" not in proc.stderr  # starting a cluster fixes none of these


def test_a_cluster_that_does_not_answer_is_start_the_cluster(tmp_path: Path) -> None:
    path = fake_api.kubeconfig_for(f"https://127.0.0.1:{_closed_port()}", tmp_path / "c.yaml")
    env = dict(os.environ, KUBECONFIG=str(path), KUBELAB_DATA=str(tmp_path / "data"))
    proc = _script("check", "02", env=env)
    assert_one_line_error(proc, "no cluster answers at", "start it with `kubelab cluster up`")


def test_no_kubeconfig_anywhere_is_start_the_cluster(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(HOME=str(tmp_path), KUBELAB_CACHE=str(tmp_path / "cache"))
    env.update(KUBELAB_DATA=str(tmp_path / "data"), KUBELAB_CLUSTER="never-started")
    proc = _script("check", "02", env=env)
    assert_one_line_error(proc, f"no kubeconfig at {tmp_path}/.kube/config", "kubelab cluster up")


def _no_cluster_env(tmp_path: Path) -> dict[str, str]:
    """No kubeconfig: a command that gets as far as the cluster fails saying so."""
    return dict(os.environ, KUBECONFIG=str(tmp_path / "none.yaml"), KUBELAB_DATA=str(tmp_path))


def test_apply_refuses_another_labs_folder(tmp_path: Path) -> None:
    folder = "labs/02-deployment/starter"
    proc = _script("apply", folder, "--lab", "03", env=_no_cluster_env(tmp_path))
    assert_one_line_error(proc, f"{folder} belongs to lab 02-deployment, not 03-hpa-pdb", "--force")


def test_apply_refuses_from_inside_another_labs_folder(tmp_path: Path) -> None:
    starter = REPO / "labs" / "02-deployment" / "starter"
    proc = subprocess.run(
        [KUBELAB_SCRIPT, "apply", ".", "--lab", "03-hpa-pdb"],
        cwd=starter,
        capture_output=True,
        text=True,
        env=_no_cluster_env(tmp_path),
        timeout=120,
        check=False,
    )
    assert_one_line_error(proc, "belongs to lab 02-deployment, not 03-hpa-pdb")


@pytest.mark.parametrize(
    "args",
    [
        ("labs/02-deployment/starter", "--lab", "03", "--force"),  # asked for
        ("labs/02-deployment/starter/overlays/prod", "--lab", "2"),  # its own lab
        ("labs/02-deployment/starter", "-n", "lab-03"),  # a namespace, not a lab
    ],
)
def test_apply_lets_a_folder_through_when_it_is_asked_or_its_own(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    proc = _script("apply", *args, env=_no_cluster_env(tmp_path))
    assert_one_line_error(proc, "KUBECONFIG names")  # got past the folder check to the cluster


NO_PROBES = {  # lab 02's demo-web with a container and nothing else: four probe requirements fail
    f"/api/v1/namespaces/{NS}": {"kind": "Namespace", "metadata": {"name": NS}},
    f"/apis/apps/v1/namespaces/{NS}/deployments/demo-web": {
        "kind": "Deployment",
        "metadata": {"name": "demo-web", "namespace": NS, "uid": "u1"},
        "spec": {"template": {"spec": {"containers": [{"name": "web"}]}}},
    },
}


def test_check_lists_every_failed_requirement_with_its_own_hint(tmp_path: Path) -> None:
    with fake_api.serve(NO_PROBES) as server:
        env = dict(os.environ, KUBELAB_DATA=str(tmp_path / "data"), KUBELAB_NAMESPACE=NS)
        env["KUBECONFIG"] = str(fake_api.kubeconfig_for(server, tmp_path / "config"))
        as_json = _script("check", "02", "--task", "probes", "--json", env=env)
        table = _script("check", "02", "--task", "probes", env=env)
    assert as_json.returncode == 1, as_json.stderr
    probes = json.loads(as_json.stdout)["checks"][0]
    assert "more" not in probes["message"]
    problems = probes["problems"]
    assert len(problems) == 4 and len({p["hint"] for p in problems}) == 4
    assert [p["message"].split(":")[0] for p in problems[:2]] == ["readinessProbe", "livenessProbe"]
    assert table.returncode == 1, table.stderr
    for problem in problems:  # each hint is in the table too (its first words, before wrapping)
        assert "hint: " + " ".join(problem["hint"].split()[:3]) in table.stdout


_IMPORTED = """
import contextlib, io, json, sys
from kubelab import cli
with contextlib.redirect_stdout(io.StringIO()):
    try:
        cli.main()
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("kubernetes", "urllib3"))))
"""


@pytest.mark.parametrize("argv", [["--help"], ["labs"], ["cluster", "--help"], ["grade", "--help"]])
def test_commands_without_a_cluster_never_import_the_kubernetes_client(
    argv: list[str], tmp_path: Path
) -> None:
    # The kubernetes client costs 0.2-0.3 s to import; these commands never talk to a cluster.
    proc = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.argv = ['kubelab', *{argv!r}]\n{_IMPORTED}"],
        env=dict(os.environ, KUBELAB_DATA=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []
