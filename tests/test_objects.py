"""The small JSON readers every grader shares."""

from __future__ import annotations

from typing import Any

import pytest

from kubelab.objects import (
    controller_uid,
    dig,
    image_tag,
    labels_query,
    owned_by,
    owner_references,
    port_number,
    prestop_delay,
    quantity,
    ready_endpoints,
    selector_query,
    selects,
)


def test_dig_reads_nested_fields_and_defaults_where_a_step_is_missing() -> None:
    obj = {"spec": {"template": {"spec": {"containers": [{"name": "web"}]}}}, "status": None}
    assert dig(obj, "spec", "template", "spec", "containers") == [{"name": "web"}]
    assert dig(obj, "spec", "replicas", default=1) == 1
    assert dig(obj, "status", "replicas", default=0) == 0  # a null step is missing too
    assert dig(obj) is obj


def test_owned_by_matches_owner_uids_only() -> None:
    pod = {"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "uid": "u1"}]}}
    assert owned_by(pod, "u1")
    assert not owned_by(pod, "u2")
    assert not owned_by({"metadata": {}}, "u1")
    assert not owned_by({"metadata": {"ownerReferences": None}}, "u1")


def test_port_number_resolves_names_through_the_containers() -> None:
    containers = [{"ports": [{"name": "http", "containerPort": 8080}]}, {"ports": None}]
    assert port_number("http", containers) == 8080
    assert port_number(9090, containers) == 9090
    assert port_number("metrics", containers) == "metrics"  # unknown names stay names


def test_selectors_become_api_queries() -> None:
    assert labels_query({"tier": "web", "app": "demo"}) == "app=demo,tier=web"
    selector = {
        "matchLabels": {"app": "demo-web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web", "api"]},
            {"key": "track", "operator": "NotIn", "values": ["canary"]},
            {"key": "owner", "operator": "Exists"},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    assert selector_query(selector) == (
        "app=demo-web,tier in (web,api),track notin (canary),owner,!canary"
    )
    assert selector_query({"matchExpressions": [{"key": "a", "operator": "Exists"}]}) == "a"
    assert selector_query(None) is None
    assert selector_query({}) is None


def test_image_tag() -> None:
    assert image_tag("kubelab/demo-web:v2") == "v2"
    assert image_tag("registry:5000/team/web") == "latest"
    assert image_tag("web@sha256:abc") == "sha256:abc"


def test_ready_endpoints_are_named_by_pod_and_exclude_unready_ones() -> None:
    slices = [
        {
            "endpoints": [
                {"conditions": {"ready": True}, "targetRef": {"name": "web-1"}},
                {"conditions": {"ready": False}, "targetRef": {"name": "web-2"}},
                {"conditions": {"ready": True}, "addresses": ["10.0.0.9"]},
            ]
        },
        {"endpoints": None},
    ]
    assert ready_endpoints(slices) == {"web-1", "10.0.0.9"}


@pytest.mark.parametrize(
    ("hook", "seconds"),
    [
        ({"sleep": {"seconds": 5}}, 5),  # the sleep action (no shell needed)
        ({"exec": {"command": ["sleep", "5"]}}, 5),  # exec, sleep as its own argument
        ({"exec": {"command": ["/bin/sleep", "3"]}}, 3),
        ({"exec": {"command": ["sh", "-c", "sleep 7 && kill 1"]}}, 7),  # one shell string
        ({"exec": {"command": ["/usr/local/bin/mysleep", "4"]}}, 4),
        ({"exec": {"command": ["nginx", "-s", "quit"]}}, None),  # waits, but says not how long
        ({"exec": {"command": []}}, None),
        ({"httpGet": {"path": "/drain", "port": 8080}}, None),
        ({"sleep": {"seconds": True}}, None),  # a bool is not a number of seconds
        ({}, None),
        (None, None),
    ],
)
def test_prestop_delay_reads_the_sleep_action_and_exec_sleeps(
    hook: dict[str, Any] | None, seconds: int | None
) -> None:
    assert prestop_delay(hook) == seconds


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"b": ""}, True),
        (None, {"a": "1"}, True),
        # an operator the API server would reject selects nothing, whatever the labels
        (
            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "exists"}]}, {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a"}]}, {"a": "1"}, False),
    ],
)
def test_one_selector_matcher(
    selector: dict[str, Any] | None, labels: dict[str, str], expected: bool
) -> None:
    assert selects(selector, labels) is expected


def test_owner_references_and_the_controller_among_them() -> None:
    pod = {"metadata": {"ownerReferences": [{"uid": "a"}, {"uid": "b", "controller": True}]}}
    assert [r["uid"] for r in owner_references(pod)] == ["a", "b"]
    assert controller_uid(pod) == "b"
    assert controller_uid({"metadata": {"ownerReferences": [{"uid": "a"}]}}) == "a"
    assert controller_uid({"metadata": {}}) == ""
    assert owner_references({"metadata": {"ownerReferences": None}}) == []


@pytest.mark.parametrize(
    ("text", "value"),
    [("250m", "0.25"), ("1", "1"), ("0.5", "0.5"), ("512Mi", str(512 * 2**20)), ("1e3", "1000")],
)
def test_one_quantity_parser(text: str, value: str) -> None:
    from decimal import Decimal

    from kubelab.grading.quantity import parse  # the name graders import: the same parser

    assert quantity(text) == Decimal(value)
    assert parse is quantity
    assert quantity("lots") is None and quantity("5Xi") is None
