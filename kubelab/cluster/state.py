"""Remember which backend runs each named cluster, so `down`, `status` and `env` need no flags."""

from __future__ import annotations

import json
from pathlib import Path

from kubelab import paths


def _file(cluster: str) -> Path:
    d = paths.cache_home() / "clusters"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{cluster}.json"


def recorded_backend(cluster: str) -> str | None:
    """Return the backend recorded for `cluster`, if any."""
    f = _file(cluster)
    if not f.is_file():
        return None
    try:
        value = json.loads(f.read_text()).get("backend")
    except (OSError, ValueError):
        return None
    return value if isinstance(value, str) else None


def record(cluster: str, backend: str) -> None:
    """Note that `cluster` runs on `backend`."""
    _file(cluster).write_text(json.dumps({"backend": backend}) + "\n")


def forget(cluster: str) -> None:
    """Drop the record for `cluster`."""
    _file(cluster).unlink(missing_ok=True)
