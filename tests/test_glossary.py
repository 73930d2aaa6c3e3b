"""The glossary (docs/glossary.md) is A to Z, links every term to its reference, and names every
kind of object the teaching notebooks make, so a learner who meets a word there can look it up."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "docs" / "glossary.md"
# Terms whose reference is not on kubernetes.io: SRE practice, other projects' sites, and the
# course's own words (marked "(course)" in their heading).
NOT_ON_KUBERNETES_IO = {
    "Burn rate",  # Google SRE workbook
    "Error budget",  # Google SRE workbook
    "Golden signals",  # Google SRE book
    "HTTPRoute",  # gateway-api.sigs.k8s.io
    "kind",  # kind.sigs.k8s.io
    "KWOK",  # kwok.sigs.k8s.io
    "P95 (percentile)",  # Google SRE book
    "ReferenceGrant",  # gateway-api.sigs.k8s.io
    "Restore drill",  # velero.io
    "Service mesh",  # gateway-api.sigs.k8s.io
    "SLI, SLO and SLA",  # Google SRE book
    "Traefik",  # doc.traefik.io
}


def entries() -> dict[str, str]:
    """Return the glossary's entries: heading -> text."""
    parts = re.split(r"^### (.+)$", GLOSSARY.read_text(), flags=re.M)
    return {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts), 2)}


def _sort_key(term: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", term.lower().replace("-", " ")).strip()


def test_the_glossary_is_alphabetical() -> None:
    terms = list(entries())
    assert len(terms) >= 60, len(terms)
    out_of_order = [(a, b) for a, b in itertools.pairwise(terms) if _sort_key(a) > _sort_key(b)]
    assert not out_of_order, out_of_order


@pytest.mark.parametrize("term", list(entries()))
def test_each_term_is_short_and_linked(term: str) -> None:
    text = entries()[term]
    prose = text.split("\n[", 1)[0]
    assert 40 <= len(prose) <= 600, f"{term}: {len(prose)} characters"
    # A few sentences at most; code spans and the closing "Module NN." pointer do not count.
    words = re.sub(r"`[^`]*`|(?:Modules?|Every module)[0-9, ]*\.", "x", prose)
    sentences = len(re.findall(r"[.!?](?:\s|$)", words))
    assert sentences <= 3, f"{term}: {sentences} sentences"
    links = re.findall(r"\]\((\S+?)\)", text)
    assert links, f"{term}: no link"
    if "(course)" not in term and term not in NOT_ON_KUBERNETES_IO:
        assert any(u.startswith("https://kubernetes.io/") for u in links), (
            f"{term}: no kubernetes.io link"
        )


def test_every_kind_the_notebooks_make_is_in_the_glossary() -> None:
    text = GLOSSARY.read_text()
    kinds = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                kinds |= set(re.findall(r"^\s*(?:- )?kind: ([A-Z]\w+)\s*$", cell.source, re.M))
                kinds |= set(re.findall(r"\"kind\": \"([A-Z]\w+)\"", cell.source))
    assert {"Pod", "Deployment", "StatefulSet"} <= kinds, kinds
    missing = sorted(k for k in kinds if not re.search(rf"\b{k}\b", text))
    assert not missing, f"docs/glossary.md does not name {missing}"
