"""Where kubelab keeps things: the course it ships and its cache outside the repo.

The course (labs, notebooks, the glossary, manifests, the sim and kind pins, the demo app) sits at
the top of a checkout. An installed wheel carries the same folders as package data under
``kubelab/_course/`` (pyproject.toml maps them there), so ``COURSE_ROOT`` is that folder when it
exists and the checkout otherwise; nothing else in kubelab needs to know which. The graders are
``kubelab.graders`` either way (the checkout's ``graders/``, mapped by the install).

Built binaries and cluster state never live in the repository. They go under
``$KUBELAB_CACHE`` (default ``$XDG_CACHE_HOME/kubelab``, i.e. ``~/.cache/kubelab``), so a fresh
clone stays small and a second clone on the same machine reuses the same build.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_INSTALLED_COURSE = PACKAGE_DIR / "_course"
INSTALLED = (_INSTALLED_COURSE / "labs").is_dir()
"""True when kubelab runs from an installed wheel, False in a checkout (editable or not)."""
COURSE_ROOT = _INSTALLED_COURSE if INSTALLED else PACKAGE_DIR.parent
GRADERS_DIR = PACKAGE_DIR / "graders" if INSTALLED else PACKAGE_DIR.parent / "graders"
SIM_DIR = COURSE_ROOT / "sim"
MANIFESTS_DIR = COURSE_ROOT / "manifests"
LABS_DIR = COURSE_ROOT / "labs"
NOTEBOOKS_DIR = COURSE_ROOT / "notebooks"
APPS_DIR = COURSE_ROOT / "apps"
KIND_DIR = COURSE_ROOT / "kind"
GLOSSARY = COURSE_ROOT / "docs" / "glossary.md"
"""The course's glossary, which notebooks link as ``../docs/glossary.md``; init copies it."""
REPO_ROOT = PACKAGE_DIR.parent
"""The checkout, for its tests and scripts; kubelab itself reads the course from COURSE_ROOT."""


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
