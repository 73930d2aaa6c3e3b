"""`pip install kubelab` is the product: the wheel carries the course and runs outside the checkout.

tests/cluster/test_wheel_check.py grades a lab with the installed wheel against the sim cluster.
"""

from __future__ import annotations

import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelab import labs
from tests.installed_wheel import Installed, build_and_install, tracked_files

pytestmark = pytest.mark.slow

# Where each top-level folder of the repository lands in the wheel (pyproject.toml maps them).
COURSE = {
    "labs": "kubelab/_course/labs",
    "notebooks": "kubelab/_course/notebooks",
    "manifests": "kubelab/_course/manifests",
    "sim": "kubelab/_course/sim",
    "kind": "kubelab/_course/kind",
    "apps": "kubelab/_course/apps",
    "graders": "kubelab/graders",
    "kubelab": "kubelab",
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    done = build_and_install(tmp_path_factory.mktemp("wheel"))
    size = done.wheel.stat().st_size
    print(
        f"\nwheel {done.wheel.name}: {size / 1e6:.2f} MB, built in {done.build_seconds:.1f} s;"
        f" fresh venv + pip install --no-deps: {done.install_seconds:.1f} s"
    )
    yield done


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return {n for n in z.namelist() if not n.endswith("/")}


def test_the_wheel_carries_the_course_and_no_other_top_level_name(installed: Installed) -> None:
    names = _names(installed.wheel)
    dist_info = {n for n in names if ".dist-info/" in n}
    assert {n.split("/")[0] for n in names - dist_info} == {"kubelab"}
    expected = set()
    for name in tracked_files():
        top, _, rest = name.partition("/")
        if (
            top in COURSE
            and rest
            and not (top == "graders" and rest != "README.md" and not rest.endswith(".py"))
        ):
            expected.add(f"{COURSE[top]}/{rest}")
        if re.fullmatch(r"docs/glossary(\.[\w-]+)?\.md", name):  # of docs/, the learners' pages
            expected.add(f"kubelab/_course/{name}")
    expected.add("kubelab/py.typed")
    assert names - dist_info == expected
    metadata = next(n for n in dist_info if n.endswith("/METADATA"))
    with zipfile.ZipFile(installed.wheel) as z:
        meta = z.read(metadata).decode()
    assert "License-Expression: Apache-2.0" in meta
    assert "Requires-Dist: kubernetes>=37" in meta
    assert any(n.endswith("licenses/LICENSE") for n in dist_info)


def _kubelab(installed: Installed, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [installed.bin / "kubelab", *args],
        cwd=cwd,
        env=installed.env(cwd / "home"),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_installed_kubelab_reads_the_course_from_the_wheel(
    installed: Installed, tmp_path: Path
) -> None:
    where = subprocess.run(
        [
            installed.bin / "python",
            "-c",
            "import kubelab.paths as p, kubelab.graders as g;"
            " print(p.COURSE_ROOT); print(g.__file__)",
        ],
        cwd=tmp_path,
        env=installed.env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    venv = installed.bin.parent
    assert all(Path(w).is_relative_to(venv) for w in where), where
    proc = _kubelab(installed, tmp_path, "labs")
    assert proc.returncode == 0, proc.stderr
    for lab in labs.all_labs():
        assert lab.id in proc.stdout


def test_installed_kubelab_makes_a_workspace_without_solutions(
    installed: Installed, tmp_path: Path
) -> None:
    proc = _kubelab(installed, tmp_path, "init", "course")
    assert proc.returncode == 0, proc.stderr
    made = {p.relative_to(tmp_path / "course").as_posix() for p in (tmp_path / "course").rglob("*")}
    for lab in labs.all_labs():
        assert f"labs/{lab.id}/starter" in made
    assert any(m.startswith("notebooks/") and m.endswith(".ipynb") for m in made)
    assert "docs/glossary.md" in made  # the notebooks link it as ../docs/glossary.md
    assert not [m for m in made if "solution" in m.split("/")]
    for nb in (tmp_path / "course").rglob("*.ipynb"):
        assert "BEGIN SOLUTION" not in nb.read_text(), nb
