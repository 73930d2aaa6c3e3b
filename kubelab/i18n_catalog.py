"""The message catalogue, as Babel extracts it: every `_()` in kubelab and the graders, and each
lab's title and task titles from its `lab.yaml`.

Used by `scripts/i18n-catalog` (write the template, update each language's `.po`) and by the
tests that keep the catalogues in step with the code. Developer tooling: nothing at run time
imports it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import yaml
from babel.messages.catalog import Catalog
from babel.messages.extract import extract

from kubelab import i18n, paths

KEYWORDS: dict[str, Any] = {"_": None, "N_": None, "ngettext": (1, 2)}
COMMENT_TAGS = ("TRANSLATORS:",)


def extract_lab_yaml(
    fileobj: IO[bytes], keywords: object, comment_tags: object, options: object
) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel extractor for `lab.yaml`: the lab's title and each task's title."""
    text = fileobj.read().decode()
    raw = yaml.safe_load(text) or {}
    lines = text.splitlines()

    def line_of(value: str) -> int:
        return next((n for n, line in enumerate(lines, 1) if value in line), 0)

    if isinstance(raw.get("title"), str):
        yield line_of(raw["title"]), "_", raw["title"], ["lab title"]
    for task in raw.get("tasks") or []:
        if isinstance(task, dict) and isinstance(task.get("title"), str):
            yield line_of(task["title"]), "_", task["title"], [f"task {task.get('id')}"]


def sources(root: Path) -> Iterator[tuple[Path, str | Any]]:
    """Return each file that holds learner-facing text, with how to extract from it."""
    for folder in (root / "kubelab", root / "graders"):
        for path in sorted(folder.rglob("*.py")):
            if "_course" not in path.parts and "__pycache__" not in path.parts:
                yield path, "python"
    for path in sorted((root / "labs").glob("*/lab.yaml")):
        yield path, extract_lab_yaml


def template(root: Path = paths.COURSE_ROOT) -> Catalog:
    """Return the catalogue template: every message the sources under `root` mark."""
    catalog = Catalog(project="kubelab", domain=i18n.DOMAIN, charset="utf-8")
    for path, method in sources(root):
        with path.open("rb") as f:
            for lineno, message, comments, context in extract(
                method, f, keywords=KEYWORDS, comment_tags=COMMENT_TAGS, strip_comment_tags=True
            ):
                catalog.add(
                    message,
                    None,
                    [(path.relative_to(root).as_posix(), lineno)],
                    auto_comments=comments,
                    context=context,
                )
    return catalog
