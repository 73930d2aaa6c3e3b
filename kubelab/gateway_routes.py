"""What a Gateway would do with an HTTPRoute, worked out from the objects alone.

The sim cluster stores Gateways and HTTPRoutes but runs no Gateway controller, so nothing there
says whether a route attaches or where a request would go. This module answers both from the
Gateway API rules (https://gateway-api.sigs.k8s.io/reference/spec/): listener admission
(parentRef sectionName/port, allowedRoutes namespaces and kinds, hostname intersection),
backendRef defaults (kind Service, the route's namespace, weight 1, a port required), and match
precedence (hostname, exact path, longest prefix, method, most headers, most query parameters, then
the oldest route, its name, rule order). The traffic test on kind, which sends real requests
and asks whether their split is the configured one, is `kubelab.traffic_sample`.

Everything here is pure: objects in (plain dicts as the API server returns them), answers out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubelab.i18n import _
from kubelab.objects import selects

Json = dict[str, Any]

GROUP = "gateway.networking.k8s.io"
DEFAULT_PATH: Json = {"type": "PathPrefix", "value": "/"}
# Listener protocols an HTTPRoute may attach to, and the route kinds each admits by default.
HTTP_PROTOCOLS = ("HTTP", "HTTPS")
ERROR = "error (500)"  # the share of requests that reach no valid backend


def _meta(obj: Json, key: str, default: str = "") -> str:
    return str((obj.get("metadata") or {}).get(key) or default)


# ---------------------------------------------------------------------------------------------
# Hostnames


def host_matches(pattern: str, host: str) -> bool:
    """Tell whether `host` is matched by a hostname `pattern` ("*.example.com" needs one label)."""
    pattern, host = pattern.lower(), host.lower()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return pattern == host


def hostnames_intersect(listener: str | None, route: Iterable[str]) -> bool:
    """Tell whether a route's hostnames leave anything a listener's hostname accepts."""
    hosts = list(route)
    if not listener or not hosts:
        return True
    return any(
        host_matches(listener, h) or host_matches(h, listener) or _wildcards_overlap(listener, h)
        for h in hosts
    )


def _wildcards_overlap(a: str, b: str) -> bool:
    if a.startswith("*.") and b.startswith("*."):
        return a.endswith(b[1:]) or b.endswith(a[1:])
    return False


# ---------------------------------------------------------------------------------------------
# Attachment: which listeners of a Gateway admit a route


@dataclass(frozen=True)
class Attachment:
    """Whether a route attaches to a Gateway: the listeners that admit it, or why none does."""

    listeners: tuple[str, ...]
    reason: str  # empty when attached

    @property
    def attached(self) -> bool:
        """Tell whether at least one listener admits the route."""
        return bool(self.listeners)


def refers_to(route: Json, ref: Json, gateway: Json) -> bool:
    """Tell whether one parentRef of `route` names `gateway` (group, kind, namespace, name)."""
    route_ns = _meta(route, "namespace")
    return (
        (ref.get("group") or GROUP) == GROUP
        and (ref.get("kind") or "Gateway") == "Gateway"
        and (ref.get("namespace") or route_ns) == _meta(gateway, "namespace", route_ns)
        and ref.get("name") == _meta(gateway, "name")
    )


def _kind_allowed(listener: Json, kind: str) -> bool:
    kinds = (listener.get("allowedRoutes") or {}).get("kinds")
    if not kinds:  # the protocol's default: HTTPRoute for HTTP and HTTPS
        return listener.get("protocol") in HTTP_PROTOCOLS and kind == "HTTPRoute"
    return any(k.get("kind") == kind and (k.get("group") or GROUP) == GROUP for k in kinds)


def _namespace_allowed(
    listener: Json, gateway_ns: str, route_ns: str, route_ns_labels: Mapping[str, str] | None
) -> bool:
    namespaces = (listener.get("allowedRoutes") or {}).get("namespaces") or {}
    source = namespaces.get("from") or "Same"
    if source == "All":
        return True
    if source == "Same":
        return route_ns == gateway_ns
    if source == "Selector":
        return route_ns_labels is not None and selects(
            namespaces.get("selector") or {}, route_ns_labels
        )
    return False


def attachment(
    route: Json,
    gateway: Json | None,
    *,
    kind: str = "HTTPRoute",
    route_namespace_labels: Mapping[str, str] | None = None,
) -> Attachment:
    """Work out which listeners of `gateway` admit `route` through the parentRefs naming it."""
    if gateway is None:
        return Attachment((), _("the parent Gateway does not exist"))
    refs = [
        r for r in (route.get("spec") or {}).get("parentRefs") or [] if refers_to(route, r, gateway)
    ]
    if not refs:
        return Attachment(
            (), _("no parentRef names Gateway {gateway}").format(gateway=_meta(gateway, "name"))
        )
    route_ns = _meta(route, "namespace")
    gateway_ns = _meta(gateway, "namespace", route_ns)
    hosts = (route.get("spec") or {}).get("hostnames") or []
    listeners = (gateway.get("spec") or {}).get("listeners") or []
    admitted: list[str] = []
    reasons: list[str] = []
    for ref in refs:
        chosen = [
            lis
            for lis in listeners
            if ref.get("sectionName") in (None, lis.get("name"))
            and ref.get("port") in (None, lis.get("port"))
        ]
        if not chosen:
            wanted = [f"{k} {ref[k]}" for k in ("sectionName", "port") if ref.get(k) is not None]
            reasons.append(_("no listener has {wanted}").format(wanted=_(" and ").join(wanted)))
        for lis in chosen:
            name = str(lis.get("name"))
            if not _kind_allowed(lis, kind):
                reasons.append(
                    _("listener {name} ({protocol}) does not allow {kind}").format(
                        name=name, protocol=lis.get("protocol"), kind=kind
                    )
                )
            elif not _namespace_allowed(lis, gateway_ns, route_ns, route_namespace_labels):
                reasons.append(
                    _("listener {name} does not allow routes from namespace {namespace}").format(
                        name=name, namespace=route_ns
                    )
                )
            elif not hostnames_intersect(lis.get("hostname"), hosts):
                reasons.append(
                    _("listener {name} hostname {hostname} matches none of {hosts}").format(
                        name=name, hostname=lis.get("hostname"), hosts=hosts
                    )
                )
            elif name not in admitted:
                admitted.append(name)
    return Attachment(tuple(admitted), "" if admitted else "; ".join(reasons))


# ---------------------------------------------------------------------------------------------
# Backends


@dataclass(frozen=True)
class Backend:
    """One backendRef with its defaults filled in, and why it cannot serve (None if it can)."""

    name: str
    port: int | None
    weight: int
    namespace: str
    kind: str = "Service"
    group: str = ""
    problem: str | None = None

    @property
    def label(self) -> str:
        """Return "name:port" (with the namespace when it is not the route's)."""
        return f"{self.name}:{self.port}" if self.port is not None else self.name


Services = Mapping[str, Iterable[int]]  # Service name -> its ports, in the route's namespace


def backends(rule: Json, route_namespace: str, services: Services) -> list[Backend]:
    """Return a rule's backendRefs with defaults, each checked against the Services that exist."""
    found: list[Backend] = []
    for ref in rule.get("backendRefs") or []:
        kind, group = ref.get("kind") or "Service", ref.get("group") or ""
        ns = ref.get("namespace") or route_namespace
        port, name = ref.get("port"), str(ref.get("name"))
        weight = ref.get("weight")
        b = Backend(name, port, 1 if weight is None else int(weight), ns, kind, group)
        problem: str | None = None
        if (group, kind) != ("", "Service"):
            problem = _("{kind} is not a Service (InvalidKind)").format(kind=kind)
        elif ns != route_namespace:
            problem = _(
                "Service {namespace}/{name} is in another namespace and needs a ReferenceGrant"
            ).format(namespace=ns, name=name)
        elif port is None:
            problem = _("backendRef {name} has no port (required for a Service)").format(name=name)
        elif name not in services:
            problem = _("Service {name} does not exist (BackendNotFound)").format(name=name)
        elif port not in set(services[name]):
            problem = _("Service {name} has no port {port}").format(name=name, port=port)
        found.append(Backend(b.name, b.port, b.weight, b.namespace, b.kind, b.group, problem))
    return found


def split(found: list[Backend]) -> dict[str, float]:
    """Return the share of requests each backend gets; invalid backends' share is ERROR (500)."""
    total = sum(max(b.weight, 0) for b in found)
    if total == 0:
        return {ERROR: 1.0}  # no backendRefs, or every weight 0: the gateway answers 500
    shares: dict[str, float] = {}
    for b in found:
        if b.weight > 0:
            key = ERROR if b.problem else b.label
            shares[key] = shares.get(key, 0.0) + b.weight / total
    return shares


# ---------------------------------------------------------------------------------------------
# Matching a request


@dataclass(frozen=True)
class Request:
    """One HTTP request, as far as routing cares."""

    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "GET"
    host: str | None = None  # None: any host the route accepts
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """The rule a request lands on: which route, rule and match won."""

    route: Json
    rule_index: int
    match_index: int

    @property
    def rule(self) -> Json:
        """Return the winning rule."""
        rules: list[Json] = (self.route.get("spec") or {}).get("rules") or []
        return rules[self.rule_index]

    @property
    def where(self) -> str:
        """Return "route <name> rule <n>" (1-based, as people count)."""
        return _("HTTPRoute {route} rule {n}").format(
            route=_meta(self.route, "name"), n=self.rule_index + 1
        )


def path_matches(path_match: Json, path: str) -> bool:
    """Tell whether a request path satisfies one HTTPPathMatch (Exact, PathPrefix, RegEx)."""
    kind = path_match.get("type") or "PathPrefix"
    value = str(path_match.get("value") or "/")
    if kind == "Exact":
        return path == value
    if kind == "PathPrefix":  # element by element; a trailing "/" in the value is ignored
        prefix = value.rstrip("/")
        return prefix == "" or path == prefix or path.startswith(prefix + "/")
    if kind == "RegularExpression":  # implementation-specific; Envoy matches the whole path
        try:
            return re.fullmatch(value, path) is not None
        except re.error:
            return False
    return False


def _value_matches(m: Json, actual: str | None) -> bool:
    if actual is None:
        return False
    if (m.get("type") or "Exact") == "RegularExpression":
        try:
            return re.fullmatch(str(m.get("value", "")), actual) is not None
        except re.error:
            return False
    return actual == m.get("value")


def match_applies(match: Json, request: Request) -> bool:
    """Tell whether one HTTPRouteMatch accepts the request (path, method, headers, query: ANDed)."""
    if not path_matches(match.get("path") or DEFAULT_PATH, request.path):
        return False
    if match.get("method") and match["method"] != request.method:
        return False
    headers = {k.lower(): v for k, v in request.headers.items()}  # names are case-insensitive
    for h in match.get("headers") or []:
        if not _value_matches(h, headers.get(str(h.get("name", "")).lower())):
            return False
    return all(
        _value_matches(q, request.query.get(q.get("name", "")))
        for q in match.get("queryParams") or []
    )


def _host_rank(route: Json, host: str | None) -> tuple[int, int] | None:
    """Rank how specifically a route's hostnames match `host`; None when they do not."""
    hosts = (route.get("spec") or {}).get("hostnames") or []
    if host is None or not hosts:
        return (0, 0)
    matching = [h for h in hosts if host_matches(h, host)]
    if not matching:
        return None
    exact = max((len(h) for h in matching if not h.startswith("*")), default=0)
    return (exact, max(len(h) for h in matching))


def _rank(match: Json) -> tuple[int, int, int, int, int]:
    path = match.get("path") or DEFAULT_PATH
    kind = path.get("type") or "PathPrefix"
    exact = 1 if kind == "Exact" else 0
    prefix = len(str(path.get("value") or "/")) if kind == "PathPrefix" else -1
    return (
        exact,
        prefix if not exact else 0,
        1 if match.get("method") else 0,
        len(match.get("headers") or []),
        len(match.get("queryParams") or []),
    )


def resolve(routes: Iterable[Json], request: Request) -> Match | None:
    """Return the rule that wins the request among `routes` (all attached to one listener)."""
    candidates: list[tuple[tuple[Any, ...], Match]] = []
    for route in routes:
        host_rank = _host_rank(route, request.host)
        if host_rank is None:
            continue
        rules = (route.get("spec") or {}).get("rules") or []
        for ri, rule in enumerate(rules):
            matches = rule.get("matches") or [{"path": DEFAULT_PATH}]
            for mi, m in enumerate(matches):
                if not match_applies(m, request):
                    continue
                better = (*host_rank, *_rank(m))
                # Larger is better for the ranks; ties go to the oldest route, then its name.
                key = (
                    tuple(-x for x in better),
                    _meta(route, "creationTimestamp"),
                    f"{_meta(route, 'namespace')}/{_meta(route, 'name')}",
                    ri,
                    mi,
                )
                candidates.append((key, Match(route, ri, mi)))
    if not candidates:
        return None
    return min(candidates, key=lambda c: c[0])[1]


def route_split(routes: Iterable[Json], request: Request, services: Services) -> dict[str, float]:
    """Return where a request goes: backend label -> share; {} when no rule matches (404)."""
    found = resolve(routes, request)
    if found is None:
        return {}
    return split(backends(found.rule, _meta(found.route, "namespace"), services))


def describe_split(shares: Mapping[str, float]) -> str:
    """Return "demo-web:80 80%, demo-web-v2:80 20%" (or "no rule matches (404)")."""
    if not shares:
        return _("no rule matches (404)")
    return ", ".join(
        f"{k} {v * 100:.0f}%" for k, v in sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def same_split(a: Mapping[str, float], b: Mapping[str, float], *, tol: float = 1e-9) -> bool:
    """Tell whether two splits send the same shares to the same backends."""
    keys = set(a) | set(b)
    return all(abs(a.get(k, 0.0) - b.get(k, 0.0)) <= tol for k in keys)


# ---------------------------------------------------------------------------------------------
# Status written by a real Gateway controller (kind)


def condition(conditions: Iterable[Json] | None, kind: str) -> str | None:
    """Return the status ("True", "False", "Unknown") of condition `kind`, or None if absent."""
    for c in conditions or []:
        if c.get("type") == kind:
            return str(c.get("status"))
    return None


def parent_conditions(route: Json, gateway: str) -> list[Json]:
    """Return the conditions a controller reported for the route under parent `gateway`."""
    for parent in (route.get("status") or {}).get("parents") or []:
        if (parent.get("parentRef") or {}).get("name") == gateway:
            return list(parent.get("conditions") or [])
    return []
