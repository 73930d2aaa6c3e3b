"""Download the sim cluster's binaries as upstream release builds, for machines without Go.

Binder images (``binder/postBuild``) have internet but no Go toolchain. This module fetches the
exact versions pinned in `sim_build.COMPONENTS` from dl.k8s.io and the projects' GitHub releases
and lays them out like a Go build (``<cache>/sim/<key>/bin``, ``assets/``, ``versions.json``), so
`sim_build.ensure_built` and ``kubelab cluster up`` find them without knowing how they came.

Every file is checked: against the SHA-256 sums upstream publishes where it publishes them
(Kubernetes, etcd), and every binary must report its pinned version. The metrics-server manifests
kwokctl needs come from the module's zip on the Go module proxy, checked against ``go.sum``.
If a download fails and Go is installed, `ensure_binaries` builds from the pins instead; it is
what ``kubelab cluster up`` calls, so learners need no Go. ``$KUBELAB_SIM_SOURCE`` chooses:
``auto`` (the default: release, then Go), ``release`` or ``build`` (Go only, as ./run-tests does:
CI proves the offline path).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import platform
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kubelab import progress, tools
from kubelab.cluster import sim_build
from kubelab.errors import KubelabError
from kubelab.i18n import N_, _

TIMEOUT = 60  # seconds without data before a download counts as failed
CHUNK = 1 << 20


@dataclass(frozen=True)
class Sources:
    """Where releases are downloaded from (tests point these at a local server)."""

    kubernetes: str = "https://dl.k8s.io/release"
    github: str = "https://github.com"
    goproxy: str = ""  # empty: the first proxy in $GOPROXY, else proxy.golang.org


UPSTREAM = Sources()


@dataclass(frozen=True)
class Artifact:
    """One binary of the sim cluster, as upstream releases it."""

    binary: str  # its name under bin/
    version: str  # the pinned version it must report
    url: str
    sums_url: str | None  # upstream's SHA-256 list for `url`, None where none is published
    member: str | None = None  # the file inside `url` when it is a .tar.gz


def host_arch() -> str:
    """Return the release architecture of this machine (``amd64`` or ``arm64``)."""
    if sys.platform != "linux":
        raise KubelabError(_("release binaries of the sim cluster exist for Linux only"))
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if arch is None:
        raise KubelabError(
            _("no release binaries for {machine}; build them with scripts/build-sim").format(
                machine=machine
            )
        )
    return arch


def _pinned(name: str) -> sim_build.Component:
    return next(c for c in sim_build.COMPONENTS if c.name == name)


def artifacts(arch: str, sources: Sources = UPSTREAM) -> list[Artifact]:
    """Return the release download of every binary the sim cluster needs, at the pinned versions.

    The URL layouts are the ones kwokctl itself downloads from (sigs.k8s.io/kwok pkg/config).
    """
    kube, etcd = _pinned("kubernetes").version, _pinned("etcd").version
    kwok, metrics = _pinned("kwok").version, _pinned("metrics-server").version
    gh = sources.github
    k8s = f"{sources.kubernetes}/{kube}/bin/linux/{arch}"
    out = [
        Artifact(b, kube, f"{k8s}/{b}", f"{k8s}/{b}.sha256")
        for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
    ]
    etcd_dir = f"etcd-{etcd}-linux-{arch}"
    etcd_rel = f"{gh}/etcd-io/etcd/releases/download/{etcd}"
    out.append(
        Artifact(
            "etcd",
            etcd,
            f"{etcd_rel}/{etcd_dir}.tar.gz",
            f"{etcd_rel}/SHA256SUMS",
            member=f"{etcd_dir}/etcd",
        )
    )
    # No checksum files are known for the KWOK and metrics-server releases: HTTPS and the
    # version check must do.
    kwok_rel = f"{gh}/kubernetes-sigs/kwok/releases/download/{kwok}"
    out += [Artifact(b, kwok, f"{kwok_rel}/{b}-linux-{arch}", None) for b in ("kwok", "kwokctl")]
    ms_rel = f"{gh}/kubernetes-sigs/metrics-server/releases/download/{metrics}"
    out.append(Artifact("metrics-server", metrics, f"{ms_rel}/metrics-server-linux-{arch}", None))
    return out


# --- downloading and checking --------------------------------------------------------------------


def _download(url: str, target: Path, st: progress.Status) -> str:
    """Save `url` to `target` and return its SHA-256, or raise a one-line error."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp, target.open("wb") as fh:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while chunk := resp.read(CHUNK):
                fh.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                st.update(
                    _("{done} MB of {total} MB").format(done=done >> 20, total=total >> 20)
                    if total
                    else f"{done >> 20} MB"
                )
    except urllib.error.HTTPError as err:
        raise _download_failed(url, f"HTTP {err.code}") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise _download_failed(url, reason) from err
    return digest.hexdigest()


def _download_failed(url: str, reason: object) -> KubelabError:
    return KubelabError(_("downloading {url} failed: {reason}").format(url=url, reason=reason))


def _read(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            return str(resp.read().decode())
    except urllib.error.HTTPError as err:
        raise _download_failed(url, f"HTTP {err.code}") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise _download_failed(url, reason) from err


def expected_sha256(sums: str, filename: str) -> str:
    """Pick `filename`'s SHA-256 from a ``.sha256`` file (one bare hash) or a SHA256SUMS list."""
    lines = [line.split() for line in sums.splitlines() if line.strip()]
    if len(lines) == 1 and len(lines[0]) == 1:
        return lines[0][0].lower()
    for fields in lines:
        if len(fields) >= 2 and fields[-1].lstrip("*").split("/")[-1] == filename:
            return fields[0].lower()
    raise KubelabError(_("the published checksums list no {file}").format(file=filename))


def check_version(binary: Path, version: str) -> None:
    """Fail unless `binary --version` names `version` (``v1.36.3`` or ``1.36.3``)."""
    proc = tools.run(
        [binary, "--version"], timeout=30, check=False, what=f"{binary.name} --version"
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 or version.lstrip("v") not in output:
        raise KubelabError(
            _("{binary} reports {output}, not the pinned {version}").format(
                binary=binary.name, output=repr(tools.last_line(output)), version=version
            )
        )


def _fetch_binary(art: Artifact, bin_dir: Path, work: Path, st: progress.Status) -> None:
    filename = art.url.rsplit("/", 1)[1]
    download = work / filename
    got = _download(art.url, download, st)
    if art.sums_url is not None:
        want = expected_sha256(_read(art.sums_url), filename)
        if got != want:
            raise KubelabError(
                _("{file}: SHA-256 {got} does not match the published {want}").format(
                    file=filename, got=got, want=want
                )
            )
    target = bin_dir / art.binary
    if art.member is None:
        download.rename(target)
    else:
        try:
            with tarfile.open(download) as tar:
                src = tar.extractfile(art.member)
                if src is None:
                    raise KeyError(art.member)
                with src, target.open("wb") as fh:
                    shutil.copyfileobj(src, fh)
        except (KeyError, tarfile.TarError) as err:
            raise KubelabError(f"{filename} holds no {art.member}: {err}") from err
        download.unlink()
    target.chmod(0o755)
    check_version(target, art.version)


# --- assets from the Go module proxy -------------------------------------------------------------


def goproxy(sources: Sources = UPSTREAM) -> str:
    """Return the module proxy to use: `sources.goproxy`, the first in $GOPROXY, or the default."""
    if sources.goproxy:
        return sources.goproxy.rstrip("/")
    for entry in os.environ.get("GOPROXY", "").replace("|", ",").split(","):
        if entry.strip() and entry.strip() not in ("direct", "off"):
            return entry.strip().rstrip("/")
    return "https://proxy.golang.org"


def _escape(module: str) -> str:
    """Escape a module path for a proxy URL (``Foo`` -> ``!foo``)."""
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in module)


def module_zip_hash(data: bytes) -> str:
    """Return the ``h1:`` hash Go records in go.sum for a module zip (dirhash.Hash1)."""
    summary = hashlib.sha256()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = sorted(i.filename for i in zf.infolist() if not i.is_dir())
            for name in names:
                summary.update(f"{hashlib.sha256(zf.read(name)).hexdigest()}  {name}\n".encode())
    except zipfile.BadZipFile as err:
        raise KubelabError(f"not a module zip: {err}") from err
    return "h1:" + base64.b64encode(summary.digest()).decode()


def pinned_zip_hash(comp: sim_build.Component) -> str:
    """Return the ``h1:`` hash of `comp`'s module zip as its wrapper module's go.sum pins it."""
    for line in (comp.module_dir / "go.sum").read_text().splitlines():
        fields = line.split()
        if fields[:2] == [comp.module, comp.version]:
            return fields[2]
    raise KubelabError(f"{comp.module_dir / 'go.sum'} pins no {comp.module} {comp.version}")


def extract_assets(comp: sim_build.Component, data: bytes, assets_dir: Path) -> None:
    """Copy `comp`'s asset folders out of its module zip, as `sim_build` copies them."""
    got, want = module_zip_hash(data), pinned_zip_hash(comp)
    if got != want:
        raise KubelabError(f"{comp.module}@{comp.version} zip hashes to {got}, go.sum pins {want}")
    prefix = f"{comp.module}@{comp.version}/"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for source, name in comp.assets:
            inside = f"{prefix}{source.strip('/')}/"
            members = [n for n in zf.namelist() if n.startswith(inside) and not n.endswith("/")]
            if not members:
                raise KubelabError(f"{comp.module}@{comp.version} has no {source}/")
            for member in members:
                target = assets_dir / name / member[len(inside) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(member))


def _fetch_assets(comp: sim_build.Component, assets_dir: Path, sources: Sources) -> None:
    url = f"{goproxy(sources)}/{_escape(comp.module)}/@v/{comp.version}.zip"
    with (
        tempfile.TemporaryDirectory() as tmp,
        progress.status(_("Downloading {url}").format(url=url)) as st,
    ):
        zip_path = Path(tmp) / "module.zip"
        _download(url, zip_path, st)
        extract_assets(comp, zip_path.read_bytes(), assets_dir)


# --- the whole set -------------------------------------------------------------------------------


def fetch(*, arch: str | None = None, sources: Sources = UPSTREAM) -> Path:
    """Download every sim binary and asset into the cache folder of the current pins.

    Returns the ``bin`` folder; does nothing when that folder is complete already.
    """
    out = sim_build.build_dir()
    if not sim_build.is_complete(out):
        arch = arch or host_arch()
        with sim_build.build_lock():
            if not sim_build.is_complete(out):  # another process may have filled it meanwhile
                _fetch_all(out, arch, sources)
    return out / "bin"


def _fetch_all(out: Path, arch: str, sources: Sources) -> None:
    """Fill a temporary folder and rename it to `out`, so a half download is never used."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="fetch-", dir=out.parent))
    try:
        bin_dir, work = tmp / "bin", tmp / "downloads"
        bin_dir.mkdir()
        work.mkdir()
        started = time.monotonic()
        todo = artifacts(arch, sources)
        for i, art in enumerate(todo, 1):
            downloading = _("Downloading {binary} {version} ({i}/{n})").format(
                binary=art.binary, version=art.version, i=i, n=len(todo)
            )
            with progress.status(downloading) as st:
                _fetch_binary(art, bin_dir, work, st)
        shutil.rmtree(work)
        for comp in sim_build.COMPONENTS:
            if comp.assets:
                _fetch_assets(comp, tmp / "assets", sources)
        stamp = {
            "key": out.name,
            "go": f"upstream release binaries (linux/{arch})",
            "source": "release",
            "versions": {c.name: c.version for c in sim_build.COMPONENTS if c.build},
            "urls": {a.binary: a.url for a in todo},
            "fetch_seconds": round(time.monotonic() - started, 1),
        }
        sim_build.publish(tmp, out, stamp)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


SOURCE_ENV = "KUBELAB_SIM_SOURCE"
NEEDS = N_(
    "connect to the internet and try again, install Go (https://go.dev/dl/) to build them, or use"
    " the kind backend (`kubelab cluster up --backend kind`, needs Docker)"
)


def ensure_binaries(*, sources: Sources | None = None, build_fallback: bool = True) -> Path:
    """Return the sim ``bin`` folder: cached, else downloaded, else built with Go if Go is here.

    Says in one line on stderr which it does; when neither works, the error says what to install.
    """
    out = sim_build.build_dir()
    if sim_build.is_complete(out):
        return out / "bin"
    source = os.environ.get(SOURCE_ENV, "auto").strip().lower() or "auto"
    if source not in ("auto", "release", "build"):
        raise KubelabError(
            _("{variable} must be auto, release or build, not {value}").format(
                variable=SOURCE_ENV, value=repr(source)
            )
        )
    if source == "build":
        _say(_("building the pinned sources with Go (once, about 10 min)"), out)
        return sim_build.ensure_built()
    _say(_("downloading the pinned upstream release binaries (once, checksums checked)"), out)
    try:
        return fetch(sources=sources or UPSTREAM)
    except KubelabError as err:
        if not build_fallback or source == "release":
            raise
        if tools.find("go") is None:
            raise KubelabError(
                _(
                    "no sim binaries: the download failed ({error}) and Go is not installed to"
                    " build them; {what_to_do}"
                ).format(error=err, what_to_do=_(NEEDS))
            ) from err
        print(
            _(
                "sim binaries: the download failed ({error}); building them with Go instead"
                " (once, about 10 min)"
            ).format(error=err),
            file=sys.stderr,
            flush=True,
        )
        return sim_build.ensure_built()


def _say(how: str, out: Path) -> None:
    print(
        _("sim binaries: none cached in {folder}; {how}").format(folder=out, how=how),
        file=sys.stderr,
        flush=True,
    )
