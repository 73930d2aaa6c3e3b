"""The fence's lists, read without a cluster: what RBAC grants, what lab.yaml may ask for, and the
names kubelab gives cluster objects. The fence at work is tests/cluster/test_fence.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kubelab import access, labs
from kubelab.errors import KubelabError
from kubelab.fence import fairness, namespace_fence

NEVER = {"pods/proxy", "services/proxy", "nodes/proxy", "pods/portforward", "pods/attach"}
_WRITES = {"create", "update", "patch", "delete", "deletecollection", "*"}


def _granted(rules: list[dict[str, object]]) -> list[tuple[str, str, str]]:
    return [
        (str(group), str(resource), str(verb))
        for rule in rules
        for group in rule["apiGroups"]  # type: ignore[attr-defined]
        for resource in rule["resources"]  # type: ignore[attr-defined]
        for verb in rule["verbs"]  # type: ignore[attr-defined]
    ]


def test_every_lab_grant_is_an_explicit_list_without_escape_hatches() -> None:
    rule_sets = {"owner": access.OWNER_RULES}
    rule_sets.update({lab.id: [dict(r) for r in lab.fence.rules] for lab in labs.all_labs()})
    for where, rules in rule_sets.items():
        for group, resource, verb in _granted(rules):
            assert "*" not in (group, resource, verb), (where, group, resource, verb)
            assert resource not in NEVER, (where, resource)
            assert verb not in {"impersonate", "escalate"}, (where, verb)
            if verb == "bind":  # only lab 06's own Roles, which hold nothing the learner lacks
                assert (where, resource) == ("06-rbac-policy", "roles"), (where, resource)
            assert resource != "serviceaccounts/token", where
            # A learner's controller writes its own custom resource's status (lab 01): no
            # built-in kind's status is ever writable.
            if resource.endswith("/status"):
                assert group == "kubelab.dev", (where, resource)
            if resource in ("resourcequotas", "limitranges") and verb in _WRITES:
                assert where == "06-rbac-policy", (where, resource, verb)


def test_every_lab_below_restricted_says_why() -> None:
    levels = {lab.id: lab.fence.pod_security for lab in labs.all_labs()}
    assert {lab for lab, level in levels.items() if level == "restricted"} == {
        "01-control-loop",
        "03-hpa-pdb",
        "07-slo-capacity",
    }
    for lab in labs.all_labs():
        text = (lab.directory / "lab.yaml").read_text()
        if lab.fence.pod_security != "restricted":
            assert re.search(r"^  why: \S", text, re.M), lab.id


@pytest.mark.parametrize(
    ("fence", "problem"),
    [
        ("fence: {pod-security: privileged}", "must be restricted or baseline"),
        ("fence: {pod-security: baseline}", "why"),
        ("fence: {resources: maybe}", "true or false"),
        ("fence: {rules: [{apiGroups: ['']}]}", "RBAC rules"),
        ("fence: restricted", "must be a mapping"),
    ],
)
def test_a_bad_fence_in_lab_yaml_is_one_line(fence: str, problem: str, tmp_path: Path) -> None:
    lab = tmp_path / "42-broken"
    lab.mkdir()
    (lab / "lab.yaml").write_text(
        f"id: 42-broken\ntitle: Broken\nnamespace: lab-42\n{fence}\n"
        "tasks:\n  - {id: one, title: One, points: 1}\n"
    )
    with pytest.raises(KubelabError, match=problem):
        labs.load(lab / "lab.yaml")


def test_quota_and_limits_follow_the_labs_fence() -> None:
    lab02, lab06 = labs.find("02"), labs.find("06")
    assert "requests.cpu" in namespace_fence.quota(lab02)["spec"]["hard"]
    assert "requests.cpu" not in namespace_fence.quota(lab06)["spec"]["hard"]
    assert [r.kind for r, _ in namespace_fence.objects(lab02)] == ["ResourceQuota", "LimitRange"]
    assert [r.kind for r, _ in namespace_fence.objects(lab06)] == ["ResourceQuota"]
    assert namespace_fence.quota(lab02)["spec"]["hard"]["services.nodeports"] == "0"
    labels = namespace_fence.labels(lab06)
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    for _, body in namespace_fence.objects(lab02):
        assert namespace_fence.is_fence(body)
    assert not namespace_fence.is_fence({"metadata": {"name": "kubelab-fence"}})  # not labelled


@pytest.mark.parametrize("grant", ["participant:alice", "grade-02-bob-1a2b3c", "X" * 300])
def test_flow_schema_names_are_valid_and_distinct(grant: str) -> None:
    name = fairness.schema_name(grant)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63
    assert name != fairness.schema_name(grant + "x")
