"""The grading sandbox (kubelab.sandbox): what a hostile submission can see, reach and use up.

Every test runs real bubblewrap sandboxes on this machine; nothing is mocked.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kubelab import paths, sandbox
from kubelab.errors import KubelabError

FAST = sandbox.Limits(wall_seconds=5)


@pytest.fixture(autouse=True)
def _bwrap() -> None:
    sandbox.check_available()


def run_python(
    code: str,
    workdir: Path,
    *,
    api_server: str | None = None,
    limits: sandbox.Limits = FAST,
    ro_files: dict[str, Path] | None = None,
) -> sandbox.Outcome:
    """Run Python `code` in a sandbox with `workdir` as its work directory."""
    return sandbox.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        workdir=workdir,
        api_server=api_server,
        env=sandbox.base_env(),
        ro_files=ro_files,
        limits=limits,
    )


def test_payload_runs_in_its_work_dir_with_an_empty_throwaway_home(tmp_path: Path) -> None:
    code = """
        import os, sys
        print(os.getcwd())
        print(sorted(os.listdir(os.environ["HOME"])))
        open("result.txt", "w").write("kept")
        open(os.path.expanduser("~/note.txt"), "w").write("gone")
        print("oops", file=sys.stderr)
        sys.exit(3)
    """
    out = run_python(code, tmp_path)
    assert (out.returncode, out.timed_out) == (3, False)
    assert out.stdout.splitlines() == [sandbox.WORK, "['work']"]
    assert out.stderr == "oops\n"
    assert (tmp_path / "result.txt").read_text() == "kept"
    # The next run starts with an empty HOME again.
    again = run_python("import os; print(sorted(os.listdir(os.path.expanduser('~'))))", tmp_path)
    assert again.stdout.strip() == "['work']"


def test_env_is_exactly_what_the_caller_gives(tmp_path: Path) -> None:
    os.environ["KUBELAB_SANDBOX_LEAK"] = "secret"
    try:
        out = sandbox.run(
            [sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"],
            workdir=tmp_path,
            api_server=None,
            env=sandbox.base_env(KUBELAB_NAMESPACE="lab-x"),
            limits=FAST,
        )
    finally:
        del os.environ["KUBELAB_SANDBOX_LEAK"]
    assert "KUBELAB_SANDBOX_LEAK" not in out.stdout
    assert '"KUBELAB_NAMESPACE": "lab-x"' in out.stdout


@pytest.fixture
def home_secret() -> Iterator[Path]:
    """A file in the instructor's own home directory (which the sandbox must not show)."""
    with tempfile.NamedTemporaryFile("w", dir=Path.home(), prefix=".kubelab-test-") as file:
        file.write("instructor only")
        file.flush()
        yield Path(file.name)


def test_instructor_files_are_not_there(tmp_path: Path, home_secret: Path) -> None:
    instructor = tmp_path / "instructor"
    instructor.mkdir()
    (instructor / "gradebook.db").write_text("grades")
    work = tmp_path / "work"
    work.mkdir()
    solutions = sorted(paths.LABS_DIR.glob("*/solution/*"))
    assert solutions, "the labs have solution files to hide"
    hidden = [instructor / "gradebook.db", home_secret, paths.cache_home(), *solutions]
    code = f"""
        import os
        for path in {[str(p) for p in hidden]!r}:
            print(path, os.path.exists(path))
        shadow = "/etc/shadow"
        print("shadow", open(shadow).read() if os.path.exists(shadow) else "")
        print("notebook", len(open({str(paths.LABS_DIR / "02-deployment" / "lab.ipynb")!r}).read()))
    """
    out = run_python(code, work)
    assert out.returncode == 0, out.stderr
    for path in hidden:
        assert f"{path} False" in out.stdout
    assert "root:" not in out.stdout  # /etc/shadow is there but empty
    assert "notebook 0" in out.stdout  # the instructor's notebook (with its answers) is empty
    assert (paths.LABS_DIR / "README.md").exists()  # the labs themselves stay readable
    shown = run_python(f"print(len(open({str(paths.LABS_DIR / 'README.md')!r}).read()))", work)
    assert int(shown.stdout) == len((paths.LABS_DIR / "README.md").read_text())


def test_writes_only_into_work_home_and_tmp(tmp_path: Path) -> None:
    forbidden = [
        "/etc/kubelab-test",
        "/usr/kubelab-test",
        "/kubelab-test",
        "/dev/kubelab-test",
        str(paths.REPO_ROOT / "kubelab" / "kubelab-test"),
        str(paths.LABS_DIR / "kubelab-test"),
        str(next(paths.LABS_DIR.glob("*/solution")) / "kubelab-test"),
        str(Path(sys.prefix) / "kubelab-test"),
    ]
    allowed = [f"{sandbox.WORK}/a", f"{sandbox.HOME}/b", "/tmp/c", "/dev/shm/d"]
    code = f"""
        for path in {forbidden + allowed!r}:
            try:
                open(path, "w").write("x")
                print(path, "written")
            except OSError as err:
                print(path, "refused", err.strerror)
    """
    out = run_python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    for path in forbidden:
        assert f"{path} refused" in out.stdout
        assert not Path(path).exists()
    for path in allowed:
        assert f"{path} written" in out.stdout
    assert (tmp_path / "a").read_text() == "x"


def test_read_only_files_are_bound_where_asked(tmp_path: Path) -> None:
    config = tmp_path / "learner.kubeconfig"
    config.write_text("apiVersion: v1\n")
    work = tmp_path / "work"
    work.mkdir()
    code = f"""
        print(open({sandbox.KUBECONFIG!r}).read().strip())
        try:
            open({sandbox.KUBECONFIG!r}, "w")
        except OSError as err:
            print(err.strerror)
    """
    out = run_python(code, work, ro_files={sandbox.KUBECONFIG: config})
    assert out.stdout.splitlines() == ["apiVersion: v1", "Read-only file system"]


class EchoServer:
    """A TCP server on the host's loopback that echoes one line per connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(conn.recv(1024))


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.sock.close()


CONNECT = """
    import socket
    for host, port in {targets!r}:
        try:
            with socket.create_connection((host, port), timeout=3) as s:
                s.sendall(b"ping")
                print(host, port, s.recv(1024).decode())
        except OSError as err:
            print(host, port, "failed", type(err).__name__)
"""


def test_no_network_but_the_api_server(tmp_path: Path, echo: EchoServer) -> None:
    other = EchoServer()  # another loopback service of the host (think etcd or JupyterLab)
    try:
        targets = [("127.0.0.1", echo.port), ("127.0.0.1", other.port), ("1.1.1.1", 443)]
        code = CONNECT.format(targets=targets)
        out = run_python(code, tmp_path, api_server=f"https://127.0.0.1:{echo.port}")
        assert out.returncode == 0, out.stderr
        assert f"127.0.0.1 {echo.port} ping" in out.stdout  # through the relay
        assert f"127.0.0.1 {other.port} failed ConnectionRefusedError" in out.stdout
        assert "1.1.1.1 443 failed" in out.stdout
        # Without an API server, nothing at all.
        out = run_python(code, tmp_path)
        assert f"127.0.0.1 {echo.port} failed ConnectionRefusedError" in out.stdout
    finally:
        other.sock.close()


def test_the_gateway_is_relayed_too_and_nothing_else(tmp_path: Path, echo: EchoServer) -> None:
    api, gateway, other = EchoServer(), echo, EchoServer()
    try:
        # The Gateway (kind: the control-plane node's address) is reached at 127.0.0.1 inside,
        # on its own port, beside the API server; a third host service stays out of reach.
        url = f"http://localhost:{gateway.port}"
        assert sandbox.inside_url(url) == f"http://127.0.0.1:{gateway.port}"
        targets = [("127.0.0.1", p) for p in (api.port, gateway.port, other.port)]
        out = sandbox.run(
            [sys.executable, "-c", textwrap.dedent(CONNECT.format(targets=targets))],
            workdir=tmp_path,
            api_server=f"https://127.0.0.1:{api.port}",
            env=sandbox.base_env(),
            limits=FAST,
            gateway=url,
        )
        assert out.returncode == 0, out.stderr
        assert f"127.0.0.1 {api.port} ping" in out.stdout
        assert f"127.0.0.1 {gateway.port} ping" in out.stdout
        assert f"127.0.0.1 {other.port} failed ConnectionRefusedError" in out.stdout
    finally:
        api.sock.close()
        other.sock.close()
    with pytest.raises(KubelabError, match="must be an http:// URL"):
        sandbox.inside_url("https://127.0.0.1:8443")


def test_api_server_must_be_local(tmp_path: Path) -> None:
    with pytest.raises(KubelabError, match=r"only reach an API server on 127\.0\.0\.1"):
        run_python("pass", tmp_path, api_server="https://10.0.0.1:6443")


def test_missing_command_and_work_dir(tmp_path: Path) -> None:
    out = sandbox.run(
        ["no-such-program"], workdir=tmp_path, api_server=None, env=sandbox.base_env()
    )
    assert out.returncode == 127
    assert "cannot run no-such-program" in out.stderr
    with pytest.raises(KubelabError, match="does not exist"):
        run_python("pass", tmp_path / "missing")


def test_process_limit_stops_forking(tmp_path: Path) -> None:
    code = """
        import os, time
        children = 0
        for _ in range(200):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            children += 1
        print(children)
    """
    out = run_python(code, tmp_path, limits=sandbox.Limits(wall_seconds=10, processes=40))
    assert out.returncode == 0, out.stderr
    assert 20 < int(out.stdout) < 40


def surviving(marker: str) -> list[int]:
    """Return the host pids whose command line contains `marker`."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_fork_bomb_is_contained_and_a_parallel_sandbox_is_unharmed(tmp_path: Path) -> None:
    marker = f"bomb-{uuid.uuid4().hex}"
    bomb_dir, calm_dir = tmp_path / "bomb", tmp_path / "calm"
    bomb_dir.mkdir()
    calm_dir.mkdir()
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    limits = sandbox.Limits(wall_seconds=4, processes=128)
    with ThreadPoolExecutor(2) as pool:
        bombed = pool.submit(
            sandbox.run,
            [sys.executable, "-c", bomb, marker],
            workdir=bomb_dir,
            api_server=None,
            env=sandbox.base_env(),
            limits=limits,
        )
        calm = pool.submit(
            run_python,
            "import subprocess; print(subprocess.run(['echo', 'fine'], capture_output=True,"
            " text=True).stdout.strip())",
            calm_dir,
        )
        assert calm.result().stdout.strip() == "fine"
        outcome = bombed.result()
    assert outcome.timed_out
    assert surviving(marker) == []
    assert subprocess.run(["true"], check=False).returncode == 0  # the host can still fork


def test_endless_loop_is_killed_at_the_wall_limit_with_all_its_processes(tmp_path: Path) -> None:
    marker = f"loop-{uuid.uuid4().hex}"
    code = f"""
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {marker!r}],
                         start_new_session=True)
        print("looping", flush=True)
        while True:
            pass
    """
    out = run_python(code, tmp_path, limits=sandbox.Limits(wall_seconds=3))
    assert out.timed_out and out.returncode is None
    assert out.stdout == "looping\n"
    assert 3 <= out.seconds < 6
    assert surviving(marker) == []


def test_memory_hog_fails_without_hurting_the_host(tmp_path: Path) -> None:
    code = """
        blocks = []
        try:
            while True:
                blocks.append(bytearray(16 * 2**20))
        except MemoryError:
            print("MemoryError after", len(blocks) * 16, "MiB")
    """
    limits = sandbox.Limits(wall_seconds=10, memory_bytes=256 * 2**20)
    out = run_python(code, tmp_path, limits=limits)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("MemoryError after")
    assert int(out.stdout.split()[2]) < 256
    assert run_python("print('alive')", tmp_path).stdout == "alive\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="a memory cgroup needs root here")
def test_memory_is_capped_in_total_across_processes(tmp_path: Path) -> None:
    code = """
        import os, time
        children = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                block = b"x" * (200 * 2**20)  # written, so really resident; below RLIMIT_AS
                time.sleep(2)
                os._exit(0)
            children.append(pid)
        print(sum(os.WIFSIGNALED(os.waitpid(pid, 0)[1]) for pid in children))
    """
    limits = sandbox.Limits(wall_seconds=10, memory_bytes=256 * 2**20)
    out = run_python(code, tmp_path, limits=limits)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) >= 2  # the memory cgroup killed all but one


def test_a_jupyter_kernel_runs_inside_with_the_default_limits(tmp_path: Path) -> None:
    code = """
        import nbclient, nbformat
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
        nbclient.NotebookClient(nb, kernel_name="python3", timeout=30).execute()
        print(nb.cells[0].outputs[0]["text"], end="")
    """
    out = run_python(code, tmp_path, limits=sandbox.Limits(wall_seconds=60))
    assert (out.returncode, out.stdout) == (0, "42\n"), out.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="a CPU cgroup needs root here")
def test_cpu_share_is_capped(tmp_path: Path) -> None:
    code = """
        import os, time
        for _ in range(2):
            if os.fork() == 0:
                end = time.monotonic() + 2
                while time.monotonic() < end:
                    pass
                os._exit(0)
        os.wait(), os.wait()
        print(sum(os.times()[2:4]))
    """
    out = run_python(code, tmp_path, limits=sandbox.Limits(wall_seconds=10, cpus=0.5))
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) < 1.5  # two spinners for 2 s would use 4 CPU-seconds on 2 cores


def test_a_checkout_under_tmp_stays_visible(tmp_path: Path) -> None:
    """CI may clone the repository under /tmp: the sandbox's fresh /tmp must not hide it."""
    args = sandbox._filesystem(tmp_path, {}, sandbox.DEFAULT_LIMITS, tmp_path)
    fresh_tmp = max(i for i, a in enumerate(args) if a == "--tmpfs" and args[i + 1] == "/tmp")
    code_binds = [i for i, a in enumerate(args) if a == str(Path(sys.prefix))]
    assert code_binds and all(i > fresh_tmp for i in code_binds)
