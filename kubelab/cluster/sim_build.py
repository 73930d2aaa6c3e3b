"""Build the simulated cluster's binaries from pinned Go modules, once per pin set.

Each upstream project is built from its own small wrapper module under ``sim/modules/<name>/``
(its ``go.mod`` pins the version, its ``go.sum`` the checksums), so projects never raise each
other's dependencies. Only the Go module proxy is contacted. The binaries go to
``<cache>/sim/<key>/bin`` where ``key`` hashes the wrapper modules, the build recipe and the Go
version: a changed pin gives a new key and a rebuild, an unchanged one is reused at once.

Run ``scripts/repin-sim`` after editing `COMPONENTS` to regenerate the wrapper modules.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelab import paths, progress, tools
from kubelab.cluster import machine_lock
from kubelab.errors import KubelabError
from kubelab.i18n import N_, _

MODULES_DIR = paths.SIM_DIR / "modules"
RECIPE_VERSION = "2"  # bump to force a rebuild when the recipe below changes meaning


def _k8s_ldflags(version: str) -> tuple[str, ...]:
    # kwokctl parses `<binary> --version` to choose flags; an unstamped v0.0.0 misleads it.
    minor = version.split(".")[1]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return tuple(flags)


@dataclass(frozen=True)
class Component:
    """One upstream Go project and the binaries kubelab builds from it."""

    name: str  # folder under sim/modules
    module: str  # upstream module path
    version: str
    binaries: dict[str, str]  # binary name -> main package
    ldflags: tuple[str, ...] = ()
    staging_replaces: bool = False  # k8s.io/kubernetes: map ./staging replaces to published tags
    build: bool = True
    # folders copied from the module into <build>/assets/<name>, e.g. manifests kwokctl needs
    assets: tuple[tuple[str, str], ...] = ()
    # the folder holding the wrapper modules (kind keeps its own, under kind/modules)
    modules_root: Path = MODULES_DIR
    # Go build tags; cgo only where a binary needs C (runc's seccomp), and then linked statically
    tags: tuple[str, ...] = ()
    cgo: bool = False

    @property
    def module_dir(self) -> Path:
        """The wrapper module's folder."""
        return self.modules_root / self.name


K8S_VERSION = "v1.36.3"

COMPONENTS: tuple[Component, ...] = (
    Component(
        name="kubernetes",
        module="k8s.io/kubernetes",
        version=K8S_VERSION,
        binaries={
            "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
            "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
            "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
        },
        ldflags=_k8s_ldflags(K8S_VERSION),
        staging_replaces=True,
    ),
    Component(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version="v3.6.16",
        binaries={"etcd": "go.etcd.io/etcd/server/v3"},
    ),
    Component(
        name="kwok",
        module="sigs.k8s.io/kwok",
        version="v0.8.0",
        binaries={"kwok": "sigs.k8s.io/kwok/cmd/kwok", "kwokctl": "sigs.k8s.io/kwok/cmd/kwokctl"},
        ldflags=(
            "-X sigs.k8s.io/kwok/pkg/consts.Version=0.8.0",
            f"-X sigs.k8s.io/kwok/pkg/consts.KubeVersion={K8S_VERSION.lstrip('v')}",
        ),
    ),
    Component(
        name="metrics-server",
        module="sigs.k8s.io/metrics-server",
        version="v0.8.0",
        binaries={"metrics-server": "sigs.k8s.io/metrics-server/cmd/metrics-server"},
        ldflags=("-X k8s.io/client-go/pkg/version.gitVersion=v0.8.0",),
        # kwokctl installs metrics-server's APIService/RBAC from this kustomize base; without it
        # kwokctl would fetch components.yaml from GitHub.
        assets=(("manifests/base", "metrics-server-manifests"),),
    ),
    # Not built: pinned so the vendored CRDs in manifests/gateway-api/ can be checked against it.
    Component(
        name="gateway-api",
        module="sigs.k8s.io/gateway-api",
        version="v1.6.3",
        binaries={},
        build=False,
    ),
)


def go_env() -> dict[str, str]:
    """Return the environment for every go command: local toolchain, static binaries."""
    env = dict(os.environ)
    env.update({"GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"})
    return env


def _go(*args: str, cwd: Path, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    go = tools.require("go", N_("to build the simulated cluster's binaries (once, about 10 min)"))
    return tools.run([go, *args], env=go_env(), cwd=cwd, timeout=timeout, what=f"go {args[0]}")


def go_version() -> str:
    """Return the local Go version, e.g. ``go1.26.8``."""
    return _go("env", "GOVERSION", cwd=paths.SIM_DIR).stdout.strip()


def build_key() -> str:
    """Hash everything that decides the binaries: the recipe, the pins and their checksums.

    It needs no Go, so a cached build is found on a machine that cannot build.
    """
    h = hashlib.sha256(f"recipe={RECIPE_VERSION}".encode())
    for c in COMPONENTS:
        if not c.build:
            continue
        h.update(json.dumps([c.name, c.binaries, c.ldflags, c.assets]).encode())
        for f in ("go.mod", "go.sum"):
            path = c.module_dir / f
            if not path.is_file():
                raise KubelabError(f"{path} is missing: the sim pins are incomplete")
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def binaries_needed() -> list[str]:
    """Names of all binaries the sim cluster needs."""
    return [b for c in COMPONENTS for b in c.binaries]


def _complete(out: Path) -> bool:
    """Tell whether `out` holds a finished build (stamp, every binary, every asset)."""
    return (
        (out / "versions.json").is_file()
        and all((out / "bin" / b).is_file() for b in binaries_needed())
        and all((out / "assets" / name).is_dir() for c in COMPONENTS for _source, name in c.assets)
    )


def build_dir() -> Path:
    """Return the folder for the current pins' binaries (``<cache>/sim/<key>``), made or not.

    `sim_fetch` fills the same folder with release binaries, so `ensure_built` finds either.
    """
    return paths.cache_home() / "sim" / build_key()


def is_complete(out: Path) -> bool:
    """Tell whether `out` holds every binary, every asset and the stamp, however they came."""
    return _complete(out)


@contextmanager
def build_lock() -> Iterator[None]:
    """Hold the lock that stops two processes filling the sim cache at the same time."""
    with machine_lock.held(paths.cache_home() / "sim" / "build.lock"):
        yield


def publish(tmp: Path, out: Path, stamp: dict[str, Any]) -> None:
    """Stamp a filled temporary folder and rename it to `out`: a build is never half there."""
    (tmp / "versions.json").write_text(json.dumps(stamp, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def ensure_built() -> Path:
    """Return the directory holding the sim binaries, building them first if the pins changed."""
    root = paths.cache_home() / "sim"
    out = root / build_key()
    if not _complete(out):
        tools.require("go", N_("to build the simulated cluster's binaries (once, about 10 min)"))
        with machine_lock.held(root / "build.lock"):
            if not _complete(out):  # another process may have built it while we waited
                _build_all(out)
                _prune(root, keep=out)
    return out / "bin"


def _prune(root: Path, *, keep: Path, spare: int = 1) -> None:
    """Delete old builds (about 500 MB each), keeping `keep` and the `spare` newest others."""
    builds = [d for d in root.iterdir() if d.is_dir() and (d / "versions.json").is_file()]
    older = sorted((d for d in builds if d != keep), key=lambda d: d.stat().st_mtime, reverse=True)
    for stale in older[spare:]:
        shutil.rmtree(stale, ignore_errors=True)


def _build_all(out: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="build-", dir=out.parent))
    try:
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        todo = [(c, b, p) for c in COMPONENTS if c.build for b, p in c.binaries.items()]
        started = time.monotonic()
        for i, (comp, binary, package) in enumerate(todo, 1):
            label = _("Building {binary} {version} ({i}/{n})").format(
                binary=binary, version=comp.version, i=i, n=len(todo)
            )
            with progress.status(label) as st:
                _build_one(comp, package, bin_dir / binary, st)
        for comp in COMPONENTS:
            for source, name in comp.assets:
                shutil.copytree(_module_dir(comp) / source, tmp / "assets" / name)
        versions = {c.name: c.version for c in COMPONENTS if c.build}
        stamp = {
            "key": out.name,
            "go": go_version(),
            "versions": versions,
            "build_seconds": round(time.monotonic() - started, 1),
        }
        publish(tmp, out, stamp)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _module_dir(comp: Component) -> Path:
    """Return the extracted, checksum-verified source of `comp` in the module cache."""
    proc = _go("mod", "download", "-json", f"{comp.module}@{comp.version}", cwd=comp.module_dir)
    return Path(json.loads(proc.stdout)["Dir"])


def _build_one(comp: Component, package: str, target: Path, st: progress.Status) -> None:
    go = tools.require("go", N_("to build the simulated cluster's binaries (once, about 10 min)"))
    ldflags = " ".join(("-s", "-w", *comp.ldflags))
    argv = [str(go), "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", str(target), package]
    proc = subprocess.Popen(
        argv,
        cwd=comp.module_dir,
        env=go_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    compiled = 0
    tail: deque[str] = deque(maxlen=20)
    for line in proc.stderr:
        tail.append(line.rstrip())
        if line and not line.startswith(("go:", "#", " ")):
            compiled += 1
            st.update(_("{n} packages compiled").format(n=compiled))
    if proc.wait() != 0:
        errors = [t for t in tail if t.strip()]
        log = paths.cache_home() / "sim" / "build-error.log"
        log.write_text("\n".join(tail) + "\n")
        raise KubelabError(
            _("building {binary} failed: {reason} (log: {log})").format(
                binary=target.name, reason=errors[-1] if errors else _("no output"), log=log
            )
        )


# --- maintainers: regenerate the wrapper modules from COMPONENTS ---------------------------------


def repin() -> None:
    """Rewrite every wrapper module's go.mod/go.sum from `COMPONENTS` (needs the module proxy)."""
    go_bin = tools.require("go", "to re-pin the sim modules")
    env = go_env() | {"GOFLAGS": "-mod=mod"}
    for c in COMPONENTS:
        _repin_one(c, go_bin, env)


def _repin_one(c: Component, go_bin: Path, env: dict[str, str]) -> None:
    """Regenerate one wrapper module."""
    d = c.module_dir
    d.mkdir(parents=True, exist_ok=True)
    for f in ("go.mod", "go.sum"):
        (d / f).unlink(missing_ok=True)

    def go(*args: str) -> str:
        return tools.run([go_bin, *args], env=env, cwd=d, timeout=1800).stdout

    go("mod", "init", f"kubelab.invalid/{d.parent.parent.name}/{c.name}")
    info = json.loads(go("mod", "download", "-json", f"{c.module}@{c.version}"))
    upstream = json.loads(go("mod", "edit", "-json", info["GoMod"]))
    # Require no newer Go than upstream does, not whatever Go the maintainer happens to run.
    edits = [f"-go={upstream['Go']}"]
    if c.staging_replaces:
        edits += [f"-godebug={g['Key']}={g['Value']}" for g in upstream.get("Godebug") or []]
        staging = "v0." + c.version.split(".", 1)[1]
        for r in upstream.get("Replace") or []:
            if r["New"]["Path"].startswith("./staging/"):
                p = r["Old"]["Path"]
                edits.append(f"-replace={p}={p}@{staging}")
    # Upstream's own replaces to other modules (forks it builds with) apply only in its own
    # go.mod; a wrapper must repeat them or it builds against other sources than upstream does.
    for r in upstream.get("Replace") or []:
        new = r["New"]
        if new["Path"].startswith(".") or not new.get("Version"):
            continue
        old = r["Old"]["Path"] + (f"@{r['Old']['Version']}" if r["Old"].get("Version") else "")
        edits.append(f"-replace={old}={new['Path']}@{new['Version']}")
    go("mod", "edit", *edits)
    if c.binaries:
        go("get", "-tool", *(f"{p}@{c.version}" for p in c.binaries.values()))
        go("mod", "tidy")
    else:  # nothing imports it, so tidy would drop it: keep go get's require and sums
        go("get", f"{c.module}@{c.version}")
    print(f"pinned {c.module}@{c.version} in {d}")
