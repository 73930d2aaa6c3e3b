"""Lab 06 on the real sim cluster: the solution passes, the starter fails with hints, and each
known-wrong answer fails exactly the check it should (with partial credit where it is partial)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubelab import api, labs
from tests.conftest import Kubectl
from tests.lab_attempt import Docs, LabAttempt, assert_every_check_fails_with_a_hint, failed, find

LAB = labs.find("06-rbac-policy")
SOLUTION = LAB.directory / "solution"
STARTER = LAB.directory / "starter"
PSA = "pod-security.kubernetes.io/enforce"


class PolicyAttempt(LabAttempt):
    """Lab 06's attempt: the learner also labels the namespace for Pod Security."""

    def enforce(self, level: str = "restricted") -> None:
        self.kubectl("label", "namespace", self.name, f"{PSA}={level}", "--overwrite")


@pytest.fixture
def attempt(kubectl: Kubectl, client: api.Api) -> Iterator[PolicyAttempt]:
    ns = PolicyAttempt(LAB, kubectl, client)
    yield ns
    ns.delete()


def _pod_spec(docs: Docs, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = find(docs, "Deployment", name)["spec"]["template"]["spec"]
    return spec


def _policy(docs: Docs, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = find(docs, "NetworkPolicy", name)["spec"]
    return spec


def test_solution_passes_every_check(attempt: PolicyAttempt) -> None:
    attempt.apply(SOLUTION)
    attempt.enforce()
    report = attempt.grade()
    assert not failed(report)
    assert report.score == report.max_score == LAB.max_score == 20
    assert [c.id for c in report.checks] == [t.id for t in LAB.tasks]
    assert all(c.hint is None and c.message for c in report.checks)
    assert attempt.grade().to_dict() == report.to_dict()  # same state, same score
    # The dry runs created nothing: only the workloads' pods exist.
    pods = attempt.run("get", "pods", "-o", "name").split()
    assert len(pods) == 3 and all("kubelab-" not in p for p in pods), pods


def test_starter_fails_every_check_with_a_hint(attempt: PolicyAttempt) -> None:
    attempt.apply(STARTER)
    report = attempt.grade()
    assert_every_check_fails_with_a_hint(report)


def _token_mounted(docs: Docs) -> None:
    del find(docs, "ServiceAccount", "app-sa")["automountServiceAccountToken"]


def _web_runs_as_default(docs: Docs) -> None:
    del _pod_spec(docs, "demo-web")["serviceAccountName"]


def _article_role(docs: Docs) -> None:
    find(docs, "Role", "app-reader")["rules"] = [
        {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "list"]}
    ]


def _any_secret(docs: Docs) -> None:
    del find(docs, "Role", "app-reader")["rules"][1]["resourceNames"]


def _may_delete(docs: Docs) -> None:
    find(docs, "Role", "app-reader")["rules"][0]["verbs"].append("delete")


def _subject_in_prod(docs: Docs) -> None:
    find(docs, "RoleBinding", "app-reader-binding")["subjects"][0]["namespace"] = "prod"


def _extra_edit_binding(docs: Docs) -> None:
    docs.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "app-sa-edit"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "edit",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "app-sa"}],
        }
    )


def _deny_ingress_only(docs: Docs) -> None:
    _policy(docs, "default-deny")["policyTypes"] = ["Ingress"]


def _deny_only_web(docs: Docs) -> None:
    _policy(docs, "default-deny")["podSelector"] = {"matchLabels": {"app": "demo-web"}}


def _web_from_everyone(docs: Docs) -> None:
    _policy(docs, "demo-web-from-frontend")["ingress"][0]["from"] = [{"podSelector": {}}]


def _web_from_all_namespaces(docs: Docs) -> None:
    peer = _policy(docs, "demo-web-from-frontend")["ingress"][0]["from"][0]
    peer["namespaceSelector"] = {}


def _web_on_every_port(docs: Docs) -> None:
    del _policy(docs, "demo-web-from-frontend")["ingress"][0]["ports"]


def _dns_udp_only(docs: Docs) -> None:
    _policy(docs, "allow-dns")["egress"][0]["ports"] = [{"protocol": "UDP", "port": 53}]


def _dns_anywhere(docs: Docs) -> None:
    del _policy(docs, "allow-dns")["egress"][0]["to"]


def _no_frontend_egress(docs: Docs) -> None:
    docs.remove(find(docs, "NetworkPolicy", "frontend-to-demo-web"))


def _no_limitrange(docs: Docs) -> None:
    docs.remove(find(docs, "LimitRange"))


def _only_default_requests(docs: Docs) -> None:
    item = find(docs, "LimitRange")["spec"]["limits"][0]
    for key in ("default", "max", "maxLimitRequestRatio"):
        del item[key]


def _defaults_over_the_ratio(docs: Docs) -> None:
    # 64Mi requested, 256Mi limit: 4 times, where the starter's LimitRange allows 2.
    find(docs, "LimitRange")["spec"]["limits"][0]["default"]["memory"] = "256Mi"


def _no_memory_quota(docs: Docs) -> None:
    del find(docs, "ResourceQuota")["spec"]["hard"]["requests.memory"]


def _web_may_escalate(docs: Docs) -> None:
    _pod_spec(docs, "demo-web")["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = (
        True
    )


Mutation = Callable[[Docs], None] | None
VARIANTS: list[tuple[str, Mutation, str, str, float]] = [
    # (name, change to the solution, Pod Security level, the one failing check, its points)
    ("token-mounted", _token_mounted, "restricted", "service-account", 1),
    ("web-runs-as-default", _web_runs_as_default, "restricted", "service-account", 1),
    ("article-role-lists-secrets", _article_role, "restricted", "least-privilege", 3),
    ("any-secret", _any_secret, "restricted", "least-privilege", 3),
    ("may-delete-configmaps", _may_delete, "restricted", "least-privilege", 3),
    ("subject-in-prod", _subject_in_prod, "restricted", "least-privilege", 2),
    ("another-binding-grants-edit", _extra_edit_binding, "restricted", "least-privilege", 2),
    ("deny-ingress-only", _deny_ingress_only, "restricted", "default-deny", 1),
    ("deny-only-demo-web", _deny_only_web, "restricted", "default-deny", 1),
    ("demo-web-from-every-pod", _web_from_everyone, "restricted", "allow-rules", 3),
    ("demo-web-from-all-namespaces", _web_from_all_namespaces, "restricted", "allow-rules", 3),
    ("demo-web-on-every-port", _web_on_every_port, "restricted", "allow-rules", 3),
    ("dns-udp-only", _dns_udp_only, "restricted", "allow-rules", 3),
    ("dns-anywhere", _dns_anywhere, "restricted", "allow-rules", 3),
    ("frontend-egress-missing", _no_frontend_egress, "restricted", "allow-rules", 2),
    ("no-limitrange", _no_limitrange, "restricted", "limits", 0),
    ("only-default-requests", _only_default_requests, "restricted", "limits", 1),
    ("defaults-over-the-ratio", _defaults_over_the_ratio, "restricted", "limits", 0),
    ("no-memory-quota", _no_memory_quota, "restricted", "quota", 1),
    # Baseline is where kubelab's fence starts the namespace: it earns nothing (0 of 3).
    ("baseline-not-restricted", None, "baseline", "pod-security", 0),
    ("demo-web-may-escalate", _web_may_escalate, "restricted", "pod-security", 2),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mutate", "level", "failing", "points"),
    [pytest.param(m, lv, f, p, id=name) for name, m, lv, f, p in VARIANTS],
)
def test_wrong_answer_fails_exactly_its_check(
    attempt: PolicyAttempt, mutate: Mutation, level: str, failing: str, points: float
) -> None:
    attempt.apply(SOLUTION, mutate)
    attempt.enforce(level)
    report = attempt.grade()
    assert set(failed(report)) == {failing}, failed(report)
    result = next(c for c in report.checks if c.id == failing)
    assert result.hint and "https://kubernetes.io/docs/" in result.hint
    assert result.points == points, (result.points, result.message)


def test_every_task_is_covered_by_a_wrong_variant() -> None:
    assert {f for _, _, _, f, _ in VARIANTS} == {t.id for t in LAB.tasks}


def test_partial_credit_adds_up_over_several_wrong_answers(attempt: PolicyAttempt) -> None:
    def several(docs: Docs) -> None:
        _article_role(docs)  # 3 of 4
        _deny_ingress_only(docs)  # 1 of 2
        _no_memory_quota(docs)  # 1 of 3

    attempt.apply(SOLUTION, several)
    attempt.enforce("baseline")  # kubelab's own starting level: 0 of 3
    by_id = {c.id: c.points for c in attempt.grade().checks}
    assert by_id == {
        "service-account": 2,
        "least-privilege": 3,
        "default-deny": 1,
        "allow-rules": 4,
        "limits": 2,
        "quota": 1,
        "pod-security": 0,
    }


def test_graders_do_not_depend_on_the_image_name(attempt: PolicyAttempt) -> None:
    def rename(docs: Docs) -> None:
        for name in ("demo-web", "frontend"):
            _pod_spec(docs, name)["containers"][0]["image"] = "registry.example.com/team/x:9.9"

    attempt.apply(SOLUTION, rename)
    attempt.enforce()
    report = attempt.grade()
    assert report.passed, failed(report)
