"""A learner's progress, kept on their own machine: the latest result of every check they ran.

No login and no server: one JSON file under kubelab's data folder (`paths.data_home`). Writes are
atomic, and a damaged file is set aside (never deleted) and started afresh. Results are kept per
lab and namespace (`labs.<lab>.namespaces.<ns>`), so checking another namespace never replaces the
learner's score; a record of a lab alone (written before) is read as its namespace's. In a
workshop the result is also posted to the leader's board (`posted_scores`).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelab import paths
from kubelab.errors import KubelabError
from kubelab.grading.result import Report
from kubelab.labs import Lab


def progress_file() -> Path:
    """Return the progress file's path."""
    return paths.data_home() / "progress.json"


def _read() -> dict[str, Any]:
    path = progress_file()
    if not path.is_file():
        return {"labs": {}}
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("labs"), dict):
            return data
    except (OSError, ValueError):
        pass
    path.replace(path.with_suffix(f".damaged-{int(time.time())}.json"))
    return {"labs": {}}


def _write(data: dict[str, Any]) -> None:
    path = progress_file()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".progress-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def record(report: Report, *, kubeconfig: str | None = None) -> None:
    """Merge a report's results into the saved progress (a partial run updates only its checks),
    and post it to the workshop board when it graded a participant's namespace (`kubeconfig`:
    the credentials the check used; never fails the check)."""
    from kubelab.grading import posted_scores  # here: it imports the cluster client

    posted_scores.publish(report, kubeconfig)
    try:
        data = _read()
        lab = data["labs"].setdefault(report.lab, {})
        namespaces = _namespaces(lab)
        entry = namespaces.setdefault(report.namespace, {"checks": {}})
        entry["checked_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        for c in report.checks:
            if c.not_converged:
                continue  # not judged: keep the last real result
            entry["checks"][c.id] = {
                "passed": c.passed,
                "points": c.points,
                "max_points": c.max_points,
            }
        # Beside the records by namespace, the learner's own as an older kubelab reads it (one
        # record a lab): going back a version must not crash on this file.
        mine = _pick(namespaces, _own_namespace(report.lab))
        lab.clear()
        lab.update(namespaces[mine], namespace=mine, namespaces=namespaces)
        _write(data)
    except OSError:
        pass  # a read-only home must not stop grading; progress is a convenience


def _namespaces(lab: dict[str, Any]) -> dict[str, Any]:
    """Return a lab's records by namespace, the per-lab record (an older kubelab's, or written
    for one) under its namespace when it is the newer."""
    found = {ns: e for ns, e in (lab.get("namespaces") or {}).items() if isinstance(e, dict)}
    if isinstance(lab.get("checks"), dict):
        ns = str(lab.get("namespace") or "")
        old = {"checks": lab["checks"], "checked_at": lab.get("checked_at")}
        if ns not in found or str(old["checked_at"] or "") > str(found[ns].get("checked_at") or ""):
            found[ns] = old
    return found


def _own_namespace(lab_id: str) -> str:
    """Return the learner's namespace of a lab: $KUBELAB_NAMESPACE, else the lab's own."""
    from kubelab import labs

    explicit = os.environ.get("KUBELAB_NAMESPACE")
    if explicit:
        return explicit
    try:
        return labs.find(lab_id).namespace
    except KubelabError:
        return ""


def _pick(found: dict[str, Any], own: str) -> str:
    """Return the namespace whose record is the learner's: their own, else (a workshop
    participant's copy) the latest checked."""
    if own in found or not found:
        return own
    return max(found, key=lambda ns: str(found[ns].get("checked_at") or ""))


def _entry(lab: Lab, namespace: str | None) -> dict[str, Any]:
    """Return the record of `lab` in `namespace`; by default the learner's: $KUBELAB_NAMESPACE
    or the lab's own namespace, else (a workshop participant's copy) the latest checked."""
    try:
        found = _namespaces(_read()["labs"].get(lab.id) or {})
    except OSError:
        return {}
    if namespace is None:
        namespace = _pick(found, os.environ.get("KUBELAB_NAMESPACE") or lab.namespace)
    return dict(found.get(namespace, {}))


@dataclass(frozen=True)
class LabProgress:
    """Where a learner stands in one lab."""

    score: float
    max_score: float
    passed: int
    tasks: int
    checked_at: str | None


def of(lab: Lab, namespace: str | None = None) -> LabProgress:
    """Return the saved progress of `lab` in `namespace` (default: the learner's; zero when never
    checked)."""
    entry = _entry(lab, namespace)
    saved = entry.get("checks", {})
    score = passed = 0.0
    for task in lab.tasks:
        result = saved.get(task.id)
        if isinstance(result, dict):
            score += min(float(result.get("points", 0)), task.points)
            passed += bool(result.get("passed"))
    return LabProgress(score, lab.max_score, int(passed), len(lab.tasks), entry.get("checked_at"))


def passed_tasks(lab: Lab, namespace: str | None = None) -> dict[str, bool]:
    """Return, for each task of `lab` checked in `namespace` (default: the learner's), whether
    its latest check passed."""
    saved = _entry(lab, namespace).get("checks", {})
    return {
        t.id: bool(saved[t.id].get("passed"))
        for t in lab.tasks
        if isinstance(saved.get(t.id), dict)
    }
