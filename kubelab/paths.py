"""Where kubelab keeps things: the checkout it runs from and its cache outside the repo.

Built binaries and cluster state never live in the repository. They go under
``$KUBELAB_CACHE`` (default ``$XDG_CACHE_HOME/kubelab``, i.e. ``~/.cache/kubelab``), so a fresh
clone stays small and a second clone on the same machine reuses the same build.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SIM_DIR = REPO_ROOT / "sim"
MANIFESTS_DIR = REPO_ROOT / "manifests"


def cache_home() -> Path:
    """Return kubelab's cache directory, creating it if needed."""
    explicit = os.environ.get("KUBELAB_CACHE")
    if explicit:
        base = Path(explicit)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "kubelab"
    base.mkdir(parents=True, exist_ok=True)
    return base
