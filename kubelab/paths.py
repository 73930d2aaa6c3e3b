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
LABS_DIR = REPO_ROOT / "labs"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
APPS_DIR = REPO_ROOT / "apps"


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


def data_home() -> Path:
    """Return where a learner's own records live (progress), creating it if needed.

    ``$KUBELAB_DATA`` wins, then ``$XDG_DATA_HOME/kubelab``, then ``~/.local/share/kubelab``: data,
    not cache, so clearing caches never loses a learner's progress.
    """
    explicit = os.environ.get("KUBELAB_DATA")
    if explicit:
        base = Path(explicit)
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".local" / "share") / "kubelab"
    base.mkdir(parents=True, exist_ok=True)
    return base


def log_file(name: str) -> Path:
    """Return the path of a log file under the cache (its folder created)."""
    log = cache_home() / "logs" / name
    log.parent.mkdir(parents=True, exist_ok=True)
    return log
