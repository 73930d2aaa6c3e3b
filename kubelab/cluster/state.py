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


def record(cluster: str, backend: str, **details: str) -> None:
    """Note that `cluster` runs on `backend` (with backend-specific `details`, all strings)."""
    _file(cluster).write_text(json.dumps({"backend": backend, **details}) + "\n")


def details(cluster: str) -> dict[str, str]:
    """Return everything recorded for `cluster` ({} when nothing is)."""
    try:
        value = json.loads(_file(cluster).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(v, str)}


def side_file(cluster: str, suffix: str) -> Path:
    """Return a file kept beside the record of `cluster` (e.g. ``.kubeconfig``)."""
    return _file(cluster).with_suffix(suffix)


def forget(cluster: str) -> None:
    """Drop the record for `cluster`."""
    _file(cluster).unlink(missing_ok=True)
