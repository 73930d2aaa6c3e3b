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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelab import paths, progress, tools
from kubelab.cluster import kind_pins, machine_lock
from kubelab.cluster.kind_pins import COMPONENTS
from kubelab.cluster.sim_build import K8S_VERSION, Component
from kubelab.errors import KubelabError
from kubelab.i18n import N_, _

RECIPE_VERSION = "1"  # bump when the build recipe below changes meaning
NODE_REPO = "kubelab/kind-node"
SHIM = kind_pins.KIND_DIR / "runc-shim"
DEMO_WEB_DIR = paths.APPS_DIR / "demo-web"
DEMO_WEB_VERSIONS = ("v1", "v2")
# Deterministic layers: every file is dated to this instant, owned by root unless said otherwise.
EPOCH = 0


# --- keys ----------------------------------------------------------------------------------------


def _hash(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big") + p)
    return h.hexdigest()[:16]


def component_key(c: Component) -> str:
    """Hash one component's pins and recipe: each is built and cached on its own."""
    parts = [f"recipe={RECIPE_VERSION}".encode()]
    # Assets (folders copied from a module) are not hashed: the pins decide their content.
    parts.append(json.dumps([c.name, c.binaries, c.ldflags, c.tags, c.cgo]).encode())
    for f in ("go.mod", "go.sum"):
        path = c.module_dir / f
        if not path.is_file():
            raise KubelabError(f"{path} is missing: the kind pins are incomplete")
        parts.append(path.read_bytes())
    return _hash(*parts)


def bin_key() -> str:
    """Hash every component's key, pause's and demo-web's."""
    return _hash(
        *(component_key(c).encode() for c in COMPONENTS),
        kind_pins.PAUSE_VERSION.encode(),
        demo_web_hash().encode(),
    )


def rootfs_key() -> str:
    """Hash the Debian pins."""
    return _hash(f"recipe={RECIPE_VERSION}".encode(), kind_pins.DEBIAN_PINS.read_bytes())


def demo_web_hash() -> str:
    """Hash demo-web's sources (its Go files and go.mod)."""
    files = sorted(f for f in DEMO_WEB_DIR.iterdir() if f.suffix == ".go" or f.name == "go.mod")
    return _hash(*(f.name.encode() + b"\0" + f.read_bytes() for f in files))


def image_key() -> str:
    """Hash everything that decides the node image and the images inside it.

    The image recipes are this module and `kind_manifests` (the node's /kind/manifests): any
    change to them rebuilds the images (about two minutes), never the binaries or the rootfs.
    """
    recipes = [
        Path(__file__).read_bytes(),
        (Path(__file__).parent / "kind_manifests.py").read_bytes(),
    ]
    return _hash(
        bin_key().encode(),
        rootfs_key().encode(),
        demo_web_hash().encode(),
        SHIM.read_bytes(),
        *recipes,
    )


def node_image() -> str:
    """Return the node image's name for the current pins."""
    return f"{NODE_REPO}:{K8S_VERSION}-{image_key()}"


def kind_root() -> Path:
    """Return ``<cache>/kind``."""
    return paths.cache_home() / "kind"


def _atomic_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))


# --- Go binaries ---------------------------------------------------------------------------------


def go_env(comp: Component | None = None) -> dict[str, str]:
    """Return the environment for go commands: local toolchain, static binaries."""
    env = dict(os.environ)
    env.update({"GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"})
    env["CGO_ENABLED"] = "1" if comp is not None and comp.cgo else "0"
    return env


def _go(args: list[str], cwd: Path, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    go = tools.require("go", N_("to build the kind images (once, about 30 min)"))
    return tools.run([go, *args], env=go_env(), cwd=cwd, timeout=timeout, what=f"go {args[0]}")


def module_source(comp: Component) -> Path:
    """Return the extracted, checksum-verified source of `comp` in the Go module cache."""
    proc = _go(["mod", "download", "-json", f"{comp.module}@{comp.version}"], comp.module_dir)
    return Path(json.loads(proc.stdout)["Dir"])


def run_streaming(
    argv: list[str], st: progress.Status, what: str, *, show_lines: bool = False, **kw: Any
) -> None:
    """Run a long command, showing its progress (line count or last line); fail with its tail."""
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
    for lines, line in enumerate(proc.stdout, 1):
        tail.append(line.rstrip())
        text = line.strip()
        st.update(text[:70] if show_lines and text else _("{n} steps").format(n=lines))
    if proc.wait() != 0:
        log = kind_root() / "build-error.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(argv)}\n" + "\n".join(tail) + "\n")
        last = next((t for t in reversed(tail) if t.strip()), _("no output"))
        raise KubelabError(
            _("{what} failed: {reason} (log: {log})").format(what=what, reason=last[:300], log=log)
        )


def _nice() -> list[str]:
    # Builds share the machine with whatever else runs: stay out of its way.
    return ["nice", "-n", "15"] if shutil.which("nice") else []


def obtainable() -> bool:
    """Tell whether the kind node image is built already. `auto` never starts the first build
    (about 40 min on 2 cores) behind a learner's back: `scripts/build-kind`, or `cluster up
    --backend kind`, asks for it."""
    try:
        return docker_image_exists(node_image())
    except KubelabError:
        return False


def require_build_tools() -> None:
    """Fail with one line, before any build output, if a program the build needs is missing."""
    for name in ("go", "gcc", "mmdebstrap"):
        if tools.find(name) is None:
            raise KubelabError(
                _(
                    "`{name}` is needed to build the kind images from pinned sources (once, about"
                    " 40 min on 2 cores) but was not found: install Go >= 1.26, and on Debian or"
                    " Ubuntu `apt install gcc mmdebstrap`; or use --backend sim"
                ).format(name=name)
            )


def _component_dir(c: Component) -> Path:
    return kind_root() / "bin" / f"{c.name}-{component_key(c)}"


def build_binaries() -> Path:
    """Build every pinned Go binary, pause and demo-web; return a folder of links to them all.

    Each component is cached in ``<cache>/kind/bin/<name>-<key>`` (so a changed pin rebuilds only
    its component); ``<cache>/kind/bin/all-<key>`` gathers ``bin/`` and ``assets/`` as links.
    """
    out = kind_root() / "bin" / f"all-{bin_key()}"
    if (out / "done").is_file():
        return out
    require_build_tools()
    with machine_lock.held(kind_root() / "bin" / "build.lock"):
        todo = [(c, b, p) for c in COMPONENTS for b, p in c.binaries.items()]
        for i, (comp, binary, package) in enumerate(todo, 1):
            cdir = _component_dir(comp)
            target = cdir / "bin" / binary
            if target.is_file():
                continue
            (cdir / "bin").mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            building = _("Building {binary} {version} ({i}/{n})").format(
                binary=binary, version=comp.version, i=i, n=len(todo)
            )
            with progress.status(building) as st:
                _build_go(comp, package, target, st)
            _record_time(cdir, binary, started)
        for comp in COMPONENTS:
            for source, name in comp.assets:
                dest = _component_dir(comp) / "assets" / name
                if not dest.is_dir():
                    tmp = _atomic_dir(dest)
                    shutil.rmtree(tmp)
                    shutil.copytree(module_source(comp) / source, tmp)
                    tmp.rename(dest)
        extra_key = _hash(
            kind_pins.PAUSE_VERSION.encode(),
            component_key(COMPONENTS[0]).encode(),
            demo_web_hash().encode(),
        )
        extra = kind_root() / "bin" / f"extra-{extra_key}"
        (extra / "bin").mkdir(parents=True, exist_ok=True)
        if not (extra / "bin" / "pause").is_file():
            started = time.monotonic()
            building = _("Building {what}").format(
                what=f"pause {kind_pins.PAUSE_VERSION} (gcc -static)"
            )
            with progress.status(building):
                _build_pause(extra / "bin" / "pause")
            _record_time(extra, "pause", started)
        for version in DEMO_WEB_VERSIONS:
            target = extra / "bin" / f"demo-web-{version}"
            if not target.is_file():
                started = time.monotonic()
                with progress.status(_("Building {what}").format(what=f"demo-web {version}")) as st:
                    _build_demo_web(version, target, st)
                _record_time(extra, target.name, started)
        tmp = _atomic_dir(out)
        (tmp / "bin").mkdir()
        (tmp / "assets").mkdir()
        for d in [*(_component_dir(c) for c in COMPONENTS), extra]:
            for sub in ("bin", "assets"):
                if (d / sub).is_dir():
                    for f in (d / sub).iterdir():
                        (tmp / sub / f.name).symlink_to(f)
        (tmp / "versions.json").write_text(
            json.dumps({c.name: c.version for c in COMPONENTS}, indent=2) + "\n"
        )
        (tmp / "done").write_text("")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    return out


def build_times() -> dict[str, float]:
    """Return binary -> seconds its last build took, for every binary built so far."""
    times: dict[str, float] = {}
    for f in (kind_root() / "bin").glob("*/times.json"):
        times.update(json.loads(f.read_text()))
    return times


def _record_time(cdir: Path, name: str, started: float) -> None:
    path = cdir / "times.json"
    times = json.loads(path.read_text()) if path.is_file() else {}
    times[name] = round(time.monotonic() - started, 1)
    path.write_text(json.dumps(times, indent=2) + "\n")


def _build_go(comp: Component, package: str, target: Path, st: progress.Status) -> None:
    go = tools.require("go", N_("to build the kind images (once, about 30 min)"))
    ldflags = " ".join(("-s", "-w", *comp.ldflags))
    tmp = target.with_name(f".{target.name}.tmp")
    argv = [*_nice(), str(go), "build", "-v", "-trimpath", "-ldflags", ldflags]
    if comp.tags:
        argv += ["-tags", ",".join(comp.tags)]
    argv += ["-o", str(tmp), package]
    what = _("building {what}").format(what=target.name)
    run_streaming(argv, st, what, cwd=comp.module_dir, env=go_env(comp))
    tmp.rename(target)


def _build_pause(target: Path) -> None:
    k8s = next(c for c in COMPONENTS if c.name == "kubernetes")
    src = module_source(k8s) / "build" / "pause" / "linux" / "pause.c"
    gcc = tools.require("gcc", N_("to build the pause image (apt install gcc)"))
    tmp = target.with_name(".pause.tmp")
    tools.run(
        [
            *_nice(),
            gcc,
            "-Os",
            "-Wall",
            "-Werror",
            "-static",
            f"-DVERSION=v{kind_pins.PAUSE_VERSION}-kubelab",
            "-o",
            tmp,
            src,
        ],
        timeout=300,
        what="gcc pause.c",
    )
    tmp.rename(target)


def _build_demo_web(version: str, target: Path, st: progress.Status) -> None:
    go = tools.require("go", N_("to build the demo app"))
    tmp = target.with_name(f".{target.name}.tmp")
    argv = [*_nice(), str(go), "build", "-trimpath", "-ldflags"]
    argv += [f"-s -w -X main.version={version}", "-o", str(tmp), "."]
    what = _("building {what}").format(what=f"demo-web {version}")
    run_streaming(argv, st, what, cwd=DEMO_WEB_DIR, env=go_env())
    tmp.rename(target)


# --- Debian root filesystems ---------------------------------------------------------------------

# What mmdebstrap leaves out of every rootfs: documentation the images never read.
_DPKG_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/locale/*",
    "/usr/share/info/*",
)
ROOTFS_VARIANTS = {
    # name: (mmdebstrap variant, debian.json key)
    "node": ("minbase", "node"),
    "net": ("minbase", "net"),
    "postgresql": ("minbase", "postgresql"),
    "busybox": ("extract", "busybox"),  # only the package's files, no package manager
}
# uid/gid the postgres image runs as (the labs set runAsUser 999, as for the upstream image)
POSTGRES_UID = 999


def debian_pins() -> dict[str, Any]:
    """Return the Debian pins (suite, mirror, packages per rootfs)."""
    pins: dict[str, Any] = json.loads(kind_pins.DEBIAN_PINS.read_text())
    return pins


def build_rootfs() -> Path:
    """Make every Debian rootfs tar into ``<cache>/kind/rootfs/<key>``; reuse finished ones."""
    out = kind_root() / "rootfs" / rootfs_key()
    if (out / "done.json").is_file():
        return out
    mmdebstrap = tools.require(
        "mmdebstrap", N_("to build the kind images (apt install mmdebstrap)")
    )
    pins = debian_pins()
    with machine_lock.held(kind_root() / "rootfs" / "build.lock"):
        out.mkdir(parents=True, exist_ok=True)
        times = {}
        for name, (variant, key) in ROOTFS_VARIANTS.items():
            target = out / f"{name}.tar"
            if target.is_file():
                continue
            started = time.monotonic()
            argv = [*_nice(), str(mmdebstrap), f"--variant={variant}", "--format=tar"]
            argv.append("--include=" + ",".join(pins[key]))
            argv += [f"--dpkgopt=path-exclude={p}" for p in _DPKG_EXCLUDES]
            if name == "postgresql":
                # The labs run postgres as uid 999 (as for the Docker library image); create the
                # user before the package does, so it gets that uid.
                argv.append(
                    f"--essential-hook=echo 'postgres:x:{POSTGRES_UID}:{POSTGRES_UID}:PostgreSQL "
                    'administrator:/var/lib/postgresql:/bin/bash\' >>"$1/etc/passwd" && '
                    f"echo 'postgres:x:{POSTGRES_UID}:' >>\"$1/etc/group\""
                )
            tmp = target.with_name(f".{target.name}.tmp")
            argv += [pins["suite"], str(tmp), pins["mirror"]]
            building = _("Building Debian {suite} rootfs {name}").format(
                suite=pins["suite"], name=repr(name)
            )
            with progress.status(building) as st:
                run_streaming(argv, st, f"mmdebstrap {name}")
            tmp.rename(target)
            times[name] = round(time.monotonic() - started, 1)
        (out / "done.json").write_text(json.dumps({"build_seconds": times}, indent=2) + "\n")
    return out


# --- image archives ------------------------------------------------------------------------------


@dataclass
class Layer:
    """One image layer being assembled: files, directories and links, as a deterministic tar."""

    entries: list[tuple[tarfile.TarInfo, bytes | Path | None]] = field(default_factory=list)

    def _info(self, name: str, kind: bytes, mode: int, uid: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name.lstrip("/"))
        info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, EPOCH, uid, uid
        return info

    def dir(self, name: str, mode: int = 0o755, uid: int = 0) -> Layer:
        """Add a directory."""
        self.entries.append((self._info(name, tarfile.DIRTYPE, mode, uid), None))
        return self

    def file(self, name: str, data: bytes | Path, mode: int = 0o644) -> Layer:
        """Add a file from bytes or from a path on disk."""
        info = self._info(name, tarfile.REGTYPE, mode)
        info.size = len(data) if isinstance(data, bytes) else data.stat().st_size
        self.entries.append((info, data))
        return self

    def link(self, name: str, target: str) -> Layer:
        """Add a symbolic link."""
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.entries.append((info, None))
        return self

    def write(self, fh: io.BufferedIOBase | Any) -> None:
        """Write the layer as a tar to an open binary file."""
        with tarfile.open(fileobj=fh, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for info, data in self.entries:
                if isinstance(data, Path):
                    with data.open("rb") as src:
                        tar.addfile(info, src)
                elif isinstance(data, bytes):
                    tar.addfile(info, io.BytesIO(data))
                else:
                    tar.addfile(info)


@dataclass
class Image:
    """A container image: its names, its layers (assembled or existing tars), its config."""

    tags: list[str]
    layers: list[Layer | Path]
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = field(
        default_factory=lambda: [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ]
    )
    user: str = ""
    workdir: str = ""
    ports: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            yield chunk


def write_image(image: Image, target: Path, workdir: Path) -> None:
    """Write `image` as a ``docker save``-style archive that ``ctr images import`` reads.

    Layers are gzip-compressed (level 1: fast, and it halves what every node copies).
    """
    layer_names: list[str] = []
    diff_ids: list[str] = []
    blobs: list[Path] = []
    for i, layer in enumerate(image.layers):
        raw = workdir / f"layer{i}.tar"
        if isinstance(layer, Layer):
            with raw.open("wb") as fh:
                layer.write(fh)
            src = raw
        else:
            src = layer
        gz = workdir / f"layer{i}.tar.gz"
        h = hashlib.sha256()
        with (
            gz.open("wb") as out,
            gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=1, mtime=0) as z,
        ):
            for chunk in _chunks(src):
                h.update(chunk)
                z.write(chunk)
        diff_ids.append("sha256:" + h.hexdigest())
        digest = hashlib.sha256()
        for chunk in _chunks(gz):
            digest.update(chunk)
        name = f"blobs/sha256/{digest.hexdigest()}"
        layer_names.append(name)
        blobs.append(gz)
        raw.unlink(missing_ok=True)
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Env": image.env,
            "Entrypoint": image.entrypoint,
            "Cmd": image.cmd,
            "User": image.user,
            "WorkingDir": image.workdir,
            "ExposedPorts": {p: {} for p in image.ports} or None,
            "Labels": image.labels or None,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "kubelab kind_build"}]
        * len(diff_ids),
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = f"blobs/sha256/{hashlib.sha256(config_bytes).hexdigest()}"
    manifest = [{"Config": config_name, "RepoTags": image.tags, "Layers": layer_names}]
    tmp = target.with_name(f".{target.name}.tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (
            ("manifest.json", json.dumps(manifest).encode()),
            (config_name, config_bytes),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), EPOCH
            tar.addfile(info, io.BytesIO(data))
        for name, blob in zip(layer_names, blobs, strict=True):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = blob.stat().st_size, EPOCH
            with blob.open("rb") as fh:
                tar.addfile(info, fh)
            blob.unlink()
    tmp.rename(target)


# --- the images ----------------------------------------------------------------------------------

REGISTRY = "registry.k8s.io"
ETCD_TAG = f"{kind_pins.ETCD_VERSION.lstrip('v')}-0"
IMAGES = {
    # what kubeadm and the add-on manifests name; kind_cluster patches kubeadm for etcd and CoreDNS
    "kube-apiserver": f"{REGISTRY}/kube-apiserver:{K8S_VERSION}",
    "kube-controller-manager": f"{REGISTRY}/kube-controller-manager:{K8S_VERSION}",
    "kube-scheduler": f"{REGISTRY}/kube-scheduler:{K8S_VERSION}",
    "kube-proxy": f"{REGISTRY}/kube-proxy:{K8S_VERSION}",
    "etcd": f"{REGISTRY}/etcd:{ETCD_TAG}",
    "coredns": f"{REGISTRY}/coredns/coredns:{kind_pins.COREDNS_VERSION}",
    "pause": f"{REGISTRY}/pause:{kind_pins.PAUSE_VERSION}",
    "metrics-server": f"{REGISTRY}/metrics-server/metrics-server:v0.8.0",
    "kube-router": "kubelab/kube-router:v2.1.0",
    "local-path-provisioner": "kubelab/local-path-provisioner:v0.0.30",
    "traefik": "kubelab/traefik:v3.6.12",
    "busybox": "kubelab/busybox-debian:1.37",
    "postgresql": "kubelab/postgresql-debian:17",
}
DEMO_WEB_REPO = "kubelab/demo-web"
# Labs 04 and 08 name upstream postgres tags (lab 08's seeded shop an untagged one), which a
# learner's own cluster pulls. With no registry in reach, `cluster up` tags Debian's postgresql
# (17) with those names on every kind node.
POSTGRES_ALIASES = (
    "docker.io/library/postgres:16.4",
    "docker.io/library/postgres:16.6",
    "docker.io/library/postgres:latest",
)

_PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
)
_GROUP = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"

# Debian's postgresql as the course's database image, started the way the Docker library image
# is: POSTGRES_PASSWORD/POSTGRES_USER/POSTGRES_DB on first start, PGDATA, listening on all
# addresses, password auth from the network. Started as root it hands the data folder to
# postgres (uid 999) and drops to it; started as 999 it uses the folder as it is.
POSTGRES_ENTRYPOINT = r"""#!/bin/bash
set -euo pipefail
export PGDATA=${PGDATA:-/var/lib/postgresql/data}
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /run/postgresql
  chown -R postgres:postgres "$PGDATA" /run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
mkdir -p "$PGDATA" && chmod 700 "$PGDATA" 2>/dev/null || true
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  pw=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pw"
  auth=trust
  [ -n "${POSTGRES_PASSWORD:-}" ] && auth=scram-sha-256
  initdb --username="$user" --pwfile="$pw" --auth-local=trust --auth-host="$auth" \
    >/dev/null
  rm -f "$pw"
  echo "host all all all $auth" >>"$PGDATA/pg_hba.conf"
  db=${POSTGRES_DB:-$user}
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \"$db\";" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "kubelab-postgres: initialised $PGDATA"
fi
exec postgres -c listen_addresses='*' "$@"
"""


def _static_base() -> Layer:
    return (
        Layer()
        .dir("/etc")
        .file("/etc/passwd", _PASSWD.encode())
        .file("/etc/group", _GROUP.encode())
        .file("/etc/nsswitch.conf", b"hosts: files dns\n")
        .dir("/tmp", 0o1777)
        .dir("/usr")
        .dir("/usr/local")
        .dir("/usr/local/bin")
    )


def _binary(path: str, src: Path) -> Layer:
    layer = Layer()
    parts = Path(path).parent.parts[1:]
    for i in range(len(parts)):
        layer.dir("/" + "/".join(parts[: i + 1]))
    return layer.file(path, src, 0o755)


def _busybox_layer(rootfs: Path, workdir: Path) -> Layer:
    """Debian's busybox-static as /bin/busybox with a link per applet."""
    binary = workdir / "busybox"
    with tarfile.open(rootfs / "busybox.tar") as tar:
        member = next(m for m in tar.getmembers() if m.name.rstrip("/").endswith("bin/busybox"))
        src = tar.extractfile(member)
        assert src is not None
        binary.write_bytes(src.read())
    binary.chmod(0o755)
    applets = tools.run([binary, "--list"], timeout=30, what="busybox --list").stdout.split()
    layer = _static_base().dir("/bin").dir("/usr/bin").file("/bin/busybox", binary, 0o755)
    for applet in applets:
        if applet != "busybox":
            layer.link(f"/bin/{applet}", "busybox")
    return layer.link("/usr/bin/env", "/bin/env")


def image_specs(bins: Path, rootfs: Path, workdir: Path) -> dict[str, Image]:
    """Return every image the kind cluster runs, by short name."""
    b = bins / "bin"
    base = _static_base()
    net = rootfs / "net.tar"
    specs: dict[str, Image] = {}
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        specs[name] = Image(
            [IMAGES[name]],
            [base, _binary(f"/usr/local/bin/{name}", b / name)],
            entrypoint=[f"/usr/local/bin/{name}"],
        )
    specs["kube-proxy"] = Image(
        [IMAGES["kube-proxy"]],
        [net, _binary("/usr/local/bin/kube-proxy", b / "kube-proxy")],
        entrypoint=["/usr/local/bin/kube-proxy"],
    )
    specs["etcd"] = Image(
        [IMAGES["etcd"]],
        [base, _binary("/usr/local/bin/etcd", b / "etcd")],
        entrypoint=["/usr/local/bin/etcd"],
    )
    specs["coredns"] = Image(
        [IMAGES["coredns"]], [base, _binary("/coredns", b / "coredns")], entrypoint=["/coredns"]
    )
    specs["pause"] = Image(
        [IMAGES["pause"]],
        [_binary("/pause", b / "pause")],
        entrypoint=["/pause"],
        user="65535:65535",
    )
    specs["metrics-server"] = Image(
        [IMAGES["metrics-server"]],
        [base, _binary("/metrics-server", b / "metrics-server")],
        entrypoint=["/metrics-server"],
        user="65534",
    )
    specs["kube-router"] = Image(
        [IMAGES["kube-router"]],
        [net, _binary("/usr/local/bin/kube-router", b / "kube-router")],
        entrypoint=["/usr/local/bin/kube-router"],
    )
    specs["local-path-provisioner"] = Image(
        [IMAGES["local-path-provisioner"]],
        [base, _binary("/usr/bin/local-path-provisioner", b / "local-path-provisioner")],
        entrypoint=["/usr/bin/local-path-provisioner"],
    )
    specs["traefik"] = Image(
        [IMAGES["traefik"]],
        [base, _binary("/usr/local/bin/traefik", b / "traefik")],
        entrypoint=["/usr/local/bin/traefik"],
        ports=["80/tcp", "443/tcp"],
    )
    specs["busybox"] = Image(
        [IMAGES["busybox"]], [_busybox_layer(rootfs, workdir)], cmd=["sh"], env=["PATH=/bin"]
    )
    specs["postgresql"] = Image(
        [IMAGES["postgresql"]],
        [
            rootfs / "postgresql.tar",
            Layer()
            .dir("/usr/local/bin")
            .file("/usr/local/bin/kubelab-postgres", POSTGRES_ENTRYPOINT.encode(), 0o755)
            # the socket's folder, which Debian makes at boot (tmpfiles), for a non-root start
            .dir("/run")
            .dir("/run/postgresql", 0o2775, uid=POSTGRES_UID),
        ],
        entrypoint=["/usr/local/bin/kubelab-postgres"],
        env=[
            "PATH=/usr/lib/postgresql/17/bin:/usr/local/bin:/usr/bin:/bin",
            "PGDATA=/var/lib/postgresql/data",
            "LANG=C.UTF-8",
        ],
        ports=["5432/tcp"],
    )
    for version in DEMO_WEB_VERSIONS:
        tags = [f"{DEMO_WEB_REPO}:{version}"]
        if version == "v1":
            # Lab 08 seeds `:latest` (the anti-pattern to fix) with IfNotPresent: a second name
            # for v1, as on a registry whose latest is v1.
            tags.append(f"{DEMO_WEB_REPO}:latest")
        specs[f"demo-web-{version}"] = Image(
            tags,
            [base, _binary("/demo-web", b / f"demo-web-{version}")],
            entrypoint=["/demo-web"],
            user="65532:65532",
            ports=["8080/tcp"],
            labels={
                "org.opencontainers.image.title": "kubelab demo-web",
                "org.opencontainers.image.version": version,
            },
        )
    return specs


def build_images(bins: Path, rootfs: Path) -> Path:
    """Write every image archive into ``<cache>/kind/images/<key>``; reuse finished ones."""
    out = kind_root() / "images" / image_key()
    if (out / "done.json").is_file():
        return out
    with machine_lock.held(kind_root() / "images" / "build.lock"):
        out.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="work-", dir=out))
        try:
            specs = image_specs(bins, rootfs, work)
            with progress.status(_("Writing {n} image archives").format(n=len(specs))) as st:
                for name, spec in specs.items():
                    target = out / f"{name}.tar"
                    if not target.is_file():
                        st.update(name)
                        write_image(spec, target, work)
            tags = {name: spec.tags for name, spec in specs.items()}
            (out / "done.json").write_text(json.dumps({"images": tags}, indent=2) + "\n")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out


# --- the node image ------------------------------------------------------------------------------

# Run inside the build container (the node rootfs, not booted): what kind's base Dockerfile does,
# then containerd is started just to import every image archive, as `kind build node-image` does.
NODE_SETUP = r"""set -euo pipefail
chmod 755 /kind /kind/bin
find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
  /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
  /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
echo ReadKMsg=no >>/etc/systemd/journald.conf
ln -sf /usr/lib/systemd/systemd /sbin/init
systemctl enable kubelet.service containerd.service undo-mount-hacks.service
systemctl mask systemd-binfmt.service
mkdir -p /etc/kubernetes/manifests
ctr oci spec \
  | jq '.hooks.createContainer[.hooks.createContainer | length] |=
        . + {"path": "/kind/bin/mount-product-files.sh"}' \
  | jq 'del(.process.rlimits)' >/etc/containerd/cri-base.json
containerd >/tmp/containerd.log 2>&1 &
for i in $(seq 50); do
  [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && break
  sleep 0.2
done
for f in /kind/images/*.tar; do
  ctr -n k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms \
    --no-unpack --digests "$f" >/dev/null
  echo "imported $(basename "$f")"
done
ctr -n k8s.io images ls -q | grep -v '^sha256:' | sort
kill %1; wait || true
rm -rf /kind/images /tmp/* /var/log/*.log
"""


def _containerd_config(kind_files: Path) -> bytes:
    """kind's containerd config, with our pause image and runc behind kind/runc-shim."""
    text = (kind_files / "etc" / "containerd" / "config.toml").read_text()
    text = text.replace(
        'sandbox_image = "registry.k8s.io/pause:3.10"', f'sandbox_image = "{IMAGES["pause"]}"'
    )
    # The shim changes nothing where the bounding set is complete (see kind/runc-shim).
    shim = '    BinaryName = "/usr/local/sbin/runc-shim"\n'
    for runtime in ("runc", "test-handler"):
        header = f'[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{runtime}.options]\n'
        if header not in text:
            raise KubelabError(f"kind's containerd config has no {header.strip()}: recipe outdated")
        text = text.replace(header, header + shim)
    return text.encode()


def _node_files(bins: Path, images: Path, manifests: dict[str, str]) -> Layer:
    """Everything copied onto the Debian rootfs: kind's base files, binaries, image archives."""
    b = bins / "bin"
    kind_files = bins / "assets" / "kind-base-files"
    layer = Layer()
    for d in (
        "/kind",
        "/kind/bin",
        "/kind/manifests",
        "/kind/images",
        "/opt",
        "/opt/cni",
        "/opt/cni/bin",
        "/usr/local/sbin",
        "/LICENSES",
    ):
        layer.dir(d)
    for src in sorted(kind_files.rglob("*")):
        rel = "/" + src.relative_to(kind_files).as_posix()
        if src.is_dir():
            layer.dir(rel)
        elif rel == "/etc/containerd/config.toml":
            layer.file(rel, _containerd_config(kind_files))
        else:
            executable = rel.startswith(("/usr/local/bin/", "/kind/bin/"))
            layer.file(rel, src, 0o755 if executable else 0o644)
    for name in ("containerd", "ctr", "containerd-shim-runc-v2", "crictl"):
        layer.file(f"/usr/local/bin/{name}", b / name, 0o755)
    layer.file("/usr/local/sbin/runc", b / "runc", 0o755)
    layer.file("/usr/local/sbin/runc-shim", SHIM, 0o755)
    for plugin in kind_pins.CNI_PLUGINS:
        layer.file(f"/opt/cni/bin/{plugin}", b / plugin, 0o755)
    for name in ("kubelet", "kubeadm", "kubectl"):
        layer.file(f"/usr/bin/{name}", b / name, 0o755)
    layer.file("/kind/version", K8S_VERSION.encode())
    for name, text in manifests.items():
        layer.file(f"/kind/manifests/{name}", text.encode())
    for archive in sorted(images.glob("*.tar")):
        layer.file(f"/kind/images/{archive.name}", archive)
    return layer


def _docker() -> Path:
    return tools.require("docker", N_("to build the kind node image"))


def docker_image_exists(image: str) -> bool:
    """Tell whether Docker has `image`."""
    proc = tools.run([_docker(), "image", "inspect", image], timeout=30, check=False)
    return proc.returncode == 0


def _copy_into(docker: Path, container: str, layer: Layer) -> None:
    """Stream `layer` as a tar into the container's root (``docker cp -``)."""
    proc = subprocess.Popen(
        [str(docker), "cp", "-", f"{container}:/"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stderr is not None
    try:
        layer.write(proc.stdin)
    finally:
        proc.stdin.close()
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise KubelabError(
            f"docker cp into the node build container failed: {tools.last_line(err)}"
        )


def _docker_build_metadata(docker: Path, base: str, target: str, instruction: str) -> None:
    """Tag `base` as `target` with one more Dockerfile instruction (no context, no network)."""
    proc = subprocess.run(
        [str(docker), "build", "-t", target, "-"],
        input=f"FROM {base}\n{instruction}\n",
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        check=False,
    )
    if proc.returncode != 0:
        raise KubelabError(f"docker build {target} failed: {tools.last_line(proc.stderr)}")


def build_node_image(bins: Path, rootfs: Path, images: Path, manifests: dict[str, str]) -> str:
    """Assemble the node image in Docker: rootfs, kind's files, imported images; return its name."""
    name = node_image()
    if docker_image_exists(name):
        return name
    docker = _docker()
    with machine_lock.held(kind_root() / "node.lock"):
        if docker_image_exists(name):
            return name
        base = f"{NODE_REPO}-rootfs:{rootfs_key()}"
        if not docker_image_exists(base):
            with progress.status(_("Importing the node rootfs into Docker")):
                tools.run(
                    [docker, "import", rootfs / "node.tar", base], timeout=900, what="docker import"
                )
        container = f"kubelab-kind-build-{image_key()}"
        tools.run([docker, "rm", "-f", container], timeout=60, check=False)
        with progress.status(_("Building node image {name}").format(name=name)) as st:
            st.update(_("starting the build container"))
            tools.run(
                [
                    docker,
                    "run",
                    "-d",
                    "--privileged",
                    "--name",
                    container,
                    "--entrypoint",
                    "sleep",
                    base,
                    "infinity",
                ],
                timeout=120,
                what="docker run (node build container)",
            )
            try:
                st.update(_("copying kind's files, binaries and image archives"))
                _copy_into(docker, container, _node_files(bins, images, manifests))
                st.update(_("importing the images into containerd"))
                run_streaming(
                    [str(docker), "exec", container, "bash", "-c", NODE_SETUP],
                    st,
                    _("setting up the node image"),
                )
                st.update(_("committing"))
                stage = f"{name}-stage"
                tools.run(
                    [
                        docker,
                        "commit",
                        "--change",
                        'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
                        "--change",
                        "ENV container=docker",
                        container,
                        stage,
                    ],
                    timeout=900,
                    what="docker commit",
                )
                # `docker commit` cannot set STOPSIGNAL; systemd shuts down cleanly on
                # SIGRTMIN+3, so add it with a build that only writes metadata (no registry).
                _docker_build_metadata(docker, stage, name, "STOPSIGNAL SIGRTMIN+3")
                tools.run([docker, "rmi", stage], timeout=120, check=False)
            finally:
                tools.run([docker, "rm", "-f", container], timeout=120, check=False)
    return name


def built_kind() -> Path | None:
    """Return the kind binary built from the pinned module, if it has been built."""
    comp = next(c for c in COMPONENTS if c.name == "kind")
    try:
        path = _component_dir(comp) / "bin" / "kind"
    except KubelabError:
        return None
    return path if path.is_file() else None


@dataclass(frozen=True)
class KindBuild:
    """Where a finished build is: binaries (kind, kubectl), manifests' sources, the node image."""

    bins: Path
    images: Path
    node_image: str

    @property
    def kind(self) -> Path:
        """The kind binary built from the pinned module."""
        return self.bins / "bin" / "kind"

    def asset(self, name: str) -> Path:
        """A folder copied from a pinned module (manifests, kind's base files)."""
        return self.bins / "assets" / name


def ensure_built() -> KindBuild:
    """Build (or find) everything the kind cluster needs; return where it is."""
    from kubelab.cluster import kind_manifests  # the manifests need the built assets

    started = time.monotonic()
    bins = build_binaries()
    rootfs = build_rootfs()
    images = build_images(bins, rootfs)
    manifests = kind_manifests.node_manifests(bins)
    node = build_node_image(bins, rootfs, images, manifests)
    stamp = images / "node.json"
    if not stamp.is_file():
        stamp.write_text(
            json.dumps({"image": node, "seconds": round(time.monotonic() - started, 1)}) + "\n"
        )
        _prune(images, node)
    return KindBuild(bins, images, node)


def _prune(keep_dir: Path, keep_image: str) -> None:
    """Drop older image archives (about 1 GB each) and node images no container uses."""
    root = keep_dir.parent
    older = [
        d for d in root.iterdir() if d.is_dir() and d != keep_dir and not d.name.startswith(".")
    ]
    for stale in older:
        shutil.rmtree(stale, ignore_errors=True)
    docker = _docker()
    listed = tools.run(
        [docker, "images", NODE_REPO, "--format", "{{.Repository}}:{{.Tag}}"],
        timeout=60,
        check=False,
    )
    for image in listed.stdout.split():
        if image != keep_image:
            # Refused (and left) while a cluster's node container still runs on it.
            tools.run([docker, "rmi", image], timeout=120, check=False)


def image_tags() -> dict[str, list[str]]:
    """Return every image name the node image carries, by short name."""
    tags = {name: [ref] for name, ref in IMAGES.items()}
    for version in DEMO_WEB_VERSIONS:
        tags[f"demo-web-{version}"] = [f"{DEMO_WEB_REPO}:{version}"]
    tags["demo-web-v1"].append(f"{DEMO_WEB_REPO}:latest")
    return tags
