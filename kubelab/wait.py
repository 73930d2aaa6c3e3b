"""Waiting with a deadline: poll a condition until it holds, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Timeout(Exception):
    """The condition did not hold before the deadline; `last` is the last value seen, `what` the
    condition as a person reads it, `waited` the seconds spent."""

    def __init__(self, message: str, last: object, *, what: str = "", waited: float = 0.0) -> None:
        super().__init__(message)
        self.last = last
        self.what = what
        self.waited = waited


def until(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = 0.5,
    what: str = "condition",
    raise_on_timeout: bool = True,
) -> T:
    """Call `probe` until `done(value)` is true and return that value.

    At the deadline raise Timeout, or with ``raise_on_timeout=False`` return the last value.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            if not raise_on_timeout:
                return value
            raise Timeout(
                f"{what} not reached within {timeout:.0f}s (last: {value!r})",
                value,
                what=what,
                waited=timeout,
            )
        time.sleep(min(interval, max(deadline - time.monotonic(), 0)))
