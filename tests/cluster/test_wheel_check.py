"""The installed wheel grades a lab: from a workspace `kubelab init` made, outside the checkout,
`kubelab check 01` runs the workspace's controller against the sim cluster (not the copy in the
wheel, nor the checkout's). tests/test_wheel.py checks the wheel's contents, `labs` and `init`.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Kubectl
from tests.installed_wheel import Installed, build_and_install

pytestmark = pytest.mark.slow


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace name for `kubelab reset` to create (it resets only namespaces it made)."""
    name = f"w-{uuid.uuid4().hex[:8]}"
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    yield build_and_install(tmp_path_factory.mktemp("wheel"))


def test_installed_kubelab_checks_lab_01_in_a_workspace(
    installed: Installed, tmp_path: Path, kubeconfig: Path, namespace: str
) -> None:
    env = installed.env(tmp_path / "home", KUBECONFIG=str(kubeconfig))

    def kubelab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [installed.bin / "kubelab", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    made = kubelab("init", "course", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    course = tmp_path / "course"
    mine = course / "labs" / "01-control-loop" / "starter"
    # The learner's own (still unfinished) controller: the starter, with a reconcile of theirs.
    mark = f"my-{uuid.uuid4().hex[:6]}"
    theirs = f"\n\ndef reconcile(*args, **kwargs):\n    raise RuntimeError({mark!r})\n"
    (mine / "controller.py").write_text((mine / "controller.py").read_text() + theirs)
    for step in (
        ("reset", "01", "-n", namespace),
        ("apply", str(mine / "configmapset.yaml"), "-n", namespace),
    ):
        done = kubelab(*step, cwd=course)
        assert done.returncode == 0, (step, done.stdout, done.stderr)

    proc = kubelab("check", "01", "-n", namespace, "--json", "--timeout", "30", cwd=course)
    assert proc.returncode == 1, proc.stderr  # the starter fails
    report = json.loads(proc.stdout)
    assert report["lab"] == "01-control-loop"
    messages = {c["id"]: str(c["message"]) for c in report["checks"]}
    assert "grader error" not in json.dumps(report)
    assert mark in messages["reconcile"], messages
