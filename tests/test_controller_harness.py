"""The controller harness without a cluster: what it reports for code that cannot run.

Each case runs the real child process (`python -m kubelab.controller_harness`) through `drive`,
as lab 01's grader does, with a kubeconfig that points at a port where nothing listens.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kubelab.controller_harness import Outcome, drive

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
  - name: nowhere
    cluster: {server: "http://127.0.0.1:9"}
users:
  - name: nobody
    user: {token: not-a-token}
contexts:
  - name: nowhere
    context: {cluster: nowhere, user: nobody}
current-context: nowhere
"""


@pytest.fixture
def kubeconfig(tmp_path: Path) -> str:
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(KUBECONFIG)
    return str(path)


def run(tmp_path: Path, kubeconfig: str, source: str, timeout: float = 30) -> Outcome:
    file = tmp_path / "controller.py"
    file.write_text(textwrap.dedent(source))
    return drive(file, "lab-01", "demo", kubeconfig=kubeconfig, timeout=timeout)


def test_a_reconcile_that_raises_reports_its_last_line_and_where(
    tmp_path: Path, kubeconfig: str
) -> None:
    outcome = run(
        tmp_path,
        kubeconfig,
        """
        def reconcile(core, custom, namespace, name):
            print("debug output goes to stderr, not into the report")
            raise ValueError(f"no idea what to do with {name}")
        """,
    )
    assert outcome == Outcome(
        ok=False,
        writes=(),
        error="ValueError: no idea what to do with demo",
        stage="reconcile",
        where="controller.py:4",
    )
    assert outcome.describe() == (
        "reconcile raised ValueError: no idea what to do with demo (at controller.py:4)"
    )
    assert any("debug output" in line for line in outcome.output)


def test_a_missing_reconcile_is_an_import_failure(tmp_path: Path, kubeconfig: str) -> None:
    outcome = run(tmp_path, kubeconfig, "def reconcil(core, custom, namespace, name):\n    pass\n")
    assert not outcome.ok and outcome.stage == "import"
    assert "defines no function reconcile" in outcome.error


def test_a_syntax_error_names_its_line(tmp_path: Path, kubeconfig: str) -> None:
    outcome = run(tmp_path, kubeconfig, "x = 1\ndef reconcile(core, custom, namespace, name)\n")
    assert not outcome.ok and outcome.stage == "import"
    assert outcome.error.startswith("SyntaxError")
    assert outcome.where == "controller.py:2"
    assert outcome.describe().startswith("could not import your controller: SyntaxError")


def test_an_exit_at_import_is_reported_not_obeyed(tmp_path: Path, kubeconfig: str) -> None:
    outcome = run(tmp_path, kubeconfig, "import sys\nsys.exit(3)\n")
    assert not outcome.ok and outcome.stage == "import"
    assert outcome.error == "SystemExit: 3"


def test_writes_are_recorded_even_when_they_fail(tmp_path: Path, kubeconfig: str) -> None:
    outcome = run(
        tmp_path,
        kubeconfig,
        """
        def reconcile(core, custom, namespace, name):
            core.delete_namespaced_config_map(f"{name}-0", namespace, _request_timeout=2)
        """,
    )
    assert not outcome.ok and outcome.stage == "reconcile"
    assert outcome.writes == (("DELETE", "/api/v1/namespaces/lab-01/configmaps/demo-0"),)


def test_a_reconcile_that_never_returns_is_stopped(tmp_path: Path, kubeconfig: str) -> None:
    start = time.monotonic()
    outcome = run(
        tmp_path,
        kubeconfig,
        "import time\ndef reconcile(core, custom, namespace, name):\n    time.sleep(60)\n",
        timeout=3,
    )
    assert time.monotonic() - start < 10
    assert not outcome.ok and outcome.stage == "timeout"
    assert outcome.describe() == "reconcile did not return within 3s"


def test_a_clean_reconcile_reports_ok_and_no_writes(tmp_path: Path, kubeconfig: str) -> None:
    outcome = run(tmp_path, kubeconfig, "def reconcile(core, custom, namespace, name):\n    pass\n")
    assert outcome == Outcome(ok=True)
    assert outcome.describe() == ""


def test_the_command_line_prints_one_json_line(tmp_path: Path, kubeconfig: str) -> None:
    file = tmp_path / "controller.py"
    file.write_text("def reconcile(core, custom, namespace, name):\n    print('hello')\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubelab.controller_harness",
            "--file",
            str(file),
            "--namespace",
            "ns",
            "--name",
            "demo",
        ],
        env={"KUBECONFIG": kubeconfig, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "ok": True,
        "writes": [],
        "error": "",
        "stage": "",
        "where": "",
    }
    assert "hello" in proc.stderr


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubelab.controller_harness",
            "--file",
            str(tmp_path / "no.py"),
            "--namespace",
            "ns",
            "--name",
            "demo",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    found = json.loads(proc.stdout)
    assert not found["ok"] and found["stage"] == "import" and "no file" in found["error"]
