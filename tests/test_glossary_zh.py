"""The zh-CN glossary (docs/glossary.zh-CN.md) is the English glossary's twin: the same terms in
the same order with the same links, each heading in Chinese with the English term beside it. Its
table gives the Chinese of every term, in the words of the kubernetes.io/zh-cn docs, and no
translated course file uses a rejected alternative of one of them (命名空间 for 名字空间 ...). A
zh-CN workspace gets it where the notebooks look for the glossary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from kubelab import i18n, paths, workspace

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = ROOT / "docs" / "glossary.md"
CHINESE = ROOT / "docs" / "glossary.zh-CN.md"
OPEN, CLOSE = "\uff08", "\uff09"  # the full-width parentheses of Chinese text

# The common alternatives of the table's terms that the course does not use, because the
# kubernetes.io/zh-cn docs (or the term list of the zh-CN edition) chose the key instead. Each key
# is in the glossary's table.
REJECTED = {
    "名字空间": ["命名空间"],
    "控制回路": ["控制循环"],
    "服务账号": ["服务帐号", "服务账户"],
    "选择算符": ["标签选择器"],
    "控制平面": ["控制面"],
    "持久卷申领": ["持久卷声明"],
    "属主引用": ["所有者引用"],
    "垃圾收集": ["垃圾回收"],
    "拓扑分布约束": ["拓扑扩展约束"],
    "金丝雀发布": ["灰度发布"],
    "自动扩缩": ["自动伸缩"],
    "Pod 安全性标准": ["Pod 安全标准"],
    "存活探针": ["活性探针"],
    "试运行": ["空运行"],
    "滚动更新": ["滚动升级"],
    "体面关闭": ["优雅关闭", "优雅终止"],
    "调谐": ["调和"],
    "定制资源": ["自定义资源"],
    "讲师": ["教师"],
    "学习者": ["学员"],
}


def entries(text: str) -> list[tuple[str, str]]:
    """Return a glossary's entries in order: (heading, text)."""
    parts = re.split(r"^### (.+)$", text, flags=re.M)
    return [(parts[i].strip(), parts[i + 1].strip()) for i in range(1, len(parts), 2)]


def chinese_term(english: str, heading: str) -> str | None:
    """Return the Chinese of `english` that a zh-CN `heading` gives, or None if the heading is
    not that term's: `### 名字空间` + `(Namespace)` in full-width parentheses, or just `### Pod`
    where the zh-cn docs keep the English."""
    if heading == english:
        return english
    suffix = f"{OPEN}{english}{CLOSE}"
    if heading.endswith(suffix) and len(heading) > len(suffix):
        return heading[: -len(suffix)]
    return None


def table(text: str) -> dict[str, str]:
    """Return the `English | 中文` table above a glossary's entries: English -> Chinese."""
    top = text.split("\n### ", 1)[0]
    rows = re.findall(r"^\| *(.+?) *\| *(.+?) *\|$", top, flags=re.M)
    assert rows and rows[0] == ("English", "中文"), "no `| English | 中文 |` table"
    return {en: zh for en, zh in rows[1:] if not set(en) <= set("-: ")}


def links(text: str) -> list[str]:
    """Return the targets of the Markdown links in `text`, in order."""
    return re.findall(r"\]\((\S+?)\)", text)


def test_every_term_has_its_entry_in_the_same_order() -> None:
    english = [h for h, _ in entries(ENGLISH.read_text())]
    chinese = [h for h, _ in entries(CHINESE.read_text())]
    assert len(english) >= 60
    for n, (en, zh) in enumerate(zip(english, chinese, strict=False)):
        assert chinese_term(en, zh) is not None, f"entry {n}: {zh!r} is not {en!r}"
    assert len(chinese) == len(english), f"{len(chinese)} entries, the English has {len(english)}"


def test_each_entry_has_the_english_links_zh_cn_where_that_page_exists() -> None:
    for (en, en_text), (zh, zh_text) in zip(
        entries(ENGLISH.read_text()), entries(CHINESE.read_text()), strict=True
    ):
        want = [i18n.docs(url, i18n.CHINESE) for url in links(en_text)]
        assert links(zh_text) == want, f"{zh}: links differ from the English {en!r}"
        prose = zh_text.split("\n[", 1)[0]
        assert len(re.findall(r"[\u4e00-\u9fff]", prose)) > 15, f"{zh}: not Chinese"
    # The intro's relative links (the course map and summary) stay as they are.
    intro = [u for u in links(CHINESE.read_text().split("\n### ", 1)[0]) if "://" not in u]
    assert intro == [u for u in links(ENGLISH.read_text().split("\n### ", 1)[0]) if "://" not in u]


def test_the_table_gives_every_term_as_its_heading_does() -> None:
    text = CHINESE.read_text()
    rows = table(text)
    for en, heading in zip(
        [h for h, _ in entries(ENGLISH.read_text())],
        [h for h, _ in entries(text)],
        strict=True,
    ):
        assert en in rows, f"the table has no row for {en!r}"
        assert rows[en] == chinese_term(en, heading), (
            f"{en}: table {rows[en]!r}, heading {heading!r}"
        )
    # The term list of the zh-CN edition is in it, as the zh-cn docs write them.
    for en, zh in {
        "namespace": "名字空间",
        "control loop": "控制回路",
        "reconcile": "调谐",
        "desired state": "期望状态",
        "selector": "选择算符",
        "service account": "服务账号",
        "Pod": "Pod",
        "ReplicaSet": "ReplicaSet",
    }.items():
        found = rows.get(en, rows.get(en.capitalize()))
        assert found == zh, f"{en}: {found!r}, the zh-cn docs say {zh!r}"
    translated = [zh for en, zh in rows.items() if zh != en]
    entries_text = text.split("\n### ", 1)[1]
    for chosen, words in REJECTED.items():
        assert any(chosen in zh for zh in translated), f"{chosen} is not a term of the table"
        # An entry tells the learner who knows the other word which one the course uses.
        for word in words:
            assert word in entries_text, f"no entry says {chosen} rather than {word}"


def course_texts() -> dict[str, str]:
    """Return what the translated course files say in Chinese, by their path: notebooks' and
    labs' Markdown, lab READMEs and the message catalogue's translations."""
    texts: dict[str, str] = {}
    notebooks = sorted(paths.NOTEBOOKS_DIR.glob("zh-CN/*.ipynb"))
    notebooks += sorted((paths.COURSE_ROOT / "labs").glob("*/lab.zh-CN.ipynb"))
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        texts[path.relative_to(paths.COURSE_ROOT).as_posix()] = "\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
        )
    for path in sorted((paths.COURSE_ROOT / "labs").glob("*/README.zh-CN.md")):
        texts[path.relative_to(paths.COURSE_ROOT).as_posix()] = path.read_text()
    po = i18n.catalogue_path(i18n.CHINESE)
    with po.open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    strings = [
        s
        for m in catalog
        if m.id
        for s in (m.string if isinstance(m.string, tuple) else (m.string,))
        if isinstance(s, str)
    ]
    texts[po.relative_to(paths.COURSE_ROOT).as_posix()] = "\n".join(strings)
    return texts


def rejected_uses(texts: dict[str, str]) -> list[str]:
    """Return each use of a rejected alternative in `texts` (path -> text), as `path: word`."""
    return [
        f"{path}: {word} (the glossary says {chosen})"
        for path, text in texts.items()
        for chosen, words in REJECTED.items()
        for word in words
        if word in text
    ]


def test_the_consistency_check_catches_a_rejected_word() -> None:
    texts = {
        "notebooks/zh-CN/00-first-objects.ipynb": "每个对象都属于一个命名空间。",
        "labs/02-deployment/README.zh-CN.md": "名字空间与标签选择算符。",
    }
    assert rejected_uses(texts) == [
        "notebooks/zh-CN/00-first-objects.ipynb: 命名空间 (the glossary says 名字空间)"
    ]


def test_the_translated_course_uses_the_glossarys_terms() -> None:
    texts = course_texts()
    assert "notebooks/zh-CN/02-deployment.ipynb" in texts and len(texts) >= 4, sorted(texts)
    assert "名字空间" in texts["notebooks/zh-CN/02-deployment.ipynb"]
    found = rejected_uses(texts)
    assert not found, "\n".join(found)


@pytest.fixture(scope="module")
def chinese_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ws") / "课程"
    workspace.init(root, i18n.CHINESE)
    return root


def test_a_zh_cn_workspace_has_the_chinese_glossary_where_the_notebooks_look(
    chinese_workspace: Path,
) -> None:
    assert workspace.translated(paths.GLOSSARY, i18n.CHINESE) == CHINESE
    assert workspace.translated(paths.GLOSSARY, i18n.ENGLISH) == paths.GLOSSARY
    glossary = chinese_workspace / "docs" / "glossary.md"
    assert glossary.read_text() == CHINESE.read_text()
    assert not (chinese_workspace / "docs" / "glossary.zh-CN.md").exists()
    # Its links to the notebooks (course map, summary) resolve in the workspace as they do here.
    relative = [u for u in links(glossary.read_text()) if u.startswith("../notebooks/")]
    missing = [u for u in relative if not (glossary.parent / u).exists()]
    assert relative and not missing, missing
