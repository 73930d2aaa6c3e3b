"""The traffic test on kind: send requests through the gateway, count the versions that answer,
and tell whether the counts fit the split the route configures (a two-sided binomial test).

`kubelab.gateway_routes` says where requests should go from the objects alone; this module
checks what a real Gateway controller does with them. The functions are pure except
`sample_versions`, which calls the `Fetch` it is given.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping

# z for the split test: a correct split fails with probability about 6e-5 (two-sided normal).
Z = 4.0


def tolerance(n: int, p: float, z: float = Z) -> float:
    """Return how far a count of n Bernoulli(p) trials may stray from n*p: z standard deviations."""
    return z * math.sqrt(n * p * (1.0 - p))


def within_tolerance(observed: int, n: int, p: float, z: float = Z) -> bool:
    """Tell whether `observed` successes of `n` are consistent with share `p` (binomial test)."""
    if n <= 0:
        return False
    if p in (0.0, 1.0):  # no randomness: every request must go the one way
        return observed == round(n * p)
    return abs(observed - n * p) <= tolerance(n, p, z)


def binomial_pmf(k: int, n: int, p: float) -> float:
    """Return P(X = k) for X ~ Binomial(n, p), in log space so large n does not overflow."""
    if p <= 0.0 or p >= 1.0:
        return 1.0 if k == round(n * p) else 0.0
    log = (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log(1 - p)
    )
    return math.exp(log)


def rejection_probability(n: int, p_true: float, p_expected: float, z: float = Z) -> float:
    """Return the exact chance that n requests with true share `p_true` fail the test for
    `p_expected`: the false-failure rate when they are equal, the test's power otherwise."""
    return sum(
        binomial_pmf(k, n, p_true)
        for k in range(n + 1)
        if not within_tolerance(k, n, p_expected, z)
    )


Fetch = Callable[[str, Mapping[str, str]], str | None]  # (url, headers) -> version, None on error


def sample_versions(
    fetch: Fetch,
    url: str,
    headers: Mapping[str, str],
    n: int,
    retries: int = 2,
    pause: float = 0.2,
) -> Counter[str]:
    """Send `n` requests through `fetch` and count the versions that answered ("error" if none).

    A request that gets no answer is sent again up to `retries` times: on a busy machine one
    connection can time out or be reset while the proxy reloads, and that says nothing about the
    route. Only a request that fails every time counts as an error."""
    seen: Counter[str] = Counter()
    for _request in range(n):
        got = fetch(url, headers)
        for _retry in range(retries):
            if got is not None:
                break
            time.sleep(pause)
            got = fetch(url, headers)
        seen[got or "error"] += 1
    return seen
