"""Lab 06 on the real sim cluster: the solution passes, the starter fails with hints, and each
known-wrong answer fails exactly the check it should (with partial credit where it is partial)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubelab import access, api, labs
from kubelab.grading import runner
from kubelab.wait import until
from tests.conftest import Kubectl
from tests.lab_attempt import (
    Docs,
    LabAttempt,
    assert_every_check_fails_with_a_hint,
    failed,
    find,
    grades_the_same_in_chinese,
)

LAB = labs.find("06-rbac-policy")
SOLUTION = LAB.directory / "solution"
STARTER = LAB.directory / "starter"
PSA = "pod-security.kubernetes.io/enforce"
IMAGE_POLICY = (
    "image-policy.yaml"  # cluster-scoped: applied on its own, not in the Kustomize folder
)


class PolicyAttempt(LabAttempt):
    """Lab 06's attempt: the learner also labels the namespace for Pod Security and applies the
    cluster-scoped image policy."""

    def __init__(self, lab: labs.Lab, kubectl: Kubectl, client: api.Api) -> None:
        super().__init__(lab, kubectl, client)
        self.cluster_objects: list[tuple[str, str]] = []  # (kind, name) to delete afterwards

    def enforce(self, level: str = "restricted") -> None:
        self.kubectl("label", "namespace", self.name, f"{PSA}={level}", "--overwrite")

    def pin_images(self, mutate: Callable[[Docs], None] | None = None) -> Docs:
        """Apply the solution's image policy (changed by `mutate`) and label the namespace.

        A changed policy gets names and a namespace label of its own, so that it neither replaces
        the solution's policy for other tests nor is shadowed by it; it is deleted afterwards.
        """
        docs = [d for d in yaml.safe_load_all((SOLUTION / IMAGE_POLICY).read_text()) if d]
        value = "pinned"
        if mutate:
            mutate(docs)
            value = f"variant-{uuid.uuid4().hex[:6]}"
            for doc in docs:
                doc["metadata"]["name"] = f"pinned-images-{value}"
                self.cluster_objects.append((doc["kind"], doc["metadata"]["name"]))
            binding = find(docs, "ValidatingAdmissionPolicyBinding")
            binding["spec"]["policyName"] = f"pinned-images-{value}"
            selector = binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]
            if "image-policy" in selector:  # unless the variant is about the selector
                selector["image-policy"] = value
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
        self.kubectl("label", "namespace", self.name, f"image-policy={value}", "--overwrite")
        # The API server loads a new policy and binding from a watch, moments after they are
        # stored: wait until an unpinned Deployment is refused (a variant that never refuses
        # waits the whole deadline, then is graded as it is).
        until(
            lambda: self.kubectl(
                "create", "deployment", "pin-probe", "-n", self.name, "--image=probe:latest",
                "--dry-run=server", check=False,
            ).returncode,
            bool,
            timeout=8,
            what="the image policy to take effect",
            raise_on_timeout=False,
        )  # fmt: skip
        return docs

    def delete(self) -> None:
        super().delete()
        for kind, name in self.cluster_objects:
            self.kubectl("delete", kind.lower(), name, "--ignore-not-found", check=False)


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
    attempt.pin_images()
    report = attempt.grade()
    assert not failed(report)
    assert report.score == report.max_score == LAB.max_score == 23
    assert [c.id for c in report.checks] == [t.id for t in LAB.tasks]
    assert all(c.hint is None and c.message for c in report.checks)
    assert attempt.grade().to_dict() == report.to_dict()  # same state, same score
    grades_the_same_in_chinese(report, attempt.grade)
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
    attempt.pin_images()
    report = attempt.grade()
    assert set(failed(report)) == {failing}, failed(report)
    result = next(c for c in report.checks if c.id == failing)
    assert result.hint and "https://kubernetes.io/docs/" in result.hint
    assert result.points == points, (result.points, result.message)


def _policy_expression(docs: Docs) -> dict[str, Any]:
    rule: dict[str, Any] = find(docs, "ValidatingAdmissionPolicy")["spec"]["validations"][0]
    return rule


def _warn_only(docs: Docs) -> None:
    find(docs, "ValidatingAdmissionPolicyBinding")["spec"]["validationActions"] = ["Warn"]


def _latest_only(docs: Docs) -> None:
    # The first thing people write: it misses images with no tag at all (which mean latest).
    _policy_expression(docs)["expression"] = (
        "object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))"
    )


def _refuse_everything(docs: Docs) -> None:
    _policy_expression(docs)["expression"] = "false"


def _binds_another_namespace(docs: Docs) -> None:
    # The binding names the lab's usual namespace, which is not the one graded here.
    find(docs, "ValidatingAdmissionPolicyBinding")["spec"]["matchResources"] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "lab-06-not-this-one"}}
    }


IMAGE_VARIANTS: list[tuple[str, Callable[[Docs], None], float]] = [
    # (name, change to the solution's image policy, points of image-policy)
    ("warn-only", _warn_only, 0),
    ("latest-only", _latest_only, 2),
    ("refuses-everything", _refuse_everything, 2),
    ("binds-another-namespace", _binds_another_namespace, 0),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mutate", "points"), [pytest.param(m, p, id=name) for name, m, p in IMAGE_VARIANTS]
)
def test_wrong_image_policy_fails_exactly_its_check(
    attempt: PolicyAttempt, mutate: Callable[[Docs], None], points: float
) -> None:
    attempt.apply(SOLUTION)
    attempt.enforce()
    attempt.pin_images(mutate)
    report = attempt.grade()
    assert set(failed(report)) == {"image-policy"}, failed(report)
    result = next(c for c in report.checks if c.id == "image-policy")
    assert result.hint and "https://kubernetes.io/docs/" in result.hint
    assert result.points == points, (result.points, result.message)


def test_the_image_policy_really_refuses_a_create(attempt: PolicyAttempt) -> None:
    """Not only the grader's dry run: a real create of an unpinned Deployment is refused."""
    attempt.apply(SOLUTION)
    attempt.pin_images()
    refused = attempt.kubectl(
        "create", "deployment", "unpinned", "-n", attempt.name, "--image=nginx:latest",
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "ValidatingAdmissionPolicy" in refused.stderr
    assert "pinned tag" in refused.stderr
    admitted = attempt.kubectl(
        "create", "deployment", "pinned", "-n", attempt.name, "--image=nginx:1.27.3", check=False
    )
    assert admitted.returncode == 0, admitted.stderr


def test_a_workshop_namespace_is_not_graded_on_the_image_policy(attempt: PolicyAttempt) -> None:
    """Participants cannot create cluster-scoped policies: every one of them gets the same."""
    attempt.kubectl("label", "namespace", attempt.name, "kubelab.dev/participant=p01")
    result = attempt.grade(only=["image-policy"]).checks[0]
    assert result.passed and "not graded" in result.message


def test_every_task_is_covered_by_a_wrong_variant() -> None:
    covered = {f for _, _, _, f, _ in VARIANTS} | {"image-policy" for _ in IMAGE_VARIANTS[:1]}
    assert covered == {t.id for t in LAB.tasks}


def test_partial_credit_adds_up_over_several_wrong_answers(attempt: PolicyAttempt) -> None:
    def several(docs: Docs) -> None:
        _article_role(docs)  # 3 of 4
        _deny_ingress_only(docs)  # 1 of 2
        _no_memory_quota(docs)  # 1 of 3

    attempt.apply(SOLUTION, several)
    attempt.enforce("baseline")  # kubelab's own starting level: 0 of 3
    attempt.pin_images(_latest_only)  # 2 of 3
    by_id = {c.id: c.points for c in attempt.grade().checks}
    assert by_id == {
        "service-account": 2,
        "least-privilege": 3,
        "default-deny": 1,
        "allow-rules": 4,
        "limits": 2,
        "quota": 1,
        "pod-security": 0,
        "image-policy": 2,
    }


def test_graders_do_not_depend_on_the_image_name(attempt: PolicyAttempt) -> None:
    def rename(docs: Docs) -> None:
        for name in ("demo-web", "frontend"):
            _pod_spec(docs, name)["containers"][0]["image"] = "registry.example.com/team/x:9.9"

    attempt.apply(SOLUTION, rename)
    attempt.enforce()
    attempt.pin_images()
    report = attempt.grade()
    assert report.passed, failed(report)


def test_a_confined_submission_may_not_create_a_policy_and_is_not_graded_on_it(
    attempt: PolicyAttempt, client: api.Api, tmp_path: Path
) -> None:
    """Bulk grading's confined token (and a participant's) cannot create cluster-wide policies:
    the fence never grants it, so the check does not grade them on it."""
    access.install_shared_roles(client, [LAB])
    token = access.service_account_token(client, attempt.name, "kubelab-submission")
    subject = {"kind": "ServiceAccount", "name": "kubelab-submission", "namespace": attempt.name}
    access.confine(client, attempt.name, subject, {attempt.name: LAB})
    try:
        server, ca = access.cluster_endpoint(client.kubeconfig)
        config = access.kubeconfig_for(
            server, ca, {"token": token}, name="s", namespace=attempt.name
        )
        path = access.write_kubeconfig(tmp_path / "submission.kubeconfig", config)
        policy = (SOLUTION / IMAGE_POLICY).read_text().replace("pinned-images", "mallory-images")
        refused = Kubectl(path)("apply", "-f", "-", stdin=policy, check=False)
        assert refused.returncode != 0 and "forbidden" in refused.stderr, refused.stderr
        confined = api.Api(path)
        try:
            result = runner.run(
                LAB, namespace=attempt.name, only=["image-policy"], client=confined, timeout=30
            ).checks[0]
        finally:
            confined.close()
        assert result.passed and "not graded" in result.message
    finally:
        access.release(client, attempt.name)
