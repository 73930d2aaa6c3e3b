"""SLO arithmetic (kubelab/slo.py) and the writer of module 07's capacity plan."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from kubelab import slo
from kubelab.errors import KubelabError

STARTER_PLAN = (
    Path(__file__).resolve().parents[1] / "labs/07-slo-capacity/starter/capacity-plan.yaml"
)


def test_error_budget_of_three_nines_over_30_days() -> None:
    assert math.isclose(slo.error_budget_minutes(0.999, 30), 43.2)
    assert math.isclose(slo.error_budget_minutes(0.9999, 30), 4.32)
    assert math.isclose(slo.error_budget_requests(0.999, 30, 2_000_000), 60_000)


def test_burn_rate_and_how_long_the_budget_lasts() -> None:
    assert math.isclose(slo.burn_rate(0.001, 0.999), 1.0)  # exactly on budget
    rate = slo.burn_rate(0.0144, 0.999)
    assert math.isclose(rate, 14.4)
    assert math.isclose(slo.hours_to_exhaustion(rate, 30), 50)
    assert math.isclose(slo.hours_to_exhaustion(1.0, 30), 720)


@pytest.mark.parametrize(
    ("load", "capacity", "target", "pods"),
    [(910, 200, 0.7, 7), (1638, 200, 0.7, 12), (840, 200, 0.7, 6), (600, 200, 1.0, 3)],
)
def test_replicas_round_up_and_exact_fits_add_no_pod(
    load: float, capacity: float, target: float, pods: int
) -> None:
    assert slo.replicas_for(load, capacity, target) == pods


def test_close_allows_rounding_not_mistakes() -> None:
    assert slo.close(43.2, 43.20000000000004)
    assert slo.close(14.4, 14.399999)
    assert not slo.close(43.83, 43.2)
    assert not slo.close(0.0, 0.25)


@pytest.mark.parametrize(
    ("value", "text"),
    [(43.20000000000004, "43.2"), (60000.00000000005, "60000"), (7, "7"), ("250m", "250m")],
)
def test_plan_text(value: object, text: str) -> None:
    assert slo.plan_text(value) == text


def test_write_plan_keeps_comments_and_fills_values(tmp_path: Path) -> None:
    plan = tmp_path / "capacity-plan.yaml"
    plan.write_text(STARTER_PLAN.read_text())
    slo.write_plan(plan, {"burn-rate": 14.399999999999986, "cpu-request": "250m"})
    text = plan.read_text()
    assert "# TODO(burn-rate)" in text
    data = yaml.safe_load(text)["data"]
    assert data["burn-rate"] == "14.4" and data["cpu-request"] == "250m"
    assert data["min-replicas"] == "0"  # untouched


def test_write_plan_refuses_unknown_keys_and_odd_values(tmp_path: Path) -> None:
    plan = tmp_path / "capacity-plan.yaml"
    plan.write_text(STARTER_PLAN.read_text())
    before = plan.read_text()
    with pytest.raises(KubelabError, match="no line `burnrate"):
        slo.write_plan(plan, {"burnrate": 14.4})
    with pytest.raises(KubelabError, match="not a plain number"):
        slo.write_plan(plan, {"burn-rate": 'x" y'})
    assert plan.read_text() == before
    with pytest.raises(KubelabError, match="cannot read"):
        slo.write_plan(tmp_path / "missing.yaml", {"burn-rate": 1})
