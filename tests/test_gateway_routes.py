"""The Gateway API resolver (no cluster): attachment, backendRef defaults, match precedence,
and (kubelab.traffic_sample) the binomial tolerance of the traffic test."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kubelab import gateway_routes as gr
from kubelab import traffic_sample as traffic
from kubelab.graders.lab05_gateway_canary import fetch_version

NS = "lab-05"
SERVICES = {"demo-web": [80], "demo-web-v2": [80, 9090]}


def gateway(*listeners: dict[str, Any], ns: str = NS) -> dict[str, Any]:
    return {
        "metadata": {"name": "main-gw", "namespace": ns},
        "spec": {"gatewayClassName": "kubelab", "listeners": list(listeners)},
    }


HTTP80 = {"name": "http", "protocol": "HTTP", "port": 80}


def route(
    *rules: dict[str, Any],
    name: str = "web-route",
    parents: list[dict[str, Any]] | None = None,
    hostnames: list[str] | None = None,
    created: str = "2026-01-01T00:00:00Z",
    ns: str = NS,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "parentRefs": [{"name": "main-gw"}] if parents is None else parents,
        "rules": list(rules),
    }
    if hostnames is not None:
        spec["hostnames"] = hostnames
    return {
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
        "spec": spec,
    }


def prefix(value: str, **extra: Any) -> dict[str, Any]:
    return {"path": {"type": "PathPrefix", "value": value}, **extra}


def to(*refs: tuple[str, int, int | None], matches: list[dict[str, Any]] | None = None) -> Any:
    backend_refs = []
    for name, port, weight in refs:
        ref: dict[str, Any] = {"name": name, "port": port}
        if weight is not None:
            ref["weight"] = weight
        backend_refs.append(ref)
    rule: dict[str, Any] = {"backendRefs": backend_refs}
    if matches is not None:
        rule["matches"] = matches
    return rule


CANARY = to(("demo-web", 80, 80), ("demo-web-v2", 80, 20), matches=[prefix("/api")])
HEADER = to(
    ("demo-web-v2", 80, None),
    matches=[prefix("/api", headers=[{"name": "x-canary", "value": "true"}])],
)


# --- attachment -------------------------------------------------------------------------------


def test_a_plain_parent_ref_attaches_to_every_listener_that_admits_it() -> None:
    gw = gateway(HTTP80, {"name": "alt", "protocol": "HTTP", "port": 8080})
    found = gr.attachment(route(CANARY), gw)
    assert found.attached and found.listeners == ("http", "alt") and found.reason == ""


@pytest.mark.parametrize(
    ("ref", "listeners"),
    [
        ({"name": "main-gw", "sectionName": "alt"}, ("alt",)),
        ({"name": "main-gw", "port": 80}, ("http",)),
        ({"name": "main-gw", "sectionName": "http", "port": 8080}, ()),
        ({"name": "main-gw", "sectionName": "nope"}, ()),
        ({"name": "other-gw"}, ()),
        ({"name": "main-gw", "namespace": "elsewhere"}, ()),
        ({"name": "main-gw", "kind": "Service", "group": ""}, ()),
    ],
)
def test_section_name_port_and_identity_of_the_parent_ref(
    ref: dict[str, Any], listeners: tuple[str, ...]
) -> None:
    gw = gateway(HTTP80, {"name": "alt", "protocol": "HTTP", "port": 8080})
    found = gr.attachment(route(CANARY, parents=[ref]), gw)
    assert found.listeners == listeners
    assert found.attached == bool(listeners)
    if not listeners:
        assert found.reason


def test_a_missing_gateway_or_no_parent_refs_means_not_attached() -> None:
    assert gr.attachment(route(CANARY), None).reason == "the parent Gateway does not exist"
    assert "no parentRef" in gr.attachment(route(CANARY, parents=[]), gateway(HTTP80)).reason


def test_listeners_admit_their_own_namespace_by_default() -> None:
    other = route(CANARY, ns="team-a", parents=[{"name": "main-gw", "namespace": NS}])
    found = gr.attachment(other, gateway(HTTP80))
    assert not found.attached and "namespace team-a" in found.reason
    every = dict(HTTP80, allowedRoutes={"namespaces": {"from": "All"}})
    assert gr.attachment(other, gateway(every)).attached


def test_a_selector_listener_admits_namespaces_by_label() -> None:
    selector = {
        "matchLabels": {"team": "a"},
        "matchExpressions": [{"key": "env", "operator": "Exists"}],
    }
    listener = dict(
        HTTP80, allowedRoutes={"namespaces": {"from": "Selector", "selector": selector}}
    )
    other = route(CANARY, ns="team-a", parents=[{"name": "main-gw", "namespace": NS}])
    gw = gateway(listener)
    assert gr.attachment(other, gw, route_namespace_labels={"team": "a", "env": "x"}).attached
    assert not gr.attachment(other, gw, route_namespace_labels={"team": "a"}).attached
    assert not gr.attachment(other, gw, route_namespace_labels={"team": "b", "env": "x"}).attached
    assert not gr.attachment(other, gw).attached  # labels unknown: cannot be admitted


def test_a_selector_with_an_unknown_operator_admits_no_namespace() -> None:
    # The same matcher as NetworkPolicy's (kubelab.objects.selects): an operator the API server
    # would reject selects nothing, where it used to be skipped and so admitted every namespace.
    selector = {"matchExpressions": [{"key": "team", "operator": "Equals", "values": ["a"]}]}
    listener = dict(
        HTTP80, allowedRoutes={"namespaces": {"from": "Selector", "selector": selector}}
    )
    other = route(CANARY, ns="team-a", parents=[{"name": "main-gw", "namespace": NS}])
    assert not gr.attachment(
        other, gateway(listener), route_namespace_labels={"team": "a"}
    ).attached


def test_kinds_and_protocols() -> None:
    tcp = {"name": "tcp", "protocol": "TCP", "port": 9000}
    assert not gr.attachment(route(CANARY), gateway(tcp)).attached
    https = {"name": "https", "protocol": "HTTPS", "port": 443}
    assert gr.attachment(route(CANARY), gateway(https)).attached
    grpc_only = dict(HTTP80, allowedRoutes={"kinds": [{"kind": "GRPCRoute"}]})
    found = gr.attachment(route(CANARY), gateway(grpc_only))
    assert not found.attached and "does not allow HTTPRoute" in found.reason


@pytest.mark.parametrize(
    ("listener", "hosts", "ok"),
    [
        (None, ["a.example.com"], True),
        ("a.example.com", [], True),
        ("a.example.com", ["a.example.com"], True),
        ("*.example.com", ["a.example.com"], True),
        ("*.example.com", ["example.com"], False),
        ("a.example.com", ["*.example.com"], True),
        ("*.example.com", ["*.b.example.com"], True),
        ("a.example.com", ["b.example.com", "c.example.com"], False),
        ("A.Example.com", ["a.example.COM"], True),
    ],
)
def test_hostnames_intersect(listener: str | None, hosts: list[str], ok: bool) -> None:
    assert gr.hostnames_intersect(listener, hosts) is ok
    gw = gateway(dict(HTTP80, hostname=listener) if listener else HTTP80)
    assert gr.attachment(route(CANARY, hostnames=hosts), gw).attached is ok


# --- backends ---------------------------------------------------------------------------------


def test_backend_ref_defaults_and_resolution() -> None:
    rule = {
        "backendRefs": [
            {"name": "demo-web", "port": 80},  # weight 1, kind Service, the route's namespace
            {"name": "demo-web-v2", "port": 8080, "weight": 3},
            {"name": "gone", "port": 80},
            {"name": "demo-web", "port": 80, "namespace": "other"},
            {"name": "bucket", "kind": "Bucket", "group": "example.com"},
            {"name": "demo-web"},
        ]
    }
    found = gr.backends(rule, NS, SERVICES)
    assert [(b.weight, b.kind, b.namespace) for b in found[:1]] == [(1, "Service", NS)]
    assert found[0].problem is None
    problems = [b.problem or "" for b in found[1:]]
    assert "has no port 8080" in problems[0]
    assert "does not exist" in problems[1]
    assert "ReferenceGrant" in problems[2]
    assert "InvalidKind" in problems[3]
    assert "no port" in problems[4]


def test_split_follows_weights_and_sends_invalid_shares_to_500() -> None:
    ok = gr.backends(CANARY, NS, SERVICES)
    assert gr.split(ok) == {"demo-web:80": 0.8, "demo-web-v2:80": 0.2}
    broken = to(("demo-web", 80, 80), ("demo-web-v3", 80, 20))
    assert gr.split(gr.backends(broken, NS, SERVICES)) == {"demo-web:80": 0.8, gr.ERROR: 0.2}
    zero = to(("demo-web", 80, 0), ("demo-web-v2", 80, 1))
    assert gr.split(gr.backends(zero, NS, SERVICES)) == {"demo-web-v2:80": 1.0}
    assert gr.split(gr.backends(to(("demo-web", 80, 0)), NS, SERVICES)) == {gr.ERROR: 1.0}
    assert gr.split([]) == {gr.ERROR: 1.0}
    same = to(("demo-web", 80, 4), ("demo-web-v2", 80, 1))  # 4:1 is 80/20 too
    assert gr.same_split(gr.split(gr.backends(same, NS, SERVICES)), gr.split(ok))


# --- matching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match", "path", "ok"),
    [
        ({"type": "PathPrefix", "value": "/api"}, "/api", True),
        ({"type": "PathPrefix", "value": "/api"}, "/api/", True),
        ({"type": "PathPrefix", "value": "/api"}, "/api/orders/1", True),
        ({"type": "PathPrefix", "value": "/api"}, "/apix", False),
        ({"type": "PathPrefix", "value": "/api/"}, "/api", True),  # trailing "/" ignored
        ({"type": "PathPrefix", "value": "/"}, "/anything", True),
        ({"type": "Exact", "value": "/api"}, "/api", True),
        ({"type": "Exact", "value": "/api"}, "/api/orders", False),
        ({"type": "RegularExpression", "value": "/api/v[0-9]+"}, "/api/v2", True),
        ({"type": "RegularExpression", "value": "/api/v[0-9]+"}, "/api/v2/x", False),
        ({"type": "RegularExpression", "value": "("}, "/", False),
    ],
)
def test_path_matches(match: dict[str, str], path: str, ok: bool) -> None:
    assert gr.path_matches(match, path) is ok


def where(routes: list[dict[str, Any]], path: str, **headers: str) -> dict[str, float]:
    return gr.route_split(routes, gr.Request(path, headers), SERVICES)


def test_the_header_rule_outranks_the_plain_prefix_rule_in_either_order() -> None:
    for rules in ((HEADER, CANARY), (CANARY, HEADER)):
        routes = [route(*rules)]
        assert where(routes, "/api/x", **{"X-Canary": "true"}) == {"demo-web-v2:80": 1.0}
        assert where(routes, "/api/x", **{"x-canary": "TRUE"}) == {
            "demo-web:80": 0.8,
            "demo-web-v2:80": 0.2,
        }
        assert where(routes, "/other") == {}


def test_a_longer_prefix_beats_more_headers() -> None:
    header_everywhere = to(
        ("demo-web-v2", 80, None),
        matches=[prefix("/", headers=[{"name": "x-canary", "value": "true"}])],
    )
    routes = [route(header_everywhere, CANARY)]
    assert where(routes, "/api/x", **{"x-canary": "true"}) == {
        "demo-web:80": 0.8,
        "demo-web-v2:80": 0.2,
    }
    assert where(routes, "/home", **{"x-canary": "true"}) == {"demo-web-v2:80": 1.0}


def test_exact_beats_prefix_and_method_counts() -> None:
    exact = to(("demo-web-v2", 80, None), matches=[{"path": {"type": "Exact", "value": "/api"}}])
    routes = [route(CANARY, exact)]
    assert where(routes, "/api") == {"demo-web-v2:80": 1.0}
    assert where(routes, "/api/x") == {"demo-web:80": 0.8, "demo-web-v2:80": 0.2}
    post = to(("demo-web-v2", 80, None), matches=[prefix("/api", method="POST")])
    routes = [route(CANARY, post)]
    assert gr.route_split(routes, gr.Request("/api", method="POST"), SERVICES) == {
        "demo-web-v2:80": 1.0
    }
    assert where(routes, "/api") == {"demo-web:80": 0.8, "demo-web-v2:80": 0.2}


def test_query_params_and_regex_headers() -> None:
    q = to(
        ("demo-web-v2", 80, None),
        matches=[prefix("/api", queryParams=[{"name": "v", "value": "2"}])],
    )
    routes = [route(CANARY, q)]
    assert gr.route_split(routes, gr.Request("/api", query={"v": "2"}), SERVICES) == {
        "demo-web-v2:80": 1.0
    }
    regex = to(
        ("demo-web-v2", 80, None),
        matches=[
            prefix(
                "/api", headers=[{"name": "x-canary", "type": "RegularExpression", "value": "t.*"}]
            )
        ],
    )
    assert where([route(regex)], "/api", **{"x-canary": "true"}) == {"demo-web-v2:80": 1.0}
    assert where([route(regex)], "/api", **{"x-canary": "false"}) == {}


def test_a_rule_without_matches_takes_everything() -> None:
    catch_all = to(("demo-web", 80, None))
    assert where([route(catch_all)], "/whatever") == {"demo-web:80": 1.0}


def test_ties_go_to_the_oldest_route_then_its_name_then_rule_order() -> None:
    old = route(
        to(("demo-web", 80, None), matches=[prefix("/api")]),
        name="zz",
        created="2026-01-01T00:00:00Z",
    )
    new = route(
        to(("demo-web-v2", 80, None), matches=[prefix("/api")]),
        name="aa",
        created="2026-02-01T00:00:00Z",
    )
    assert where([new, old], "/api") == {"demo-web:80": 1.0}
    same_time = dict(new, metadata=dict(new["metadata"], creationTimestamp="2026-01-01T00:00:00Z"))
    assert where([old, same_time], "/api") == {"demo-web-v2:80": 1.0}  # "aa" < "zz"
    first = to(("demo-web", 80, None), matches=[prefix("/api")])
    second = to(("demo-web-v2", 80, None), matches=[prefix("/api")])
    found = gr.resolve([route(first, second)], gr.Request("/api"))
    assert (
        found is not None and found.rule_index == 0 and found.where == "HTTPRoute web-route rule 1"
    )


def test_hostnames_filter_and_rank_routes() -> None:
    wildcard = route(to(("demo-web", 80, None)), name="wild", hostnames=["*.example.com"])
    exact = route(to(("demo-web-v2", 80, None)), name="exact", hostnames=["shop.example.com"])
    routes = [wildcard, exact]
    assert gr.route_split(routes, gr.Request("/", host="shop.example.com"), SERVICES) == {
        "demo-web-v2:80": 1.0
    }
    assert gr.route_split(routes, gr.Request("/", host="blog.example.com"), SERVICES) == {
        "demo-web:80": 1.0
    }
    assert gr.route_split(routes, gr.Request("/", host="example.org"), SERVICES) == {}


def test_describe_split() -> None:
    assert gr.describe_split({}) == "no rule matches (404)"
    assert gr.describe_split({"b:80": 0.2, "a:80": 0.8}) == "a:80 80%, b:80 20%"


def test_conditions_of_a_parent() -> None:
    r = route(CANARY)
    r["status"] = {
        "parents": [
            {
                "parentRef": {"name": "main-gw"},
                "conditions": [
                    {"type": "Accepted", "status": "True"},
                    {"type": "ResolvedRefs", "status": "False"},
                ],
            }
        ]
    }
    conds = gr.parent_conditions(r, "main-gw")
    assert gr.condition(conds, "Accepted") == "True"
    assert gr.condition(conds, "ResolvedRefs") == "False"
    assert gr.condition(conds, "Programmed") is None
    assert gr.parent_conditions(r, "other") == []


# --- the traffic test -------------------------------------------------------------------------


def test_tolerance_is_z_standard_deviations() -> None:
    assert traffic.tolerance(400, 0.2) == pytest.approx(4.0 * 8.0)
    assert traffic.within_tolerance(80, 400, 0.2)
    assert traffic.within_tolerance(80 + 32, 400, 0.2)
    assert not traffic.within_tolerance(80 + 33, 400, 0.2)
    assert not traffic.within_tolerance(0, 0, 0.2)
    assert traffic.within_tolerance(40, 40, 1.0) and not traffic.within_tolerance(39, 40, 1.0)


@pytest.mark.parametrize("n", [100, 400, 1000])
def test_a_correct_80_20_split_fails_less_than_once_in_ten_thousand(n: int) -> None:
    assert traffic.rejection_probability(n, 0.2, 0.2) < 1e-4


def test_the_test_has_power_against_wrong_splits() -> None:
    assert traffic.rejection_probability(400, 0.5, 0.2) > 0.999999  # 50/50
    assert traffic.rejection_probability(400, 0.0, 0.2) == pytest.approx(1.0)  # no canary at all
    assert traffic.rejection_probability(400, 0.4, 0.2) > 0.99  # 60/40
    assert sum(traffic.binomial_pmf(k, 50, 0.3) for k in range(51)) == pytest.approx(1.0)


def test_sample_versions_counts_answers_and_errors() -> None:
    answers = iter(["v1", "v2", None, "v1"])
    seen: list[tuple[str, dict[str, str]]] = []

    def fake(url: str, headers: Mapping[str, str]) -> str | None:
        seen.append((url, dict(headers)))
        return next(answers)

    counts = traffic.sample_versions(fake, "http://gw/api", {"Host": "demo"}, 4, retries=0)
    assert counts == {"v1": 2, "v2": 1, "error": 1}
    assert seen[0] == ("http://gw/api", {"Host": "demo"})


def test_sample_versions_sends_a_failed_request_again_and_counts_only_lasting_failures() -> None:
    # One timeout among answers is the machine, not the route; three in a row is an error.
    answers = iter(["v1", None, "v2", None, None, None, "v1"])

    def fake(url: str, headers: Mapping[str, str]) -> str | None:
        return next(answers)

    counts = traffic.sample_versions(fake, "http://gw/api", {}, 4, retries=2, pause=0)
    assert counts == {"v1": 2, "v2": 1, "error": 1}


class _Version(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.headers.get("Host") != "demo.kubelab.local":
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("X-Demo-Version", "v2" if self.headers.get("x-canary") else "v1")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Version)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_version_reads_the_header_and_sends_host(server: str) -> None:
    host = {"Host": "demo.kubelab.local"}
    assert fetch_version(f"{server}/api/x", host) == "v1"
    assert fetch_version(f"{server}/api/x", {**host, "x-canary": "true"}) == "v2"
    assert fetch_version(f"{server}/api/x", {"Host": "other"}) is None  # 404
    assert fetch_version("http://127.0.0.1:1/api", host) is None  # nothing listens
