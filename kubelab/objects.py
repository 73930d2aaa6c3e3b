"""Small readers of Kubernetes objects' JSON that graders and notebook views share."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


def image_tag(image: str) -> str:
    """Return the tag of an image reference ("latest" when it has none, the digest when pinned)."""
    if "@" in image:
        return image.split("@", 1)[1]
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else "latest"


def dig(obj: Any, *path: str, default: Any = None) -> Any:
    """Return the value at `path` in nested dicts, or `default` where any step is missing."""
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Tell whether `obj` lists the object with this uid among its owners."""
    owners = dig(obj, "metadata", "ownerReferences", default=None) or []
    return any(o.get("uid") == uid for o in owners)


def port_number(port: Any, containers: list[dict[str, Any]]) -> Any:
    """Resolve a named port ("http") to the containers' number; numbers pass through."""
    if isinstance(port, str):
        for c in containers:
            for p in c.get("ports") or []:
                if p.get("name") == port:
                    return p.get("containerPort")
    return port


def labels_query(labels: Mapping[str, str]) -> str:
    """Turn labels into the equality selector the API takes ("app=web,tier=front")."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def selector_query(selector: Mapping[str, Any] | None) -> str | None:
    """Turn a LabelSelector into the query string the API takes; None when it selects nothing."""
    if not selector:
        return None
    parts = [labels_query(selector.get("matchLabels") or {})] if selector.get("matchLabels") else []
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) or None


def ready_endpoints(slices: list[dict[str, Any]]) -> set[str]:
    """Return the ready endpoints of EndpointSlices, by pod name (or address when no pod)."""
    ready: set[str] = set()
    for s in slices:
        for ep in s.get("endpoints") or []:
            if dig(ep, "conditions", "ready") is True:
                ready.add(dig(ep, "targetRef", "name") or ",".join(ep.get("addresses", [])))
    return ready


_SLEEP = re.compile(r"\bsleep\s+(\d+)")


def prestop_delay(hook: Mapping[str, Any] | None) -> int | None:
    """Return how long a preStop hook waits, in seconds, when it says so, else None.

    One reading for every lab: the `sleep` action (`sleep: {seconds: 5}`), or an `exec` hook
    that runs sleep, as one shell string (`sh -c "sleep 7 && ..."`) or as its own arguments
    (`["sleep", "5"]`, `["/bin/sleep", "3"]`). An httpGet hook, or none, says nothing.
    """
    if not hook:
        return None
    seconds = dig(hook, "sleep", "seconds")
    if isinstance(seconds, int) and not isinstance(seconds, bool):
        return seconds
    command = [str(a) for a in dig(hook, "exec", "command", default=None) or []]
    match = _SLEEP.search(" ".join(command))
    if match:
        return int(match.group(1))
    for word, nxt in itertools.pairwise(command):  # `sleep` as its own argument: ["sleep", "5"]
        if word.endswith("sleep") and nxt.isdigit():
            return int(nxt)
    return None
