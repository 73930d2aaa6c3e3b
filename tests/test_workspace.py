"""`kubelab init DIR`: a learner's workspace with the teaching notebooks and the released labs,
never a solution, made again without overwriting the learner's files."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelab import lab_server, labs, paths, workspace
from kubelab.wait import until

KUBELAB = [sys.executable, "-m", "kubelab"]
LABS = labs.all_labs()


def _kubelab(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME=str(tmp_path / "home"), KUBELAB_DATA=str(tmp_path / "data"))
    return subprocess.run(
        [*KUBELAB, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("ws") / "k8s-course"
    workspace.init(target)
    return target


def _nbgrader_cells(notebook: Path) -> list[dict[str, object]]:
    cells: list[dict[str, object]] = json.loads(notebook.read_text())["cells"]
    return cells


def test_workspace_has_the_notebooks_and_each_labs_student_files(made: Path) -> None:
    for nb in paths.NOTEBOOKS_DIR.glob("*.ipynb"):
        assert (made / "notebooks" / nb.name).read_text() == nb.read_text()
    # The notebooks link the glossary as ../docs/glossary.md: it is where they look for it.
    assert (made / "docs" / "glossary.md").read_text() == paths.GLOSSARY.read_text()
    for lab in LABS:
        out = made / "labs" / lab.id
        assert (out / "README.md").read_text() == (lab.directory / "README.md").read_text()
        assert (out / "lab.ipynb").is_file()
        for f in (lab.directory / "starter").rglob("*"):
            if f.is_file():
                assert (out / f.relative_to(lab.directory)).read_bytes() == f.read_bytes()


def test_workspace_holds_no_solution_anywhere(made: Path) -> None:
    assert not [p for p in made.rglob("*") if p.name == "solution"]
    for f in made.rglob("*"):
        if f.is_file():
            text = f.read_text(errors="replace")
            assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, f
            assert 'MANIFESTS = "solution"' not in text, f
    for lab in LABS:
        source = _nbgrader_cells(lab.directory / "lab.ipynb")
        student = _nbgrader_cells(made / "labs" / lab.id / "lab.ipynb")
        assert len(source) == len(student)
        for theirs, ours in zip(source, student, strict=True):
            meta = theirs["metadata"].get("nbgrader", {})  # type: ignore[attr-defined]
            if meta.get("solution"):
                # nbgrader's ClearSolutions left kubelab's stub where the answer was
                assert "".join(ours["source"]).strip() in (  # type: ignore[arg-type]
                    "# YOUR ANSWER HERE",
                    "YOUR ANSWER HERE",
                ), lab.id
            assert not ours.get("outputs"), lab.id


def test_workspace_notebooks_need_no_repository_folders(made: Path) -> None:
    # A teaching notebook that reads ../labs/NN-*/cluster-setup would find nothing there.
    for nb in (made / "notebooks").glob("*.ipynb"):
        code = "".join(
            "".join(c["source"]) for c in _nbgrader_cells(nb) if c["cell_type"] == "code"
        )
        assert "../labs/" not in code, nb


def test_init_again_adds_new_files_and_keeps_changed_ones(tmp_path: Path) -> None:
    target = tmp_path / "course"
    first = _kubelab("init", str(target), tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    edited = target / "labs" / "02-deployment" / "starter" / "base" / "deployment.yaml"
    edited.write_text("# my own answer\n")
    notebook = target / "labs" / "02-deployment" / "lab.ipynb"
    notebook.write_text(notebook.read_text().replace("Lab 02", "My lab 02"))
    removed = target / "notebooks" / "03-hpa-pdb.ipynb"
    removed.unlink()
    again = _kubelab("init", str(target), tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr
    assert edited.read_text() == "# my own answer\n"
    assert "My lab 02" in notebook.read_text()
    assert removed.is_file()
    kept = [line for line in again.stdout.splitlines() if "kept" in line]
    assert len(kept) == 1, again.stdout
    assert "labs/02-deployment/starter/base/deployment.yaml" in kept[0]
    assert "labs/02-deployment/lab.ipynb" in kept[0]
    assert "notebooks/03-hpa-pdb.ipynb" in again.stdout  # added back, and said so


def test_init_refuses_a_file_as_its_folder(tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("x")
    proc = _kubelab("init", str(target), tmp_path=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, ""


@contextlib.contextmanager
def _jupyterlab(
    root: Path, tmp_path: Path, *, learner: bool
) -> Iterator[tuple[str, dict[str, str]]]:
    """Run `kubelab start`'s JupyterLab on `root` (no token); yield its URL and environment."""
    port = _free_port()
    jupyter = Path(sys.executable).parent / "jupyter"
    argv, env = lab_server.command(
        jupyter, root, port=port, kubeconfig=None, learner=learner, browser=False
    )
    env.update(JUPYTER_RUNTIME_DIR=str(tmp_path), JUPYTER_TOKEN="")
    proc = subprocess.Popen(
        [*argv, "--IdentityProvider.token="],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        until(lambda: _get(f"{base}/api")[0], lambda c: c == 200, timeout=90, what="/api")
        yield base, env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.parametrize("learner", [True, False], ids=["learner", "instructor"])
def test_the_learners_jupyterlab_has_no_nbgrader_instructor_tools(
    made: Path, tmp_path: Path, learner: bool
) -> None:
    with _jupyterlab(made, tmp_path, learner=learner) as (base, env):
        # its kubectl and kubelab first
        assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
        formgrader, _ = _get(f"{base}/formgrader")
        _, page = _get(f"{base}/lab")
    match = re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S)
    assert match, page[:500]
    disabled = json.loads(match.group(1)).get("disabledExtensions", [])
    if learner:
        assert formgrader == 404
        assert set(workspace.INSTRUCTOR_PLUGINS) <= set(disabled), disabled
    else:  # the same server without the learner's settings has them: the test sees a difference
        assert formgrader == 200
        assert not set(workspace.INSTRUCTOR_PLUGINS) & set(disabled), disabled


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_zh_cn_workspaces_jupyterlab_speaks_chinese(tmp_path: Path, lang: str) -> None:
    """JupyterLab's own menus follow the workspace's language (its language pack is installed
    and the workspace's settings choose it); an English workspace keeps JupyterLab's default."""
    root = tmp_path / "ws"
    workspace.init(root, lang)
    with _jupyterlab(root, tmp_path, learner=True) as (base, env):
        assert env["JUPYTERLAB_SETTINGS_DIR"] == str(workspace.jupyterlab_settings_dir(root))
        _, setting = _get(f"{base}/lab/api/settings/@jupyterlab/translation-extension:plugin")
        _, packs = _get(f"{base}/lab/api/translations/")
        _, chinese = _get(f"{base}/lab/api/translations/zh_CN")
    assert "zh_CN" in json.loads(packs)["data"]  # the language pack is installed
    menus = json.loads(chinese)["data"]["jupyterlab"]
    assert menus["Settings"] == ["设置"] and menus["Save"] == ["保存"], menus.get("Settings")
    locale = json.loads(setting)["settings"].get("locale")
    assert locale == ("zh_CN" if lang == "zh-CN" else None)


def test_start_finds_the_workspace_init_made_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBELAB_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(workspace.KubelabError, match="kubelab init"):
        workspace.find(None)
    target = tmp_path / "course"
    workspace.init(target)
    assert workspace.find(None) == target.resolve()
    monkeypatch.chdir(target / "labs")
    assert workspace.find(None) == target.resolve()  # inside a workspace: that one
    with pytest.raises(workspace.KubelabError, match="not a kubelab workspace"):
        workspace.find(tmp_path)


def test_start_without_a_workspace_says_to_make_one(tmp_path: Path) -> None:
    proc = _kubelab("start", "--no-browser", "--port", str(_free_port()), tmp_path=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "kubelab: error: no workspace yet: make one with `kubelab init ~/k8s-course`,"
        " then `kubelab start`"
    ]


def test_lab_01_grades_the_workspaces_controller_from_anywhere_inside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubelab.graders import lab01_control_loop as lab01
    from kubelab.grading import Missing

    monkeypatch.delenv(lab01.ENV, raising=False)
    root = tmp_path / "course"
    mine = root / "labs" / "01-control-loop" / "starter" / "controller.py"
    mine.parent.mkdir(parents=True)
    (root / workspace.MARKER).write_text("")
    mine.write_text("# mine\n")
    for where in (root, root / "notebooks", root / "labs"):
        where.mkdir(exist_ok=True)
        monkeypatch.chdir(where)
        assert lab01.controller_file() == mine.resolve(), where
    monkeypatch.chdir(mine.parent.parent)  # the lab folder itself: ./starter/controller.py
    assert lab01.controller_file() == mine.resolve()
    mine.unlink()  # never the course's own starter instead of the learner's missing file
    monkeypatch.chdir(root)
    with pytest.raises(Missing, match=re.escape(str(mine))):
        lab01.controller_file()
    monkeypatch.chdir(tmp_path)  # outside any workspace: the course's copy, as before
    assert lab01.controller_file() == lab01.LAB_COPY.resolve()
