"""Checks for lab 05: an 80/20 canary of demo-web behind a Gateway API Gateway and HTTPRoute.

The sim cluster stores Gateways and HTTPRoutes but has no Gateway controller, so these checks
resolve the references themselves with `kubelab.gateway_routes` (does a listener admit the route,
which rule wins a request, which Services and ports the backendRefs reach). On kind, where Traefik
serves the class, they also require the controller's conditions and send real requests
through the gateway: the 80/20 split is tested with a binomial tolerance, the header rule exactly.
No check depends on the image's name: only the two Deployments' tags must differ.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping

from kubelab import gateway_routes as gr
from kubelab import traffic_sample as traffic
from kubelab.api import (
    DEPLOYMENTS,
    ENDPOINTSLICES,
    GATEWAYCLASSES,
    GATEWAYS,
    HTTPROUTES,
    NAMESPACES,
    PODS,
    SERVICES,
    Json,
)
from kubelab.grading import Checks, Context, Verdict
from kubelab.i18n import _
from kubelab.objects import dig, image_tag, labels_query, port_number, ready_endpoints

checks = Checks("05-gateway-canary")

V1, V2 = "demo-web", "demo-web-v2"
GATEWAY, ROUTE = "main-gw", "web-route"
PORT, TARGET_PORT = 80, 8080
WEIGHTS = {V1: 80, V2: 20}
CANARY_HEADER = ("x-canary", "true")
API_PATHS = ("/api", "/api/orders/42")  # "under /api": the prefix itself and a path below it
EXPECTED = {f"{V1}:{PORT}": 0.8, f"{V2}:{PORT}": 0.2}
CANARY_ONLY = {f"{V2}:{PORT}": 1.0}
SPLIT_REQUESTS = 400  # enough to tell 80/20 from 50/50 or 100/0 at once (see traffic_sample.Z)
HEADER_REQUESTS = 40
DEFAULT_HOST = "demo.kubelab.local"  # any name will do when neither route nor listener names one

DOCS_SERVICE = "https://kubernetes.io/docs/concepts/services-networking/service/"
DOCS_GATEWAY = "https://kubernetes.io/docs/concepts/services-networking/gateway/"
DOCS_SPLIT = "https://gateway-api.sigs.k8s.io/guides/traffic-splitting/"
DOCS_MATCH = "https://gateway-api.sigs.k8s.io/guides/http-routing/"


def _available(dep: Json) -> bool:
    st, want = dep.get("status") or {}, dig(dep, "spec", "replicas", default=1)
    return bool(
        want >= 1
        and st.get("observedGeneration", 0) >= dig(dep, "metadata", "generation", default=0)
        and st.get("updatedReplicas", 0) == want
        and st.get("availableReplicas", 0) == want
    )


def _pods_of(ctx: Context, dep: Json) -> set[str]:
    """Return the live pods the Deployment's selector picks (its own pods, by labels)."""
    query = labels_query(dig(dep, "spec", "selector", "matchLabels", default={}) or {})
    pods = ctx.list(PODS, labels=query) if query else []
    return {p["metadata"]["name"] for p in pods if not dig(p, "metadata", "deletionTimestamp")}


def _ready_endpoints(ctx: Context, service: str) -> set[str]:
    return ready_endpoints(ctx.list(ENDPOINTSLICES, labels=f"kubernetes.io/service-name={service}"))


def _container_tag(dep: Json) -> str:
    containers = dig(dep, "spec", "template", "spec", "containers", default=[]) or []
    return image_tag(str(containers[0].get("image", ""))) if containers else ""


def _wait_available(ctx: Context, name: str) -> Json:
    def probe() -> Json:
        return ctx.get(DEPLOYMENTS, name) or {}

    return ctx.wait(
        probe, _available, what=_("Deployment {name}").format(name=name), stuck=ctx.stuck_in(name)
    )


def _wait_endpoints(ctx: Context, name: str, pods: set[str]) -> set[str]:
    def probe() -> set[str]:
        return _ready_endpoints(ctx, name)

    return ctx.wait(
        probe,
        lambda ready: ready == pods,
        what=_("EndpointSlices of Service {name}").format(name=name),
    )


@checks.check("backends", docs=DOCS_SERVICE)
def backends(ctx: Context) -> Verdict:
    """Deployments and Services demo-web (v1) and demo-web-v2: available, 80→8080, each Service
    selecting exactly its own Deployment's pods, every one of them a ready endpoint."""
    v = Verdict()
    deps = {name: ctx.need(DEPLOYMENTS, name) for name in (V1, V2)}
    svcs = {name: ctx.need(SERVICES, name) for name in (V1, V2)}
    for name in (V1, V2):
        dep = deps[name]
        if not _available(dep):
            dep = _wait_available(ctx, name)
            deps[name] = dep
        st = dep.get("status") or {}
        want = dig(dep, "spec", "replicas", default=1)
        v.expect(
            _available(dep),
            _(
                "Deployment {name}: expected every replica available, found {available}/{want}"
            ).format(name=name, available=st.get("availableReplicas", 0), want=want),
            _(
                "`kubectl rollout status deployment/{name} -n {namespace}`; describe a pod "
                "that is not Ready to see why."
            ).format(name=name, namespace=ctx.namespace),
        )
    tags = {name: _container_tag(deps[name]) for name in (V1, V2)}
    v.expect(
        tags[V1] != tags[V2],
        _(
            "Deployments {v1} and {v2} run the same image tag {tag}: a canary needs a new version"
        ).format(v1=V1, v2=V2, tag=repr(tags[V1])),
        _("Give {v2}'s container the next version's tag (e.g. v2), and keep {v1} on v1.").format(
            v1=V1, v2=V2
        ),
    )
    for name in (V1, V2):
        svc, dep = svcs[name], deps[name]
        containers = dig(dep, "spec", "template", "spec", "containers", default=[]) or []
        ports = dig(svc, "spec", "ports", default=[]) or []
        seen = ", ".join(f"{p.get('port')}→{p.get('targetPort')}" for p in ports) or _("none")
        v.expect(
            any(
                p.get("port") == PORT
                and port_number(p.get("targetPort", p.get("port")), containers) == TARGET_PORT
                for p in ports
            ),
            _("Service {name} ports: expected {port}→{target}, found {seen}").format(
                name=name, port=PORT, target=TARGET_PORT, seen=seen
            ),
            _(
                "Give Service {name} a port {port} whose targetPort is the container's {target}: "
                "the HTTPRoute sends to port {port} of the Service."
            ).format(name=name, port=PORT, target=TARGET_PORT),
        )
        selector = dig(svc, "spec", "selector", default={}) or {}
        theirs = _pods_of(ctx, dep)
        picked = (
            {p["metadata"]["name"] for p in ctx.list(PODS, labels=labels_query(selector))}
            if selector
            else set()
        )
        exact = v.expect(
            bool(selector) and bool(theirs) and picked == theirs,
            _(
                "Service {name} selector {selector} picks {picked} pods: "
                "{own} of Deployment {name}'s {theirs}, {others} of others"
            ).format(
                name=name,
                selector=selector or "{}",
                picked=len(picked),
                own=len(picked & theirs),
                theirs=len(theirs),
                others=len(picked - theirs),
            ),
            _(
                "Make Service {name} select only its own version's pods (e.g. app: demo-web plus "
                "a version label): a Service picking both versions mixes them behind either name."
            ).format(name=name),
        )
        want = len(theirs)
        ready = _ready_endpoints(ctx, name)
        if exact and ready != theirs:  # only a right selector can converge
            ready = _wait_endpoints(ctx, name, theirs)
        v.expect(
            exact and bool(ready) and ready == theirs,
            _(
                "EndpointSlices of Service {name}: expected {want} ready endpoints (its pods), "
                "found {found}"
            ).format(name=name, want=want, found=len(ready)),
            _(
                "`kubectl get endpointslices -l kubernetes.io/service-name={name} -n "
                "{namespace}`: endpoints appear when the selector matches Ready pods."
            ).format(name=name, namespace=ctx.namespace),
        )
    return v.ok(
        _(
            "{v1} ({tag1}) and {v2} ({tag2}): available, Services {port}→{target} "
            "with their own ready endpoints"
        ).format(v1=V1, tag1=tags[V1], v2=V2, tag2=tags[V2], port=PORT, target=TARGET_PORT)
    )


def _http_listeners(gw: Json) -> list[Json]:
    return [
        lis
        for lis in dig(gw, "spec", "listeners", default=[]) or []
        if lis.get("protocol") == "HTTP" and lis.get("port") == PORT
    ]


@checks.check("gateway", docs=DOCS_GATEWAY)
def gateway(ctx: Context) -> Verdict:
    """Gateway main-gw: a GatewayClass the cluster has, an HTTP listener on port 80; on kind the
    controller has also accepted and programmed it."""
    v = Verdict()
    gw = ctx.need(GATEWAYS, GATEWAY)
    cls = dig(gw, "spec", "gatewayClassName", default="")
    known = sorted(c["metadata"]["name"] for c in ctx.api.list(GATEWAYCLASSES))
    v.expect(
        cls in known,
        _(
            "Gateway {gateway} spec.gatewayClassName: {cls} is not a GatewayClass of this cluster "
            "(it has: {known})"
        ).format(gateway=GATEWAY, cls=repr(cls), known=", ".join(known) or _("none")),
        _("`kubectl get gatewayclass` lists the classes the cluster provides; use one of them."),
    )
    listeners = dig(gw, "spec", "listeners", default=[]) or []
    seen = ", ".join(f"{x.get('name')} {x.get('protocol')}/{x.get('port')}" for x in listeners)
    v.expect(
        bool(_http_listeners(gw)),
        _(
            "Gateway {gateway} listeners: expected one with protocol HTTP on port {port}, found "
            "{seen}"
        ).format(gateway=GATEWAY, port=PORT, seen=seen or _("none")),
        _(
            "Add a listener with protocol HTTP and port {port}; HTTPS would also need a TLS "
            "certificate Secret."
        ).format(port=PORT),
    )
    if ctx.substrate == "kind":
        conds = dig(gw, "status", "conditions", default=[])
        if cls in known and _http_listeners(gw):
            gw = ctx.wait(
                lambda: ctx.get(GATEWAYS, GATEWAY) or {},
                lambda g: gr.condition(dig(g, "status", "conditions"), "Programmed") == "True",
                what=_("Gateway {gateway} to be programmed").format(gateway=GATEWAY),
            )
            conds = dig(gw, "status", "conditions", default=[])
        state = {k: gr.condition(conds, k) for k in ("Accepted", "Programmed")}
        v.expect(
            all(s == "True" for s in state.values()),
            _(
                "Gateway {gateway} status: expected Accepted and Programmed True, found {found}"
            ).format(
                gateway=GATEWAY,
                found=", ".join(f"{k} {s or _('absent')}" for k, s in state.items()),
            ),
            _(
                "`kubectl describe gateway {gateway} -n {namespace}`: the conditions' messages "
                "say what the controller refused."
            ).format(gateway=GATEWAY, namespace=ctx.namespace),
        )
    done = (
        _("Gateway {gateway}: class {cls}, HTTP listener on port {port}")
        if ctx.substrate == "kind"
        else _(
            "Gateway {gateway}: class {cls}, HTTP listener on port {port} "
            "(no Gateway controller on sim: spec checked)"
        )
    )
    return v.ok(done.format(gateway=GATEWAY, cls=cls, port=PORT))


def _namespace_labels(ctx: Context) -> dict[str, str] | None:
    try:
        ns = ctx.api.get(NAMESPACES, ctx.namespace)
    except Exception:  # participants may not read Namespaces; Selector listeners then fail
        return None
    return dict(dig(ns, "metadata", "labels", default={}) or {})


class _Routing:
    """The lab's Gateway and the routes attached to it, resolved once per check."""

    def __init__(self, ctx: Context) -> None:
        self.route = ctx.need(HTTPROUTES, ROUTE)
        self.gateway = ctx.get(GATEWAYS, GATEWAY)
        labels = _namespace_labels(ctx)
        self.attachment = gr.attachment(self.route, self.gateway, route_namespace_labels=labels)
        # Every route attached to main-gw competes for the same requests, not just web-route.
        self.routes = [
            r
            for r in ctx.list(HTTPROUTES)
            if gr.attachment(r, self.gateway, route_namespace_labels=labels).attached
        ] or [self.route]
        self.services = {
            s["metadata"]["name"]: [p.get("port") for p in dig(s, "spec", "ports", default=[])]
            for s in ctx.list(SERVICES)
        }

    def split(self, path: str, headers: Mapping[str, str] | None = None) -> dict[str, float]:
        request = gr.Request(path, headers or {})
        return gr.route_split(self.routes, request, self.services)

    def why(self, path: str, headers: Mapping[str, str] | None = None) -> str:
        """Say which rule wins the request and what is wrong with its backends."""
        found = gr.resolve(self.routes, gr.Request(path, headers or {}))
        if found is None:
            return ""
        ns = dig(found.route, "metadata", "namespace", default="")
        problems = [b.problem for b in gr.backends(found.rule, ns, self.services) if b.problem]
        if problems:
            return _(" (by {rule}; {problems})").format(
                rule=found.where, problems="; ".join(problems)
            )
        return _(" (by {rule})").format(rule=found.where)


def _host(route: Json, gw: Json | None) -> str:
    """Return a Host header the route and the listener both accept."""
    for h in dig(route, "spec", "hostnames", default=[]) or []:
        if not h.startswith("*"):
            return str(h)
    for lis in _http_listeners(gw or {}):
        h = lis.get("hostname")
        if h:
            return "demo" + h[1:] if h.startswith("*") else str(h)
    return DEFAULT_HOST


def fetch_version(url: str, headers: Mapping[str, str]) -> str | None:
    """GET `url` and return the demo-web version that answered (X-Demo-Version), None on error."""
    req = urllib.request.Request(url, headers=dict(headers))
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:
            return resp.headers.get("X-Demo-Version") if resp.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


FETCH: traffic.Fetch = fetch_version  # tests replace it to drive the kind branch without a cluster


def _route_conditions(ctx: Context, route: Json, v: Verdict, ready: bool) -> bool:
    """kind: require the controller's Accepted and ResolvedRefs on the route's main-gw parent."""

    def state(r: Json) -> dict[str, str | None]:
        conds = gr.parent_conditions(r, GATEWAY)
        return {k: gr.condition(conds, k) for k in ("Accepted", "ResolvedRefs")}

    if ready:
        route = ctx.wait(
            lambda: ctx.get(HTTPROUTES, ROUTE) or {},
            lambda r: all(s == "True" for s in state(r).values()),
            what=_("HTTPRoute {route} to be accepted").format(route=ROUTE),
        )
    found = state(route)
    return v.expect(
        all(s == "True" for s in found.values()),
        _(
            "HTTPRoute {route} status.parents[{gateway}]: expected Accepted and ResolvedRefs True, "
            "found {found}"
        ).format(
            route=ROUTE,
            gateway=GATEWAY,
            found=", ".join(f"{k} {s or _('absent')}" for k, s in found.items()),
        ),
        _(
            "`kubectl describe httproute {route} -n {namespace}`: the conditions' reasons name "
            "what the controller could not attach or resolve."
        ).format(route=ROUTE, namespace=ctx.namespace),
    )


def sample(ctx: Context, routing: _Routing, headers: Mapping[str, str], n: int) -> dict[str, int]:
    """kind: send n requests under /api through the gateway; count the versions that answer."""
    url = f"{ctx.gateway_url}{API_PATHS[1]}"
    full = {"Host": _host(routing.route, routing.gateway), **headers}
    # Traefik may lag a moment behind the conditions: wait for a first answer before counting.
    ctx.wait(lambda: FETCH(url, full), lambda got: got is not None, what=_("the gateway to answer"))
    return dict(traffic.sample_versions(FETCH, url, full, n))


@checks.check("canary-route", docs=DOCS_SPLIT)
def canary_route(ctx: Context) -> Verdict:
    """HTTPRoute web-route attaches to main-gw and sends requests under /api 80/20 to demo-web:80
    and demo-web-v2:80; on kind the controller agrees and real traffic splits within tolerance."""
    v = Verdict()
    routing = _Routing(ctx)
    attached = v.expect(
        routing.attachment.attached,
        _("HTTPRoute {route} does not attach to Gateway {gateway}: {reason}").format(
            route=ROUTE, gateway=GATEWAY, reason=routing.attachment.reason
        ),
        _(
            "List Gateway {gateway} in spec.parentRefs; a sectionName or port there must name one "
            "of its listeners, and that listener must allow routes from this namespace."
        ).format(gateway=GATEWAY),
    )
    wrong = {p: routing.split(p) for p in API_PATHS}
    wrong = {p: s for p, s in wrong.items() if not gr.same_split(s, EXPECTED)}
    split_ok = v.expect(
        not wrong,
        _("{found}, expected {expected}").format(
            found="; ".join(
                _("GET {path} goes to {split}{why}").format(
                    path=p, split=gr.describe_split(s), why=routing.why(p)
                )
                for p, s in wrong.items()
            ),
            expected=gr.describe_split(EXPECTED),
        ),
        _(
            "Route PathPrefix /api to backendRefs {v1} and {v2}, both port {port}, with weights "
            "{w1} and {w2}: a weight is a share of the rule's traffic."
        ).format(v1=V1, v2=V2, port=PORT, w1=WEIGHTS[V1], w2=WEIGHTS[V2]),
    )
    if ctx.substrate == "kind":
        resolved = _route_conditions(ctx, routing.route, v, attached and split_ok)
        counts = sample(ctx, routing, {}, SPLIT_REQUESTS) if resolved and split_ok else {}
        n = sum(counts.values())
        got = counts.get("v2", 0)
        p = EXPECTED[f"{V2}:{PORT}"]
        v.expect(
            bool(counts) and traffic.within_tolerance(got, n, p) and counts.get("error", 0) == 0,
            _(
                "traffic through the gateway: {got} of {n} requests answered by v2 "
                "(expected {expected} ± {tolerance}); all answers: {counts}"
            ).format(
                got=got,
                n=n,
                expected=f"{n * p:.0f}",
                tolerance=f"{traffic.tolerance(n, p):.0f}",
                counts=counts,
            )
            if counts
            else _("traffic through the gateway: not sent (the route is not resolved yet)"),
            _(
                "Each {v2} pod must report version v2 and each {v1} pod v1 (check the image tags); "
                "try `curl -H 'Host: {host}' {url}/api`."
            ).format(v1=V1, v2=V2, host=_host(routing.route, routing.gateway), url=ctx.gateway_url),
        )
    done = (
        _(
            "HTTPRoute {route} on {gateway}: /api → {split}; {requests} requests split within "
            "tolerance"
        )
        if ctx.substrate == "kind"
        else _(
            "HTTPRoute {route} on {gateway}: /api → {split} (resolved by the grader: sim has no "
            "Gateway controller)"
        )
    )
    return v.ok(
        done.format(
            route=ROUTE,
            gateway=GATEWAY,
            split=gr.describe_split(EXPECTED),
            requests=SPLIT_REQUESTS,
        )
    )


@checks.check("header-route", docs=DOCS_MATCH)
def header_route(ctx: Context) -> Verdict:
    """Requests under /api with x-canary: true go to demo-web-v2 only; other values do not; on
    kind every such real request is answered by v2."""
    v = Verdict()
    routing = _Routing(ctx)
    name, value = CANARY_HEADER
    canary = {name: value}
    wrong = {p: routing.split(p, canary) for p in API_PATHS}
    wrong = {p: s for p, s in wrong.items() if not gr.same_split(s, CANARY_ONLY)}
    only_v2 = v.expect(
        not wrong,
        _("{found}, expected {expected}").format(
            found="; ".join(
                _("GET {path} with {header}: {value} goes to {split}{why}").format(
                    path=p,
                    header=name,
                    value=value,
                    split=gr.describe_split(s),
                    why=routing.why(p, canary),
                )
                for p, s in wrong.items()
            ),
            expected=gr.describe_split(CANARY_ONLY),
        ),
        _(
            "Add a rule that matches PathPrefix /api AND header {header}: {value} and sends only "
            "to {v2} port {port}; with the path in the same match it outranks the plain /api rule "
            "(more header matches win once paths tie)."
        ).format(header=name, value=repr(value), v2=V2, port=PORT),
    )
    if only_v2 or any(
        m.get("headers")
        for r in routing.routes
        for rule in dig(r, "spec", "rules", default=[]) or []
        for m in rule.get("matches") or []
    ):  # once a header rule exists, it must not catch other values too
        others = {
            other: routing.split(API_PATHS[1], {name: other}) for other in ("false", "yes", "")
        }
        leaks = [o for o, s in others.items() if gr.same_split(s, CANARY_ONLY)]
        v.expect(
            not leaks,
            _("GET {path} with {header}: {value} also goes only to {v2}").format(
                path=API_PATHS[1], header=name, value=repr(leaks[0]), v2=V2
            )
            if leaks
            else "",
            _(
                "Match the header exactly (type Exact, value {value}): only an explicit "
                "opt-in should reach the canary."
            ).format(value=repr(value)),
        )
    if ctx.substrate == "kind":
        counts = sample(ctx, routing, canary, HEADER_REQUESTS) if only_v2 else {}
        v.expect(
            bool(counts) and counts.get("v2", 0) == sum(counts.values()),
            _(
                "traffic with {header}: {value}: answers {counts}, expected every one from v2"
            ).format(header=name, value=value, counts=counts)
            if counts
            else _(
                "traffic with {header}: {value}: not sent (the rule does not resolve to {v2})"
            ).format(header=name, value=value, v2=V2),
            _(
                "`curl -H '{header}: {value}' -H 'Host: {host}' {url}/api` should always name v2."
            ).format(
                header=name,
                value=value,
                host=_host(routing.route, routing.gateway),
                url=ctx.gateway_url,
            ),
        )
    return v.ok(
        _("/api with {header}: {value} → {v2} only; other values take the 80/20 split").format(
            header=name, value=value, v2=V2
        )
    )
