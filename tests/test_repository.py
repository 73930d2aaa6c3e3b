"""Repository invariants: pins agree, vendored files match the pins, no build output committed."""

from __future__ import annotations

import re
import subprocess

import pytest

from kubelab import paths
from kubelab.cluster import gateway_crds
from kubelab.cluster.sim_build import COMPONENTS, go_env


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_wrapper_module_requires_the_pinned_version(component) -> None:  # type: ignore[no-untyped-def]
    gomod = (component.module_dir / "go.mod").read_text()
    assert re.search(
        rf"^\s*(require\s+)?{re.escape(component.module)} {component.version}\b", gomod, re.M
    ), f"{component.module} {component.version} not required"
    assert (component.module_dir / "go.sum").read_text().strip(), "go.sum is empty"
    for binary, package in component.binaries.items():
        assert re.search(rf"^\s*(tool\s+)?{re.escape(package)}$", gomod, re.M), binary


def test_wrapper_modules_are_tidy_and_verified() -> None:
    # `go mod verify` checks the downloaded modules against go.sum; -mod=readonly (in go_env)
    # makes any go.mod drift an error instead of a silent edit.
    for c in COMPONENTS:
        proc = subprocess.run(
            ["go", "list", "-m", c.module],
            cwd=c.module_dir,
            env=go_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [c.module, c.version]


def test_vendored_gateway_crds_match_the_pinned_module() -> None:
    assert gateway_crds.VENDORED.read_text(encoding="utf-8") == gateway_crds.render()


def test_no_binary_or_build_output_is_tracked() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=paths.REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    too_big = [f for f in files if (paths.REPO_ROOT / f).stat().st_size > 2 * 1024 * 1024]
    assert too_big == []
    for f in files:
        head = (paths.REPO_ROOT / f).read_bytes()[:4]
        assert head != b"\x7fELF", f"{f} is a compiled binary"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (paths.REPO_ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(\./[\w-]+)", quick_start, re.M)
    assert len(commands) == 2, commands
    ci = (paths.REPO_ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci


def test_constraints_pin_every_dependency_within_its_floor() -> None:
    from importlib.metadata import requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (paths.REPO_ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    wanted = [Requirement(r) for r in requires("kubelab") or []]
    assert any(r.name == "kubernetes" for r in wanted)
    for req in wanted:
        if canonicalize_name(req.name) == "setuptools":
            continue  # a build tool: pip freeze leaves it out
        pin = pins.get(canonicalize_name(req.name))
        assert pin is not None, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pin), f"{req.name}=={pin} is outside {req.specifier}"


def test_readme_is_for_learners_and_links_the_instructor_and_workshop_pages() -> None:
    readme = (paths.REPO_ROOT / "README.md").read_text()
    sections = re.findall(r"^## (.+)$", readme, re.M)
    assert sections[0] == "Quick start"
    assert readme.index("### Learners") < readme.index("### Contributors")
    pages = {
        "docs/instructors.md": "kubelab grade autograde",
        "docs/workshops.md": "kubelab workshop status",
    }
    for page, command in pages.items():
        assert f"]({page})" in readme, page
        assert command in (paths.REPO_ROOT / page).read_text(), page
        assert command not in readme, f"{command!r} belongs in {page}"
    for page in pages:
        for target in re.findall(
            r"\]\(([^)#:]+)(?:#[^)]*)?\)", (paths.REPO_ROOT / page).read_text()
        ):
            assert (paths.REPO_ROOT / page).parent.joinpath(target).exists(), (page, target)
