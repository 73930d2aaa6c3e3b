"""Every lab, checked against a namespace that does not exist: 0 points, and each check says so
and how to make it (the runner answers this once for all graders)."""

from __future__ import annotations

import pytest

from kubelab import api, labs
from kubelab.grading import runner

LABS = labs.all_labs()


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_missing_namespace_fails_every_check_with_the_fix(lab: labs.Lab, client: api.Api) -> None:
    report = runner.run(lab, namespace="no-such-ns", client=client, timeout=5)
    assert report.score == 0 and len(report.checks) == len(lab.tasks)
    assert all("no-such-ns does not exist" in c.message for c in report.checks)
    assert all(c.hint and f"kubelab reset {lab.id}" in c.hint for c in report.checks)
