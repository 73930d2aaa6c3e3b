"""The learner's language: which one, and the words in it.

Text a learner reads is marked with `_()` (Python's gettext) and translated from the catalogues in
`kubelab/locale/<lang>/LC_MESSAGES/kubelab.po`, which Babel extracts and updates
(`scripts/i18n-catalog`). The `.po` files are the only source: they are compiled in memory when
first used, so no binary `.mo` is kept in the repository. English is the source language.

The language comes from `KUBELAB_LANG`, else the workspace's choice (`kubelab init --lang`),
else the locale (`LC_ALL`, `LC_MESSAGES`, `LANG`), else English.
"""

from __future__ import annotations

import functools
import gettext
import io
import os
from pathlib import Path

from kubelab.errors import KubelabError

ENGLISH = "en"
CHINESE = "zh-CN"
LANGUAGES = (ENGLISH, CHINESE)
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "kubelab"
_ZH_DOCS = LOCALE_DIR / "zh-cn-docs.txt"  # kubernetes.io pages that have a zh-cn translation
_DOCS = "https://kubernetes.io/docs/"
_ZH_DOCS_ROOT = "https://kubernetes.io/zh-cn/docs/"

# Set by `use()` (the workspace's choice); KUBELAB_LANG still wins, as a one-off override.
_chosen: str | None = None


def normalise(tag: str) -> str | None:
    """Return the supported language a tag names (zh, zh_CN.UTF-8, zh-cn, en_GB ...), or None."""
    base = tag.split(".")[0].split("@")[0].replace("_", "-").lower()
    if base in ("zh", "zh-cn", "zh-hans", "zh-sg") or base.startswith("zh-hans"):
        return CHINESE
    if base == "en" or base.startswith("en-") or base in ("c", "posix"):
        return ENGLISH
    return None


def parse(tag: str) -> str:
    """Return the language `tag` names, or stop with one line listing the choices."""
    lang = normalise(tag)
    if lang is None:
        raise KubelabError(
            _("language {tag} is not offered; choose one of {choices}").format(
                tag=repr(tag), choices=", ".join(LANGUAGES)
            )
        )
    return lang


def from_environment() -> str | None:
    """Return the language KUBELAB_LANG or the locale asks for, if kubelab offers it."""
    explicit = os.environ.get("KUBELAB_LANG")
    if explicit:
        return normalise(explicit)
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            return normalise(value)
    return None


def use(lang: str | None) -> None:
    """Read in `lang` from now on (the workspace's choice); None goes back to the environment."""
    global _chosen
    _chosen = lang


def current() -> str:
    """Return the language a learner reads now."""
    explicit = os.environ.get("KUBELAB_LANG")
    if explicit and normalise(explicit):
        return normalise(explicit) or ENGLISH
    return _chosen or from_environment() or ENGLISH


def catalogue_path(lang: str) -> Path:
    """Return the `.po` catalogue of `lang` (zh-CN is stored as gettext's zh_CN)."""
    return LOCALE_DIR / lang.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """Return `lang`'s translations, compiled from its `.po` catalogue (English: none)."""
    path = catalogue_path(lang)
    if lang == ENGLISH or not path.is_file():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with path.open("rb") as f:
        catalog = read_po(f, locale=lang.replace("-", "_"), domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)  # a fuzzy entry is unchecked: English instead
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def _(message: str) -> str:
    """Return `message` in the learner's language."""
    return translations(current()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """Return the singular or plural form of a message for `n`, in the learner's language."""
    return translations(current()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark `message` for extraction; it is translated where it is shown."""
    return message


@functools.cache
def _zh_docs() -> frozenset[str]:
    if not _ZH_DOCS.is_file():
        return frozenset()
    lines = _ZH_DOCS.read_text().splitlines()
    return frozenset(line.strip().strip("/") for line in lines if line.strip())


def docs(url: str, lang: str | None = None) -> str:
    """Return the kubernetes.io page `url` in `lang`: its zh-cn twin where one exists."""
    if (lang or current()) != CHINESE or not url.startswith(_DOCS):
        return url
    path, _sep, anchor = url[len(_DOCS) :].partition("#")
    if path.strip("/") not in _zh_docs():
        return url
    return _ZH_DOCS_ROOT + path + ("#" + anchor if anchor else "")
