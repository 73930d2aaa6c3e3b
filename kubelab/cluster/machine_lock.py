"""One lock file per shared step on this machine (a build, a cluster's creation).

Two `kubelab` processes, or two test workers, may reach the same step at once; the second waits
for the first instead of building the same folder twice or taking the same free port.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created with its folder) for the block's duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
