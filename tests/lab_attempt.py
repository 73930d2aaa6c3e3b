"""One lab attempt in a namespace of its own on the test cluster: apply, act, grade, delete.

Every lab's cluster tests use it the same way: apply the solution or the starter (optionally
changed by a `mutate` function, to make a known-wrong variant), run kubectl, and grade.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubelab import api, apply, lab_namespaces
from kubelab.grading import runner
from kubelab.grading.result import Report
from kubelab.labs import Lab
from tests.conftest import Kubectl

Docs = list[dict[str, Any]]


def find(docs: Docs, kind: str, name: str | None = None) -> dict[str, Any]:
    """Return the first rendered object of `kind` (and `name`)."""
    return next(
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    )


class LabAttempt:
    """A learner's attempt at `lab` in a fresh kubelab-made namespace."""

    def __init__(self, lab: Lab, kubectl: Kubectl, client: api.Api) -> None:
        self.lab = lab
        self.kubectl = kubectl
        self.client = client
        self.name = f"l{lab.number}-{uuid.uuid4().hex[:6]}"
        lab_namespaces.ensure(client, lab, self.name)

    def render(self, target: Path) -> Docs:
        """Return the objects a manifest file, folder or Kustomize folder holds."""
        if apply.is_kustomization(target):
            text = self.kubectl("kustomize", str(target)).stdout
        else:
            text = "\n---\n".join(f.read_text() for f in apply.yaml_files(target))
        return [d for d in yaml.safe_load_all(text) if d]

    def apply(self, target: Path, mutate: Callable[[Docs], None] | None = None) -> Docs:
        """Apply `target` (changed by `mutate`) into the namespace; return what was applied."""
        docs = self.render(target)
        if mutate:
            mutate(docs)
        self.kubectl("apply", "-n", self.name, "-f", "-", stdin=yaml.safe_dump_all(docs))
        return docs

    def run(self, *args: str, timeout: float = 90) -> str:
        """Run kubectl in the namespace and return its output."""
        return self.kubectl("-n", self.name, *args, timeout=timeout).stdout

    def grade(self, only: list[str] | None = None, timeout: float = 30) -> Report:
        """Grade the namespace as `kubelab check` would."""
        return runner.run(
            self.lab, namespace=self.name, only=only, client=self.client, timeout=timeout
        )

    def delete(self) -> None:
        """Delete the namespace without waiting."""
        self.kubectl("delete", "namespace", self.name, "--wait=false", check=False)


Variant = tuple[str, Callable[[Docs], None], str]  # (id, change to the solution, failing check)


def wrong_answers(variants: list[Variant]) -> pytest.MarkDecorator:
    """Parametrize a test over known-wrong variants of a solution: `mutate`, `failing`."""
    return pytest.mark.parametrize(
        ("mutate", "failing"), [pytest.param(m, f, id=name) for name, m, f in variants]
    )


def failed(report: Report) -> dict[str, str]:
    """Return the failed checks' messages by id (for assertion messages)."""
    return {c.id: c.message for c in report.checks if not c.passed}


# The SRE books are the reference for SLOs and error budgets (lab 07).
DOCS_SITES = (
    "https://kubernetes.io/docs/",
    "https://gateway-api.sigs.k8s.io/",
    "https://sre.google/",
)


def assert_every_check_fails_with_a_hint(report: Report) -> None:
    """The starter's promise: 0 points on every check, each with a message and a docs hint."""
    for check in report.checks:
        assert not check.passed, check.id
        assert check.points == 0, (check.id, check.message)
        assert check.message, check.id
        assert check.hint and any(site in check.hint for site in DOCS_SITES), check.id
    assert report.score == 0


def grades_the_same_in_chinese(english: Report, grade: Callable[[], Report]) -> None:
    """Grade the same state again in zh-CN: the same verdicts and points, and every message in
    Chinese (a zh-CN workspace's lab grades exactly as the English one)."""
    before = os.environ.get("KUBELAB_LANG")
    os.environ["KUBELAB_LANG"] = "zh-CN"
    try:
        chinese = grade()
    finally:
        if before is None:
            os.environ.pop("KUBELAB_LANG", None)
        else:
            os.environ["KUBELAB_LANG"] = before
    assert [(c.id, c.passed, c.points) for c in chinese.checks] == [
        (c.id, c.passed, c.points) for c in english.checks
    ]
    for c in chinese.checks:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in c.message), (c.id, c.message)
