"""Build the kind cluster's node image and every image it runs, from pinned sources, offline.

No image registry is needed or contacted. What goes in:

- Go binaries from the wrapper modules in ``kind/modules`` (`kind_pins.COMPONENTS`), fetched only
  through the Go module proxy: Kubernetes v1.36.3, etcd, containerd, runc, crictl, CNI plugins,
  CoreDNS, kube-router, local-path-provisioner, metrics-server, Traefik, and kind itself;
- Debian root filesystems made by mmdebstrap from the suite and packages in ``kind/debian.json``;
- ``pause.c`` from the Kubernetes module, compiled with ``gcc -static``; demo-web from
  ``apps/demo-web``.

Each container image is written as a ``docker save``-style archive by `write_image` (layers are
plain tars, so no Docker is needed for them). The node image starts from the Debian rootfs with
kind's own base files (from the pinned kind module), and every image archive is imported into its
containerd content store at build time, as kind's own ``kind build node-image`` does. So every node
boots with all images present and nothing is ever pulled.

Stages are cached under ``<cache>/kind``, each keyed by what decides it: ``bin/<key>`` (the Go pins
and recipe), ``rootfs/<key>`` (``debian.json``) and ``images/<key>`` (both, plus demo-web's
sources and the runtime shim); the node image is ``kubelab/kind-node:v1.36.3-<key>`` in Docker.
A binary or rootfs finished before an interrupted build is kept and reused.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelab import paths, progress, tools
from kubelab.cluster import kind_pins
from kubelab.cluster.kind_pins import COMPONENTS, K8S_VERSION, Component
from kubelab.errors import KubelabError

RECIPE_VERSION = "1"  # bump when the build recipe below changes meaning
NODE_REPO = "kubelab/kind-node"
SHIM = kind_pins.KIND_DIR / "runc-shim"
DEMO_WEB_DIR = paths.APPS_DIR / "demo-web"
DEMO_WEB_VERSIONS = ("v1", "v2")
# Deterministic layers: every file is dated to this instant, owned by root unless said otherwise.
EPOCH = 0


# --- keys ------------------------------------------------------------------------------------------


def _hash(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big") + p)
    return h.hexdigest()[:16]


def bin_key() -> str:
    """Hash the Go pins and the recipe: a changed pin gives new binaries."""
    parts = [f"recipe={RECIPE_VERSION}".encode()]
    for c in COMPONENTS:
        parts.append(json.dumps([c.name, c.binaries, c.ldflags, c.tags, c.cgo, c.assets]).encode())
        for f in ("go.mod", "go.sum"):
            path = c.module_dir / f
            if not path.is_file():
                raise KubelabError(f"{path} is missing: the kind pins are incomplete")
            parts.append(path.read_bytes())
    return _hash(*parts)


def rootfs_key() -> str:
    """Hash the Debian pins."""
    return _hash(f"recipe={RECIPE_VERSION}".encode(), kind_pins.DEBIAN_PINS.read_bytes())


def demo_web_hash() -> str:
    """Hash demo-web's sources (its Go files and go.mod)."""
    files = sorted(f for f in DEMO_WEB_DIR.iterdir() if f.suffix == ".go" or f.name == "go.mod")
    return _hash(*(f.name.encode() + b"\0" + f.read_bytes() for f in files))


def image_key() -> str:
    """Hash everything that decides the node image and the images inside it."""
    return _hash(
        bin_key().encode(), rootfs_key().encode(), demo_web_hash().encode(), SHIM.read_bytes()
    )


def node_image() -> str:
    """Return the node image's name for the current pins."""
    return f"{NODE_REPO}:{K8S_VERSION}-{image_key()}"


def kind_root() -> Path:
    """Return ``<cache>/kind``."""
    return paths.cache_home() / "kind"


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _atomic_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))


# --- Go binaries -----------------------------------------------------------------------------------


def go_env(comp: Component | None = None) -> dict[str, str]:
    """Return the environment for go commands: local toolchain, static binaries."""
    env = dict(os.environ)
    env.update({"GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"})
    env["CGO_ENABLED"] = "1" if comp is not None and comp.cgo else "0"
    return env


def _go(args: list[str], cwd: Path, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    go = tools.require("go", "to build the kind images (once, about 30 min)")
    return tools.run([go, *args], env=go_env(), cwd=cwd, timeout=timeout, what=f"go {args[0]}")


def module_source(comp: Component) -> Path:
    """Return the extracted, checksum-verified source of `comp` in the Go module cache."""
    proc = _go(["mod", "download", "-json", f"{comp.module}@{comp.version}"], comp.module_dir)
    return Path(json.loads(proc.stdout)["Dir"])


def _run_streaming(argv: list[str], st: progress.Status, what: str, **kw: Any) -> None:
    """Run a long build, counting its output lines into the status; fail with its last lines."""
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        **kw,
    )
    assert proc.stdout is not None
    tail: deque[str] = deque(maxlen=30)
    lines = 0
    for line in proc.stdout:
        tail.append(line.rstrip())
        lines += 1
        st.update(f"{lines} steps")
    if proc.wait() != 0:
        log = kind_root() / "build-error.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(argv)}\n" + "\n".join(tail) + "\n")
        last = next((t for t in reversed(tail) if t.strip()), "no output")
        raise KubelabError(f"{what} failed: {last[:300]} (log: {log})")


def _nice() -> list[str]:
    # Builds share the machine with whatever else runs: stay out of its way.
    return ["nice", "-n", "15"] if shutil.which("nice") else []


def build_binaries() -> Path:
    """Build every pinned Go binary (and pause) into ``<cache>/kind/bin/<key>``; reuse finished ones."""
    out = kind_root() / "bin" / bin_key()
    if (out / "versions.json").is_file():
        return out
    with _lock(kind_root() / "bin" / "build.lock"):
        if (out / "versions.json").is_file():
            return out
        (out / "bin").mkdir(parents=True, exist_ok=True)
        todo = [(c, b, p) for c in COMPONENTS for b, p in c.binaries.items()]
        times: dict[str, float] = {}
        stamp_path = out / "times.json"
        if stamp_path.is_file():
            times = json.loads(stamp_path.read_text())
        for i, (comp, binary, package) in enumerate(todo, 1):
            target = out / "bin" / binary
            if target.is_file():
                continue
            started = time.monotonic()
            with progress.status(f"Building {binary} {comp.version} ({i}/{len(todo)})") as st:
                _build_go(comp, package, target, st)
            times[binary] = round(time.monotonic() - started, 1)
            stamp_path.write_text(json.dumps(times, indent=2))
        if not (out / "bin" / "pause").is_file():
            started = time.monotonic()
            with progress.status(f"Building pause {kind_pins.PAUSE_VERSION} (gcc -static)"):
                _build_pause(out / "bin" / "pause")
            times["pause"] = round(time.monotonic() - started, 1)
        for version in DEMO_WEB_VERSIONS:
            target = out / "bin" / f"demo-web-{version}"
            if not target.is_file():
                with progress.status(f"Building demo-web {version}") as st:
                    _build_demo_web(version, target, st)
        for comp in COMPONENTS:
            for source, name in comp.assets:
                if not (out / "assets" / name).is_dir():
                    tmp = _atomic_dir(out / "assets" / name)
                    shutil.rmtree(tmp)
                    shutil.copytree(module_source(comp) / source, tmp)
                    tmp.rename(out / "assets" / name)
        stamp = {
            "key": out.name,
            "go": _go(["env", "GOVERSION"], paths.REPO_ROOT).stdout.strip(),
            "versions": {c.name: c.version for c in COMPONENTS},
            "build_seconds": times,
        }
        stamp_path.write_text(json.dumps(times, indent=2))
        (out / "versions.json").write_text(json.dumps(stamp, indent=2) + "\n")
    return out


def _build_go(comp: Component, package: str, target: Path, st: progress.Status) -> None:
    go = tools.require("go", "to build the kind images (once, about 30 min)")
    ldflags = " ".join(("-s", "-w", *comp.ldflags))
    tmp = target.with_name(f".{target.name}.tmp")
    argv = [*_nice(), str(go), "build", "-v", "-trimpath", "-ldflags", ldflags]
    if comp.tags:
        argv += ["-tags", ",".join(comp.tags)]
    argv += ["-o", str(tmp), package]
    _run_streaming(argv, st, f"building {target.name}", cwd=comp.module_dir, env=go_env(comp))
    tmp.rename(target)


def _build_pause(target: Path) -> None:
    k8s = next(c for c in COMPONENTS if c.name == "kubernetes")
    src = module_source(k8s) / "build" / "pause" / "linux" / "pause.c"
    gcc = tools.require("gcc", "to build the pause image (apt install gcc)")
    tmp = target.with_name(".pause.tmp")
    tools.run(
        [
            *_nice(),
            gcc,
            "-Os",
            "-Wall",
            "-Werror",
            "-static",
            f'-DVERSION=v{kind_pins.PAUSE_VERSION}-kubelab',
            "-o",
            tmp,
            src,
        ],
        timeout=300,
        what="gcc pause.c",
    )
    tmp.rename(target)


def _build_demo_web(version: str, target: Path, st: progress.Status) -> None:
    go = tools.require("go", "to build the demo app")
    tmp = target.with_name(f".{target.name}.tmp")
    argv = [*_nice(), str(go), "build", "-trimpath", "-ldflags"]
    argv += [f"-s -w -X main.version={version}", "-o", str(tmp), "."]
    _run_streaming(argv, st, f"building demo-web {version}", cwd=DEMO_WEB_DIR, env=go_env())
    tmp.rename(target)
