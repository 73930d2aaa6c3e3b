"""The zh-CN edition: catalogues in step with the code, every message translated with the same
placeholders, the language chosen once at `kubelab init` and used by the CLI and the scorecards,
docs links to zh-cn pages where they exist, and translated notebooks that are twins of the
English ones (same cells, same code, only Markdown differs)."""

from __future__ import annotations

import copy
import json
import os
import re
import string
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from babel.messages.pofile import read_po

from kubelab import i18n, i18n_catalog, labs, paths, workspace
from kubelab.grading import render
from kubelab.grading.result import CheckResult, Report

POT = i18n.LOCALE_DIR / f"{i18n.DOMAIN}.pot"
TRANSLATED = [lang for lang in i18n.LANGUAGES if lang != i18n.ENGLISH]


def _ids(catalog: object) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}  # type: ignore[attr-defined]


def _fields(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name is not None}


@pytest.fixture(autouse=True)
def _english_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KUBELAB_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    i18n.use(None)


def test_the_template_holds_exactly_what_the_code_marks() -> None:
    with POT.open("rb") as f:
        committed = _ids(read_po(f))
    extracted = _ids(i18n_catalog.template(paths.COURSE_ROOT))
    assert extracted - committed == set(), "run scripts/i18n-catalog: new messages are missing"
    assert committed - extracted == set(), "run scripts/i18n-catalog: removed messages linger"
    # Each lab's title and task titles are in it, so the scorecards can speak the language.
    for lab in labs.all_labs():
        assert {lab.title, *(t.title for t in lab.tasks)} <= committed, lab.id


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_is_translated_with_the_same_placeholders(lang: str) -> None:
    with POT.open("rb") as f:
        template = _ids(read_po(f))
    with i18n.catalogue_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang.replace("-", "_"))
    assert _ids(catalog) == template, "run scripts/i18n-catalog"
    for m in catalog:
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        assert all(strings), f"{lang}: not translated: {ids[0]!r}"
        assert "fuzzy" not in m.flags, f"{lang}: fuzzy (unchecked): {ids[0]!r}"
        for text in strings:
            # A sentence built from parts keeps every part: same named fields in both languages.
            assert _fields(text) == _fields(ids[0]), f"{lang}: placeholders differ: {ids[0]!r}"
            text.format(**dict.fromkeys(_fields(text), "x"))


@pytest.mark.parametrize(
    ("tag", "lang"),
    [
        ("zh-CN", "zh-CN"),
        ("zh_CN.UTF-8", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-Hans", "zh-CN"),
        ("en_GB.UTF-8", "en"),
        ("C.UTF-8", "en"),
        ("fr_FR", None),
    ],
)
def test_language_tags_are_read_as_people_write_them(tag: str, lang: str | None) -> None:
    assert i18n.normalise(tag) == lang


def test_the_language_comes_from_kubelab_lang_then_the_workspace_then_the_locale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert i18n.current() == "en"
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert i18n.current() == "zh-CN"
    i18n.use("en")  # the workspace says English
    assert i18n.current() == "en"
    monkeypatch.setenv("KUBELAB_LANG", "zh-CN")  # a one-off override wins
    assert i18n.current() == "zh-CN"


def _report() -> Report:
    lab = labs.find("02-deployment")
    task = lab.tasks[0]
    return Report(
        lab.id,
        lab.title,
        "lab-02",
        (
            CheckResult(task.id, task.title, False, 0, task.points, "no demo-web", "Apply it."),
            CheckResult("x", "x", False, 0, 1, "slow", None, not_converged=True),
        ),
    )


def test_a_scorecard_reads_in_chinese_and_english(monkeypatch: pytest.MonkeyPatch) -> None:
    english = render.text(_report(), width=120)
    assert "Deployment and Service · namespace lab-02" in english
    assert "0/2 checks passed · 0/4 points" in english
    monkeypatch.setenv("KUBELAB_LANG", "zh-CN")
    chinese = render.text(_report(), width=120)
    assert "Deployment 与 Service · 名字空间 lab-02" in chinese
    assert "通过 0/2 项检查 · 0/4 分" in chinese
    assert "提示：Apply it." in chinese
    assert "1 项未收敛" in chinese
    html = render.html(_report())
    assert "Deployment demo-web：3 个副本" in html and "集群的实际状态" in html


def test_docs_links_go_to_zh_cn_pages_only_where_they_exist(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    page = "https://kubernetes.io/docs/concepts/workloads/controllers/deployment/"
    made_up = "https://kubernetes.io/docs/concepts/no-such-page/"
    listed = tmp_path / "zh-cn-docs.txt"
    listed.write_text("concepts/workloads/controllers/deployment\n")
    monkeypatch.setattr(i18n, "_ZH_DOCS", listed)
    i18n._zh_docs.cache_clear()
    try:
        assert i18n.docs(page, "en") == page
        zh = "https://kubernetes.io/zh-cn/docs/concepts/workloads/controllers/deployment/"
        assert i18n.docs(page, "zh-CN") == zh
        assert i18n.docs(page + "#strategy", "zh-CN") == zh + "#strategy"
        assert i18n.docs(made_up, "zh-CN") == made_up
        assert i18n.docs("https://gateway-api.sigs.k8s.io/", "zh-CN").startswith("https://gateway")
    finally:
        i18n._zh_docs.cache_clear()


def test_the_zh_cn_page_list_names_only_pages_the_course_links() -> None:
    listed = i18n._zh_docs()
    linked = set()
    for folder in ("graders", "kubelab", "notebooks", "labs"):
        for path in (paths.COURSE_ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".ipynb", ".md") and "_course" not in path.parts:
                text = path.read_text(errors="replace")
                for url in re.findall(r"https://kubernetes\.io/docs/([^\s\"')#>]*)", text):
                    linked.add(url.strip("/"))
    assert listed, "kubelab/locale/zh-cn-docs.txt lists no page"
    assert listed <= linked, f"listed but never linked: {sorted(listed - linked)[:5]}"


def _kubelab(*args: str, cwd: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("KUBELAB_LANG", "LANG", "LC_ALL")}
    return subprocess.run(
        [sys.executable, "-m", "kubelab", *args],
        cwd=cwd,
        env={**base, "HOME": str(home), "KUBELAB_DATA": str(home / "data"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_init_lang_zh_cn_is_remembered_and_the_cli_speaks_it(tmp_path: Path) -> None:
    ws = tmp_path / "课程"
    made = _kubelab("init", str(ws), "--lang", "zh_CN", cwd=tmp_path, home=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "已就绪" in made.stdout
    assert json.loads((ws / workspace.SETTINGS).read_text()) == {"lang": "zh-CN"}
    assert workspace.language(ws) == "zh-CN"
    # Lab 02's notebook is the Chinese one, released as the English is: answers cleared.
    released = (ws / "labs" / "02-deployment" / "lab.ipynb").read_text()
    assert "前置知识" in released or "任务" in released
    assert "BEGIN SOLUTION" not in released and "YOUR ANSWER HERE" in released
    assert not (ws / "labs" / "02-deployment" / "lab.zh-CN.ipynb").exists()
    listed = _kubelab("labs", cwd=ws / "labs", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "Deployment 与 Service" in listed.stdout and "进度保存在" in listed.stdout
    # Outside the workspace, or overridden, English.
    outside = _kubelab("labs", cwd=tmp_path, home=tmp_path)
    assert "Deployment and Service" in outside.stdout
    override = _kubelab("labs", cwd=ws, home=tmp_path, KUBELAB_LANG="en")
    assert "Deployment and Service" in override.stdout
    # Made again without --lang: still Chinese, nothing overwritten.
    again = _kubelab("init", str(ws), cwd=tmp_path, home=tmp_path)
    assert again.returncode == 0 and "已就绪" in again.stdout
    assert workspace.language(ws) == "zh-CN"


def test_an_unknown_language_is_one_line(tmp_path: Path) -> None:
    bad = _kubelab("init", str(tmp_path / "ws"), "--lang", "fr", cwd=tmp_path, home=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "zh-CN" in bad.stderr, bad.stderr
    assert not (tmp_path / "ws").exists()


def test_jupyterlab_gets_the_workspace_language(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    workspace.init(ws, "zh-CN")
    _argv, env = __import__("kubelab.lab_server").lab_server.command(
        Path(sys.executable), ws, port=8888, kubeconfig=None, learner=True
    )
    assert env["KUBELAB_LANG"] == "zh-CN"


# -- translated notebooks are twins of the English ones ---------------------------------------


def twin_problems(english: nbformat.NotebookNode, translated: nbformat.NotebookNode) -> list[str]:
    """Return why `translated` is not a twin of `english` (same cells in the same order, same
    code, only Markdown may differ); empty when it is."""
    problems = []
    if len(english.cells) != len(translated.cells):
        problems.append(f"{len(translated.cells)} cells, the English has {len(english.cells)}")
    for n, (en, tr) in enumerate(zip(english.cells, translated.cells, strict=False)):
        if en.cell_type != tr.cell_type:
            problems.append(f"cell {n}: {tr.cell_type}, the English is {en.cell_type}")
        elif en.cell_type != "markdown" and en.source != tr.source:
            problems.append(f"cell {n}: the code differs from the English")
        elif en.get("metadata", {}).get("nbgrader") != tr.get("metadata", {}).get("nbgrader"):
            problems.append(f"cell {n}: nbgrader metadata differs")
        elif en.cell_type == "markdown" and _has_prose(en.source) and not CJK.search(tr.source):
            problems.append(f"cell {n}: the English prose is not translated")
    return problems


CJK = re.compile(r"[\u4e00-\u9fff]")
_CODE = re.compile(r"```.*?```|`[^`]*`|\(https?://[^)]*\)|<[^>]*>", re.S)


def _has_prose(markdown: str) -> bool:
    """Tell whether Markdown holds English prose (three words in a row outside code and links)."""
    return (
        re.search(r"[A-Za-z]{2,}[ ,]+[A-Za-z]{2,}[ ,]+[A-Za-z]{2,}", _CODE.sub(" ", markdown))
        is not None
    )


def fenced_blocks(markdown: str) -> list[str]:
    """Return the fenced code blocks of a Markdown text, in order."""
    return re.findall(r"^```[^\n]*\n.*?^```", markdown, re.M | re.S)


def _notebook(*cells: tuple[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for kind, source in cells:
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(source))
    return nb


def test_the_twin_check_catches_each_difference() -> None:
    english = _notebook(("markdown", "# Pods and their nodes"), ("code", "!kubectl get pods"))
    twin = copy.deepcopy(english)
    assert twin_problems(english, twin) == ["cell 0: the English prose is not translated"]
    twin.cells[0].source = "# Pod 与节点"
    assert twin_problems(english, twin) == []
    changed = copy.deepcopy(twin)
    changed.cells[1].source = "!kubectl get pod"
    assert twin_problems(english, changed) == ["cell 1: the code differs from the English"]
    shorter = copy.deepcopy(twin)
    shorter.cells.pop()
    assert twin_problems(english, shorter) == ["1 cells, the English has 2"]
    swapped = _notebook(("code", "# Pod"), ("code", "!kubectl get pods"))
    assert twin_problems(english, swapped) == ["cell 0: code, the English is markdown"]


TWINS = sorted(paths.NOTEBOOKS_DIR.glob("*/*.ipynb")) + sorted(
    (paths.COURSE_ROOT / "labs").glob("*/lab.*.ipynb")
)


@pytest.mark.parametrize(
    "translated", TWINS, ids=lambda p: p.relative_to(paths.COURSE_ROOT).as_posix()
)
def test_each_translated_notebook_is_a_twin_of_the_english(translated: Path) -> None:
    if translated.parent.parent == paths.NOTEBOOKS_DIR:
        english = paths.NOTEBOOKS_DIR / translated.name
    else:
        english = translated.with_name("lab.ipynb")
    problems = twin_problems(nbformat.read(english, 4), nbformat.read(translated, 4))
    assert not problems, f"{translated.name}: {problems[0]}"


READMES = sorted((paths.COURSE_ROOT / "labs").glob("*/README.*.md"))


@pytest.mark.parametrize("translated", READMES, ids=lambda p: p.parent.name + "/" + p.name)
def test_each_translated_readme_has_the_english_code_blocks(translated: Path) -> None:
    english = translated.parent / "README.md"
    text = translated.read_text()
    assert fenced_blocks(text) == fenced_blocks(english.read_text()), translated
    assert len(CJK.findall(text)) > len(text) // 10, f"{translated}: mostly not Chinese"


def test_why_a_pod_is_stuck_reads_as_a_sentence_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubelab.grading.stuck import why_stuck

    pod = {
        "metadata": {"name": "web-1", "namespace": "lab-02"},
        "spec": {"containers": [{"name": "web", "image": "demo-web:v9"}]},
        "status": {
            "containerStatuses": [
                {"name": "web", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
            ]
        },
    }
    english = why_stuck(pod)
    assert english is not None
    assert str(english) == "pod web-1 cannot pull image demo-web:v9 (ImagePullBackOff)"
    monkeypatch.setenv("KUBELAB_LANG", "zh-CN")
    chinese = why_stuck(pod)
    assert chinese is not None
    assert str(chinese) == "Pod web-1 无法拉取镜像 demo-web:v9（ImagePullBackOff）"
    assert "`kubectl describe pod web-1 -n lab-02` 会在 Events 中显示拉取错误" in chinese.hint


def test_a_manifest_problem_is_one_line_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubelab import apply
    from kubelab.errors import KubelabError

    monkeypatch.setenv("KUBELAB_LANG", "zh-CN")
    with pytest.raises(KubelabError) as broken:
        apply.check_documents("kind: [", "web.yaml", "lab-02")
    assert str(broken.value).startswith("web.yaml:1:") and "YAML 语法错误" in str(broken.value)
    pinned = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: prod}\n"
    with pytest.raises(KubelabError) as elsewhere:
        apply.check_documents(pinned, "c.yaml", "lab-02")
    assert str(elsewhere.value) == (
        "c.yaml：ConfigMap c 设置了名字空间 'prod'，但你要应用到 'lab-02'；"
        "删除 metadata.namespace，让 -n 来决定"
    )


def test_a_cli_error_is_one_chinese_line(tmp_path: Path) -> None:
    done = _kubelab("check", "99", cwd=tmp_path, home=tmp_path, KUBELAB_LANG="zh-CN")
    assert done.returncode == 2
    assert done.stderr.startswith("kubelab：错误：未知的实验 '99'；现有的实验是：")
    assert done.stderr.count("\n") == 1, done.stderr


# kubernetes.io pages that moved: the old address is only a redirect, and has no zh-cn twin.
MOVED = {
    "tasks/run-application/horizontal-pod-autoscale/": (
        "concepts/workloads/autoscaling/horizontal-pod-autoscale/"
    ),
}


def test_no_link_goes_to_a_page_that_moved() -> None:
    for folder in ("graders", "kubelab", "notebooks", "labs", "docs"):
        for path in (paths.COURSE_ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".ipynb", ".md", ".yaml") and "_course" not in path.parts:
                text = path.read_text(errors="replace")
                for old, new in MOVED.items():
                    assert f"kubernetes.io/docs/{old}" not in text, f"{path}: link {new} instead"


def _unformatted(path: Path) -> list[str]:
    """Return each `_("... {name} ...")` in `path` that is not formatted with every name it has.

    A branch only kind runs (lab 05's real traffic) is not exercised by the sim tests: a missing
    name there would be a KeyError in front of a learner, so it is caught here, statically."""
    import ast

    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "_"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            continue
        want = _fields(node.args[0].value)
        parent = parents.get(node)
        while isinstance(parent, ast.IfExp):  # `(_("a {x}") if c else _("b {x}")).format(x=...)`
            parent = parents.get(parent)
        if isinstance(parent, ast.Assign | ast.AnnAssign):
            continue  # formatted where the variable is used
        call = parents.get(parent) if isinstance(parent, ast.Attribute) else None
        if not (isinstance(parent, ast.Attribute) and parent.attr == "format" and call):
            if want:
                found.append(f"{path}:{node.lineno}: placeholders, never formatted")
            continue
        assert isinstance(call, ast.Call)
        if any(k.arg is None for k in call.keywords):
            continue  # **mapping: not checkable here
        missing = want - {k.arg for k in call.keywords}
        if missing:
            found.append(f"{path}:{node.lineno}: {sorted(missing)} not given")
    return sorted(found)


def test_every_translated_message_is_formatted_with_its_names() -> None:
    sources = [*sorted((paths.COURSE_ROOT / "kubelab").rglob("*.py"))]
    sources += sorted((paths.COURSE_ROOT / "graders").glob("*.py"))
    found = [p for path in sources if "_course" not in path.parts for p in _unformatted(path)]
    assert not found, found[:5]


def test_the_format_check_catches_a_missing_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from kubelab.i18n import _\n"
        "a = 1\n"
        'print(_("pod {pod} on {node}").format(pod="p"))\n'
        'print(_("{n} pods"))\n'
    )
    assert sorted(_unformatted(bad)) == [
        f"{bad}:3: ['node'] not given",
        f"{bad}:4: placeholders, never formatted",
    ]


def test_why_a_route_does_not_attach_reads_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubelab import gateway_routes as gr

    route = {
        "metadata": {"name": "web-route", "namespace": "team-a"},
        "spec": {"parentRefs": [{"name": "main-gw", "namespace": "lab-05", "sectionName": "web"}]},
    }
    gateway = {
        "metadata": {"name": "main-gw", "namespace": "lab-05"},
        "spec": {"listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
    }
    assert gr.attachment(route, gateway).reason == "no listener has sectionName web"
    monkeypatch.setenv("KUBELAB_LANG", "zh-CN")
    assert gr.attachment(route, gateway).reason == "没有监听器具有 sectionName web"
    del route["spec"]["parentRefs"][0]["sectionName"]
    assert gr.attachment(route, gateway).reason == "监听器 http 不允许来自名字空间 team-a 的路由"


def test_a_zh_cn_workspace_has_no_english_page(tmp_path: Path) -> None:
    """Issue 19's promise: `kubelab init --lang zh-CN` gives only Chinese pages to read."""
    made = workspace.init(tmp_path / "ws", "zh-CN")
    assert made.untranslated == []
    pages = sorted((tmp_path / "ws").rglob("*.md")) + sorted((tmp_path / "ws").rglob("*.ipynb"))
    assert len(pages) > 20
    for page in pages:
        if page.suffix == ".md":
            prose = page.read_text()
        else:
            cells = nbformat.read(page, 4).cells
            prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
        assert len(CJK.findall(prose)) > len(prose) // 10, f"{page}: mostly not Chinese"
