"""Lab 05 on the real sim cluster: the solution passes, the starter fails with hints, and each
known-wrong answer fails exactly the check it should. The kind-only branch (controller conditions,
real traffic) is driven here too, with status written by hand and a fake HTTP client."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

import kubelab.graders.lab05_gateway_canary as grader
from kubelab import api, cluster_record, labs
from kubelab.grading.context import Context
from tests.conftest import Kubectl
from tests.lab_attempt import (
    Docs,
    LabAttempt,
    assert_every_check_fails_with_a_hint,
    failed,
    find,
    grades_the_same_in_chinese,
    wrong_answers,
)

LAB = labs.find("05-gateway-canary")
SOLUTION = LAB.directory / "solution"
STARTER = LAB.directory / "starter"


@pytest.fixture
def attempt(kubectl: Kubectl, client: api.Api) -> Iterator[LabAttempt]:
    ns = LabAttempt(LAB, kubectl, client)
    yield ns
    ns.delete()


def _rules(docs: Docs) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = find(docs, "HTTPRoute")["spec"]["rules"]
    return rules


def _header_rule(docs: Docs) -> dict[str, Any]:
    return _rules(docs)[0]


def _canary_rule(docs: Docs) -> dict[str, Any]:
    return _rules(docs)[1]


def test_solution_passes_every_check(attempt: LabAttempt) -> None:
    attempt.apply(SOLUTION)
    report = attempt.grade()
    assert not failed(report)
    assert report.score == report.max_score == LAB.max_score == 10
    assert [c.id for c in report.checks] == [t.id for t in LAB.tasks]
    assert all(c.hint is None and c.message for c in report.checks)
    assert "sim has no Gateway controller" in report.checks[2].message
    # The same state always gives the same score.
    assert attempt.grade().to_dict() == report.to_dict()
    grades_the_same_in_chinese(report, attempt.grade)


def test_starter_fails_every_check_with_a_hint(attempt: LabAttempt) -> None:
    attempt.apply(STARTER)
    report = attempt.grade()
    assert_every_check_fails_with_a_hint(report)
    by_id = {c.id: c for c in report.checks}
    assert "istio" in by_id["gateway"].message and "kubelab" in by_id["gateway"].message
    assert "does not attach" in by_id["canary-route"].message


def _service_selects_both(docs: Docs) -> None:
    find(docs, "Service", "demo-web")["spec"]["selector"] = {"app": "demo-web"}


def _same_tag(docs: Docs) -> None:
    pod = find(docs, "Deployment", "demo-web-v2")["spec"]["template"]["spec"]
    pod["containers"][0]["image"] = "kubelab/demo-web:v1"


def _listener_8080(docs: Docs) -> None:
    find(docs, "Gateway")["spec"]["listeners"][0]["port"] = 8080


def _class_istio(docs: Docs) -> None:
    find(docs, "Gateway")["spec"]["gatewayClassName"] = "istio"


def _weights_50_50(docs: Docs) -> None:
    for ref in _canary_rule(docs)["backendRefs"]:
        ref["weight"] = 50


def _prefix_api_v1(docs: Docs) -> None:
    # Not "Exact /api": that would also outrank the header rule for GET /api (exact beats any
    # prefix) and so fail header-route too.
    _canary_rule(docs)["matches"][0]["path"]["value"] = "/api/v1"


def _section_https(docs: Docs) -> None:
    find(docs, "HTTPRoute")["spec"]["parentRefs"][0]["sectionName"] = "https"


def _backend_port_8080(docs: Docs) -> None:
    _canary_rule(docs)["backendRefs"][1]["port"] = 8080


def _header_without_path(docs: Docs) -> None:
    del _header_rule(docs)["matches"][0]["path"]


def _header_any_value(docs: Docs) -> None:
    header = _header_rule(docs)["matches"][0]["headers"][0]
    header.update(type="RegularExpression", value=".*")


def _another_route_steals_api(docs: Docs) -> None:
    docs.append(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "legacy"},
            "spec": {
                "parentRefs": [{"name": "main-gw"}],
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/api/orders"}}],
                        "backendRefs": [{"name": "demo-web", "port": 80}],
                    }
                ],
            },
        }
    )


VARIANTS = [
    # (name, change to the solution, the one check that must fail)
    ("service-selects-both-versions", _service_selects_both, "backends"),
    ("v2-runs-the-v1-tag", _same_tag, "backends"),
    ("listener-on-8080", _listener_8080, "gateway"),
    ("article-class-istio", _class_istio, "gateway"),
    ("weights-50-50", _weights_50_50, "canary-route"),
    ("prefix-api-v1", _prefix_api_v1, "canary-route"),
    ("parent-section-https", _section_https, "canary-route"),
    ("backend-port-8080", _backend_port_8080, "canary-route"),
    ("header-rule-without-path", _header_without_path, "header-route"),
    ("header-matches-any-value", _header_any_value, "header-route"),
]


@pytest.mark.slow
@wrong_answers(VARIANTS)
def test_wrong_answer_fails_exactly_its_check(
    attempt: LabAttempt, mutate: Callable[[Docs], None], failing: str
) -> None:
    attempt.apply(SOLUTION, mutate)
    report = attempt.grade()
    assert set(failed(report)) == {failing}, failed(report)
    result = next(c for c in report.checks if c.id == failing)
    assert result.hint and "https://" in result.hint and result.points < result.max_points


def test_every_task_is_covered_by_a_wrong_variant() -> None:
    assert {f for *_, f in VARIANTS} == {t.id for t in LAB.tasks}


def test_messages_name_the_winning_rule_and_the_broken_backend(attempt: LabAttempt) -> None:
    attempt.apply(SOLUTION, _backend_port_8080)
    (result,) = attempt.grade(only=["canary-route"]).checks
    assert "error (500) 20%" in result.message
    assert "HTTPRoute web-route rule 2" in result.message
    assert "Service demo-web-v2 has no port 8080" in result.message


def test_a_route_that_steals_part_of_api_is_seen(attempt: LabAttempt) -> None:
    attempt.apply(SOLUTION, _another_route_steals_api)
    by_id = {c.id: c for c in attempt.grade().checks}
    assert not by_id["canary-route"].passed
    assert "HTTPRoute legacy rule 1" in by_id["canary-route"].message
    assert "demo-web:80 100%" in by_id["canary-route"].message


def test_partial_credit_follows_requirements_met(attempt: LabAttempt) -> None:
    def half(docs: Docs) -> None:
        find(docs, "Service", "demo-web")["spec"]["ports"][0]["targetPort"] = 80  # 8 of 9
        _weights_50_50(docs)  # attached, wrong split: 1 of 2
        _header_any_value(docs)  # v2 for "true", but for "false" too: 1 of 2

    attempt.apply(SOLUTION, half)
    by_id = {c.id: c for c in attempt.grade().checks}
    assert (by_id["backends"].points, by_id["backends"].passed) == (2, False)
    assert (by_id["canary-route"].points, by_id["canary-route"].passed) == (1, False)
    assert (by_id["header-route"].points, by_id["header-route"].passed) == (1, False)
    assert by_id["gateway"].points == 2


def test_graders_do_not_depend_on_the_image_name(attempt: LabAttempt) -> None:
    def rename(docs: Docs) -> None:
        for name, tag in (("demo-web", "1.0.0"), ("demo-web-v2", "1.1.0")):
            pod = find(docs, "Deployment", name)["spec"]["template"]["spec"]
            pod["containers"][0]["image"] = f"registry.example.com/team/web-frontend:{tag}"

    attempt.apply(SOLUTION, rename)
    report = attempt.grade()
    assert report.passed, failed(report)


def test_a_gateway_class_other_than_kubelab_is_accepted(
    attempt: LabAttempt, kubectl: Kubectl
) -> None:
    name = f"other-{attempt.name}"
    kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "GatewayClass",
                "metadata": {"name": name},
                "spec": {"controllerName": "example.com/gateway-controller"},
            }
        ),
    )
    try:

        def use_it(docs: Docs) -> None:
            find(docs, "Gateway")["spec"]["gatewayClassName"] = name

        attempt.apply(SOLUTION, use_it)
        (result,) = attempt.grade(only=["gateway"]).checks
        assert result.passed and name in result.message
    finally:
        kubectl("delete", "gatewayclass", name, "--wait=false", check=False)


# --- the kind branch, on sim: status written by hand, traffic from a fake client ------------


def _set_status(kubectl: Kubectl, ns: str, kind: str, name: str, status: dict[str, Any]) -> None:
    kubectl(
        "patch", kind, name, "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def _cond(kind: str, status: str = "True") -> dict[str, str]:
    return {
        "type": kind,
        "status": status,
        "reason": kind if status == "True" else "Pending",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 1,
    }


def _as_kind(
    monkeypatch: pytest.MonkeyPatch, answer: Callable[[Mapping[str, str]], str | None]
) -> list[dict[str, str]]:
    sent: list[dict[str, str]] = []

    def fake(url: str, headers: Mapping[str, str]) -> str | None:
        assert url == f"{cluster_record.DEFAULT_GATEWAY_URL}/api/orders/42"
        sent.append(dict(headers))
        return answer(headers)

    monkeypatch.setattr(Context, "substrate", property(lambda _self: "kind"))
    monkeypatch.setattr(grader, "FETCH", fake)
    return sent


def _programmed(kubectl: Kubectl, ns: str, route_status: str = "True") -> None:
    _set_status(
        kubectl,
        ns,
        "gateway",
        "main-gw",
        {"conditions": [_cond("Accepted"), _cond("Programmed")]},
    )
    parent = {
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "main-gw"},
        "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
        "conditions": [_cond("Accepted"), _cond("ResolvedRefs", route_status)],
    }
    _set_status(kubectl, ns, "httproute", "web-route", {"parents": [parent]})


def test_kind_branch_passes_with_conditions_and_a_fair_split(
    attempt: LabAttempt, kubectl: Kubectl, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempt.apply(SOLUTION)
    _programmed(kubectl, attempt.name)
    turn = itertools.cycle(["v1", "v1", "v1", "v1", "v2"])  # exactly 80/20

    sent = _as_kind(monkeypatch, lambda h: "v2" if h.get("x-canary") == "true" else next(turn))
    report = attempt.grade()
    assert report.passed, failed(report)
    assert "requests split within tolerance" in report.checks[2].message
    assert all(h["Host"] == grader.DEFAULT_HOST for h in sent)
    plain = [h for h in sent if "x-canary" not in h]
    assert len(plain) > grader.SPLIT_REQUESTS  # the warm-up request, then the sample
    assert len(sent) - len(plain) > grader.HEADER_REQUESTS


def test_kind_branch_fails_a_lopsided_split_and_unresolved_refs(
    attempt: LabAttempt, kubectl: Kubectl, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempt.apply(SOLUTION)
    _programmed(kubectl, attempt.name)
    _as_kind(monkeypatch, lambda h: "v2" if h.get("x-canary") == "true" else "v1")
    by_id = {c.id: c for c in attempt.grade().checks}
    assert not by_id["canary-route"].passed and by_id["canary-route"].points == 2
    assert "0 of 400 requests answered by v2" in by_id["canary-route"].message
    assert by_id["header-route"].passed and by_id["gateway"].passed

    _programmed(kubectl, attempt.name, route_status="False")
    report = attempt.grade(only=["canary-route"], timeout=3)
    (result,) = report.checks
    assert "ResolvedRefs False" in result.message and result.points == 1


def test_kind_branch_fails_a_gateway_that_is_not_programmed(
    attempt: LabAttempt, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempt.apply(SOLUTION)
    _as_kind(monkeypatch, lambda h: None)
    (result,) = attempt.grade(only=["gateway"], timeout=3).checks
    assert not result.passed and result.points == 1
    assert "Programmed Unknown" in result.message
