"""The same known-wrong answers, graded on kind: the same verdicts as on the sim.

Lab 02's wrong variants (tests/cluster/test_lab02_deployment.py) each break one requirement; on
the sim exactly that check fails. Here they run against real pods, probes and rollouts, and the
test asserts the same: the substrates differ in how the state comes about, not in the verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from kubelab import api
from tests.cluster.test_lab02_deployment import DEV, LAB, SOLUTION, VARIANTS, LabNamespace
from tests.conftest import Kubectl
from tests.lab_attempt import Docs


@pytest.fixture
def attempt(kubectl: Kubectl, client: api.Api) -> Iterator[LabNamespace]:
    ns = LabNamespace(LAB, kubectl, client)
    yield ns
    ns.delete()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mutate", "rollout", "failing"),
    [pytest.param(m, r, f, id=name) for name, m, r, f in VARIANTS],
)
def test_lab02_wrong_answer_fails_exactly_its_check_on_kind(
    attempt: LabNamespace,
    mutate: Callable[[Docs], None] | None,
    rollout: tuple[str, ...],
    failing: str,
) -> None:
    attempt.apply(SOLUTION, mutate)
    attempt.apply(DEV)
    attempt.run("rollout", "status", "deployment/demo-web", "--timeout=120s", timeout=130)
    attempt.run(*rollout)
    attempt.run("rollout", "status", "deployment/demo-web", "--timeout=120s", timeout=130)
    report = attempt.grade(timeout=90)
    failed = {c.id for c in report.checks if not c.passed}
    assert failed == {failing}, {c.id: c.message for c in report.checks if not c.passed}
