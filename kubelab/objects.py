"""Small readers of Kubernetes objects' JSON that graders, lab kits and notebook views share.

The one place each of these is read: owner references (`owner_references`, `owned_by`,
`controller_uid`), label selectors (`selects`, `selector_query`) and resource quantities
(`quantity`). It sits in the bottom layer with the JSON client, so any layer may use it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
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


def owner_references(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the ownerReferences of `obj` ([] when it has none)."""
    refs = dig(obj, "metadata", "ownerReferences", default=None) or []
    return [r for r in refs if isinstance(r, dict)]


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Tell whether `obj` lists the object with this uid among its owners."""
    return any(r.get("uid") == uid for r in owner_references(obj))


def controller_uid(obj: Mapping[str, Any]) -> str:
    """Return the uid of the controller that owns `obj`, else of its first owner ("" when none)."""
    refs = owner_references(obj)
    for ref in refs:
        if ref.get("controller"):
            return str(ref.get("uid", ""))
    return str(refs[0].get("uid", "")) if refs else ""


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


_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Tell whether a LabelSelector (matchLabels and matchExpressions) selects `labels`.

    An empty selector selects everything; None (no selector given) is treated the same way, so
    callers decide what an absent selector means before calling. An expression with an operator
    other than In, NotIn, Exists and DoesNotExist selects nothing (the API server rejects it).
    """
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op not in _OPERATORS:
            return False
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def selector_query(selector: Mapping[str, Any] | None) -> str | None:
    """Turn a LabelSelector into the query string the API takes; None when it selects nothing.

    Unknown operators are left out here (a query has no "nothing"); `selects` matches none.
    """
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


_SUFFIX = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def quantity(value: object) -> Decimal | None:
    """Return a resource quantity ("250m", "512Mi") as a Decimal in base units, None if not one."""
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIX:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except InvalidOperation:
        return None
