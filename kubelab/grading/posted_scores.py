"""A check's result posted to its namespace for the workshop board (ConfigMap `kubelab-progress`).

When a check runs in a namespace labelled `kubelab.dev/participant`, its result is merged into
the ConfigMap `kubelab-progress` there, with whatever credentials ran the check (a participant's
own). Posting is part of every check (`saved_progress.record`), so it lives in the engine; the
board that reads those ConfigMaps is workshop code (`kubelab.workshop.scores`, `board`), which the
engine never imports.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from kubelab import api, labs, paths
from kubelab.errors import KubelabError
from kubelab.grading.result import Report
from kubelab.lab_namespaces import LAB_LABEL, MANAGED_BY, PARTICIPANT

CONFIGMAP = "kubelab-progress"


def now() -> str:
    """Return the current time as the board writes it (ISO 8601, UTC, whole seconds)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def number(value: float) -> int | float:
    """Return whole numbers as int, so JSON and the ConfigMap show 3, not 3.0."""
    return int(value) if float(value).is_integer() else round(value, 2)


def posted_tasks(cm: api.Json | None) -> dict[str, float]:
    """Return the points by task a posted ConfigMap holds ({} when it holds none)."""
    try:
        raw = json.loads(((cm or {}).get("data") or {}).get("tasks", "{}"))
        return {str(k): float(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    except (ValueError, TypeError, AttributeError):
        return {}


def body(report: Report, participant: str, earlier: api.Json | None) -> api.Json:
    """Return the ConfigMap holding `report` merged into what `earlier` (same lab) held."""
    same_lab = ((earlier or {}).get("data") or {}).get("lab") == report.lab
    tasks = posted_tasks(earlier) if same_lab else {}
    # A check that did not converge was not judged: the board keeps the last real score.
    tasks.update({c.id: c.points for c in report.checks if not c.not_converged})
    try:  # only this lab's file: a check should not pay for reading every lab
        lab = labs.load(paths.LABS_DIR / report.lab / "lab.yaml")
        tasks = {t.id: min(tasks[t.id], t.points) for t in lab.tasks if t.id in tasks}
        max_score = float(lab.max_score)
    except (KubelabError, OSError):  # a lab this checkout does not know: keep the report's
        max_score = report.max_score
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIGMAP,
            "labels": {MANAGED_BY: "kubelab", PARTICIPANT: participant, LAB_LABEL: report.lab},
        },
        "data": {
            "lab": report.lab,
            "participant": participant,
            "score": f"{sum(tasks.values()):g}",
            "max-score": f"{max_score:g}",
            "checked-at": now(),
            "tasks": json.dumps({k: number(v) for k, v in tasks.items()}, sort_keys=True),
        },
    }


def publish(report: Report, kubeconfig: str | None = None) -> bool:
    """Post `report` to the board if its namespace is a participant's; return whether it was.

    Never raises: a learner's check must not fail because of the board.
    """
    try:
        client = api.Api(kubeconfig)
    except Exception:
        return False
    try:
        ns = client.get(api.NAMESPACES, report.namespace)
        who = ((ns or {}).get("metadata", {}).get("labels") or {}).get(PARTICIPANT)
        if not who:
            return False
        earlier = client.get(api.CONFIGMAPS, CONFIGMAP, report.namespace)
        new = body(report, str(who), earlier)
        if earlier is None:
            client.create(api.CONFIGMAPS, new, report.namespace)
        else:
            client.patch(api.CONFIGMAPS, CONFIGMAP, new, report.namespace)
        return True
    except Exception:  # any failure at all: the board just misses this check
        return False
    finally:
        client.close()
