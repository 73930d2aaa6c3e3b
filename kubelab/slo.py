"""SLO arithmetic: error budgets, burn rates and replicas for a load, shared by module 07's
teaching notebook and its grader (which computes the answers it compares a learner's plan with),
and the writer that puts a learner's computed numbers into the lab's capacity-plan ConfigMap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from kubelab.errors import KubelabError
from kubelab.i18n import _

MINUTES_PER_DAY = 24 * 60


def error_budget_minutes(slo: float, days: float) -> float:
    """Return the minutes of total outage an availability `slo` (0.999) allows over `days`."""
    return (1 - slo) * days * MINUTES_PER_DAY


def error_budget_requests(slo: float, days: float, requests_per_day: float) -> float:
    """Return the failed requests a request-based `slo` allows over `days`."""
    return (1 - slo) * days * requests_per_day


def burn_rate(error_ratio: float, slo: float) -> float:
    """Return how many times faster than the SLO allows an `error_ratio` spends the budget
    (1 spends it exactly over the window)."""
    return error_ratio / (1 - slo)


def hours_to_exhaustion(rate: float, days: float) -> float:
    """Return the hours a full budget over `days` lasts at burn rate `rate`."""
    return days * 24 / rate


def replicas_for(load: float, pod_capacity: float, target_utilization: float) -> int:
    """Return the pods that serve `load` with each at `target_utilization` (0.7) of the
    `pod_capacity` it was sized for: the rest of each pod is headroom for a burst."""
    # Round before ceil so that float noise (6.0000001) does not add a pod.
    return math.ceil(round(load / (pod_capacity * target_utilization), 9))


def close(found: float, expected: float, *, tolerance: float = 0.005) -> bool:
    """Tell whether `found` is `expected` within a relative `tolerance` (rounding in a plan)."""
    return abs(found - expected) <= tolerance * max(abs(expected), 1.0)


def plan_text(value: object) -> str:
    """Return a plan value as the string a ConfigMap holds: numbers without float noise
    (43.20000000000004 -> "43.2"), anything else (a quantity such as "250m") as written."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value).strip()
    return format(round(float(value), 6), ".10g")


def _quoted(written: str) -> Callable[[re.Match[str]], str]:
    """Return a substitution that keeps the key and its spacing and quotes `written`."""
    return lambda m: f'{m.group(1)}"{written}"'


def write_plan(path: str | Path, values: Mapping[str, object]) -> None:
    """Write `values` into the data of the ConfigMap manifest at `path`, keeping its comments
    and layout; every key must already be there (a typo is one line, not a new key)."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as err:
        raise KubelabError(
            _("cannot read the capacity plan {file}: {reason}").format(
                file=file, reason=err.strerror
            )
        ) from err
    for key, value in values.items():
        line = re.compile(rf'^(\s*{re.escape(key)}:\s*)"[^"\n]*"', re.MULTILINE)
        written = plan_text(value)
        if '"' in written or "\n" in written or "\\" in written:
            raise KubelabError(
                _("{key}: {value} is not a plain number or quantity").format(
                    key=key, value=repr(written)
                )
            )
        text, found = line.subn(_quoted(written), text, count=1)
        if not found:
            raise KubelabError(
                _('{file} has no line `{key}: "..."` to write {key} into').format(
                    file=file, key=key
                )
            )
    file.write_text(text)
