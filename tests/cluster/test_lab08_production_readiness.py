"""Lab 08 on the real sim cluster: the seeded namespace fails every check with a hint naming the
object, the solution passes, each anti-pattern put back fails exactly its check, and reset
seeds the anti-patterns again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from kubelab import api, lab_namespaces, labs
from kubelab.cluster import kind_build
from kubelab.graders import lab08_production_readiness as grader
from tests.conftest import Kubectl
from tests.lab_attempt import (
    Docs,
    LabAttempt,
    assert_every_check_fails_with_a_hint,
    failed,
    find,
    wrong_answers,
)

LAB = labs.find("08-production-readiness")
SOLUTION = LAB.directory / "solution"
STARTER = LAB.directory / "starter"
SETUP = LAB.directory / "setup"

# Where each seeded anti-pattern is, as a check's message must name it.
NAMED = {
    "requests-limits": "Deployment shop-web container web",
    "liveness-probe": "Deployment shop-web container web",
    "image-tags": "StatefulSet shop-db container db",
    "non-root": "StatefulSet shop-db container db",
    "read-only-root": "Deployment shop-web container web",
    "pdb": "shop-web",
    "prestop": "Deployment shop-web container web",
    "backup-policy": "StatefulSet shop-db",
    "replicas": "Deployment shop-web",
}


@pytest.fixture
def attempt(kubectl: Kubectl, client: api.Api) -> Iterator[LabAttempt]:
    ns = LabAttempt(LAB, kubectl, client)
    yield ns
    ns.delete()


def _web(docs: Docs) -> dict[str, Any]:
    pod = find(docs, "Deployment", "shop-web")["spec"]["template"]["spec"]
    container: dict[str, Any] = pod["containers"][0]
    return container


def _db(docs: Docs) -> dict[str, Any]:
    pod = find(docs, "StatefulSet", "shop-db")["spec"]["template"]["spec"]
    container: dict[str, Any] = pod["containers"][0]
    return container


def _settle(attempt: LabAttempt) -> None:
    attempt.run("rollout", "status", "deployment/shop-web", "--timeout=60s")
    attempt.run("rollout", "status", "statefulset/shop-db", "--timeout=60s")


def test_the_seeded_namespace_fails_every_check_naming_the_object(attempt: LabAttempt) -> None:
    _settle(attempt)  # kubelab seeded it when it made the namespace: nothing applied yet
    report = attempt.grade(timeout=10)
    assert_every_check_fails_with_a_hint(report)
    for check in report.checks:
        assert NAMED[check.id] in check.message, (check.id, check.message)
    # Eviction order is usage above requests, then priority (not the QoS class).
    (resources,) = [c for c in report.checks if c.id == "requests-limits"]
    assert resources.hint and "using more than they request" in resources.hint, resources.hint


def test_the_starter_is_the_seeded_shop(attempt: LabAttempt) -> None:
    def by_name(docs: Docs) -> dict[tuple[str, str], Any]:
        return {(d["kind"], d["metadata"]["name"]): d for d in docs}

    assert by_name(attempt.render(STARTER)) == by_name(attempt.render(SETUP))
    attempt.apply(STARTER)
    _settle(attempt)
    assert_every_check_fails_with_a_hint(attempt.grade(timeout=10))


def test_solution_passes_every_check(attempt: LabAttempt) -> None:
    attempt.apply(SOLUTION)
    _settle(attempt)
    report = attempt.grade()
    assert not failed(report)
    assert report.score == report.max_score == LAB.max_score == 15
    assert [c.id for c in report.checks] == [t.id for t in LAB.tasks]
    assert all(c.hint is None and c.message for c in report.checks)


def _no_db_resources(docs: Docs) -> None:
    del _db(docs)["resources"]


def _no_limits(docs: Docs) -> None:
    del _web(docs)["resources"]["limits"]


def _liveness_copy(docs: Docs) -> None:
    _web(docs)["livenessProbe"] = dict(_web(docs)["readinessProbe"])


def _liveness_same_endpoint(docs: Docs) -> None:
    _web(docs)["livenessProbe"]["httpGet"]["path"] = "/healthz"


def _untagged_db(docs: Docs) -> None:
    _db(docs)["image"] = "postgres"


def _latest_web(docs: Docs) -> None:
    _web(docs)["image"] = "kubelab/demo-web:latest"
    _web(docs)["imagePullPolicy"] = "IfNotPresent"  # as seeded: kind runs its local :latest


def _db_as_root(docs: Docs) -> None:
    del _db(docs)["securityContext"]


def _db_non_root_as_the_images_root(docs: Docs) -> None:
    # runAsNonRoot without runAsUser: postgres's image user is root, so the kubelet refuses it.
    del _db(docs)["securityContext"]["runAsUser"]


def _db_as_a_user_postgres_lacks(docs: Docs) -> None:
    _db(docs)["securityContext"]["runAsUser"] = 10001  # no such user in the image: no initdb


def _web_escalates(docs: Docs) -> None:
    _web(docs)["securityContext"]["allowPrivilegeEscalation"] = True


def _web_root_writable(docs: Docs) -> None:
    del _web(docs)["securityContext"]["readOnlyRootFilesystem"]


def _web_root_explicitly_writable(docs: Docs) -> None:
    _web(docs)["securityContext"]["readOnlyRootFilesystem"] = False


def _no_pdb(docs: Docs) -> None:
    docs.remove(find(docs, "PodDisruptionBudget"))


def _pdb_blocks_drains(docs: Docs) -> None:
    budget = find(docs, "PodDisruptionBudget")["spec"]
    del budget["maxUnavailable"]
    budget["minAvailable"] = 3


def _no_prestop(docs: Docs) -> None:
    del _web(docs)["lifecycle"]


def _exec_sleep_outlasts_grace(docs: Docs) -> None:
    # An exec sleep is read like the sleep action (kubelab.objects.prestop_delay): 40 s > 30 s.
    _web(docs)["lifecycle"]["preStop"] = {"exec": {"command": ["sleep", "40"]}}


def _no_backup(docs: Docs) -> None:
    del find(docs, "StatefulSet")["spec"]["template"]["metadata"]["annotations"]


def _backup_names_no_volume(docs: Docs) -> None:
    annotations = find(docs, "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    annotations[grader.BACKUP_ANNOTATION] = "pgdata"


def _one_replica(docs: Docs) -> None:
    find(docs, "Deployment", "shop-web")["spec"]["replicas"] = 1


VARIANTS = [
    # (name, change to the solution, the one check that must fail)
    ("db-without-resources", _no_db_resources, "requests-limits"),
    ("web-without-limits", _no_limits, "requests-limits"),
    ("liveness-copied-from-readiness", _liveness_copy, "liveness-probe"),
    ("liveness-on-the-readiness-endpoint", _liveness_same_endpoint, "liveness-probe"),
    ("untagged-db-image", _untagged_db, "image-tags"),
    ("latest-web-image", _latest_web, "image-tags"),
    ("db-as-root", _db_as_root, "non-root"),
    ("web-escalates", _web_escalates, "non-root"),
    ("db-non-root-without-its-user", _db_non_root_as_the_images_root, "non-root"),
    ("db-as-a-user-postgres-lacks", _db_as_a_user_postgres_lacks, "non-root"),
    ("web-root-filesystem-writable", _web_root_writable, "read-only-root"),
    ("web-root-filesystem-explicitly-writable", _web_root_explicitly_writable, "read-only-root"),
    ("no-pdb", _no_pdb, "pdb"),
    ("pdb-blocks-drains", _pdb_blocks_drains, "pdb"),
    ("no-prestop", _no_prestop, "prestop"),
    ("exec-sleep-outlasts-grace", _exec_sleep_outlasts_grace, "prestop"),
    ("no-backup-annotation", _no_backup, "backup-policy"),
    ("backup-names-no-volume", _backup_names_no_volume, "backup-policy"),
    ("one-replica", _one_replica, "replicas"),
]


@pytest.mark.slow
@wrong_answers(VARIANTS)
def test_wrong_answer_fails_exactly_its_check(
    attempt: LabAttempt, mutate: Callable[[Docs], None], failing: str
) -> None:
    attempt.run("delete", "pdb", "--all")  # a fresh namespace holds only the seeded shop
    attempt.apply(SOLUTION, mutate)
    _settle(attempt)
    report = attempt.grade()
    assert set(failed(report)) == {failing}, failed(report)
    result = next(c for c in report.checks if c.id == failing)
    assert result.hint and result.points < result.max_points


def test_the_postgres_user_is_the_kind_images() -> None:
    assert grader.IMAGE_USERS["postgres"] == kind_build.POSTGRES_UID
    assert grader.image_repository("docker.io/library/postgres:16.4") == "postgres"
    assert grader.image_repository("postgres@sha256:abc") == "postgres"
    assert grader.image_repository("registry.example/team/postgres-exporter:1") != "postgres"


def test_a_database_that_would_not_start_fails_non_root_with_the_reason(
    attempt: LabAttempt,
) -> None:
    attempt.apply(SOLUTION, _db_non_root_as_the_images_root)
    (result,) = attempt.grade(only=["non-root"]).checks
    assert not result.passed and result.points == 1, result.message
    assert "StatefulSet shop-db container db (postgres: runAsUser unset" in result.message
    assert result.hint and "refuses to start" in result.hint


def test_every_task_is_covered_by_a_wrong_variant() -> None:
    assert {f for *_, f in VARIANTS} == {t.id for t in LAB.tasks}


def test_partial_credit_follows_requirements_met(attempt: LabAttempt) -> None:
    def two_wrongs(docs: Docs) -> None:
        _no_limits(docs)  # requests set, limits not: 1 of 2 points
        _liveness_same_endpoint(docs)  # its own probe, the readiness endpoint: 1 of 2 points

    attempt.apply(SOLUTION, two_wrongs)
    _settle(attempt)
    by_id = {
        c.id: c for c in attempt.grade(only=["requests-limits", "liveness-probe", "pdb"]).checks
    }
    assert by_id["requests-limits"].points == 1 and not by_id["requests-limits"].passed
    assert by_id["liveness-probe"].points == 1 and not by_id["liveness-probe"].passed
    assert by_id["pdb"].passed


def test_reset_seeds_the_anti_patterns_again(attempt: LabAttempt, client: api.Api) -> None:
    attempt.apply(SOLUTION)
    _settle(attempt)
    assert attempt.grade(only=["image-tags"]).passed
    lab_namespaces.reset(client, LAB, attempt.name)
    web = client.get(api.DEPLOYMENTS, "shop-web", attempt.name)
    assert web is not None and web["spec"]["replicas"] == 1
    assert not client.list(api.PDBS, attempt.name)
    _settle(attempt)
    assert_every_check_fails_with_a_hint(attempt.grade(timeout=10))


def test_graders_do_not_depend_on_image_names(attempt: LabAttempt) -> None:
    def rename(docs: Docs) -> None:
        _web(docs)["image"] = "registry.example.com/team/web-frontend:1.0.0"
        _db(docs)["image"] = "registry.example.com/team/db@sha256:" + "a" * 64

    attempt.apply(SOLUTION, rename)
    _settle(attempt)
    report = attempt.grade()
    assert report.passed, failed(report)


def test_an_exec_sleep_prestop_passes_like_the_sleep_action(attempt: LabAttempt) -> None:
    # Lab 03 and lab 08 read a preStop pause the same way: `exec: [sleep, "5"]` counts as 5 s.
    def exec_sleep(docs: Docs) -> None:
        _web(docs)["lifecycle"]["preStop"] = {"exec": {"command": ["sleep", "5"]}}

    attempt.run("delete", "pdb", "--all")
    attempt.apply(SOLUTION, exec_sleep)
    _settle(attempt)
    report = attempt.grade(only=["prestop"])
    assert report.passed, failed(report)
    assert "preStop pause 5 s" in report.checks[0].message


# The pure parts.


@pytest.mark.parametrize(
    ("probe", "words"),
    [
        ({"httpGet": {"path": "/livez", "port": "http"}}, "httpGet /livez on http"),
        ({"tcpSocket": {"port": 5432}}, "tcpSocket {'port': 5432}"),
        (None, "no probe"),
    ],
)
def test_describe_probe(probe: dict[str, Any] | None, words: str) -> None:
    assert grader.describe(probe) == words


def test_the_checklist_names_every_task() -> None:
    text = (STARTER / "kustomization.yaml").read_text()
    assert all(f"TODO({t.id})" in text for t in LAB.tasks)
    shop = (STARTER / "shop.yaml").read_text()
    assert "TODO(" not in shop  # the review finds the faults; nothing points at them
    assert yaml.safe_load_all(shop)


def test_the_seeded_shop_grades_the_same_in_chinese(
    attempt: LabAttempt, monkeypatch: pytest.MonkeyPatch
) -> None:
    """zh-CN: the same verdicts and points, every message and hint in Chinese (CJK text in each),
    the object names kept, and the docs link on a zh-cn page where kubernetes.io has one."""
    _settle(attempt)
    english = attempt.grade(timeout=10)
    monkeypatch.setenv("KUBELAB_LANG", "zh-CN")
    chinese = attempt.grade(timeout=10)
    assert [(c.id, c.passed, c.points) for c in chinese.checks] == [
        (c.id, c.passed, c.points) for c in english.checks
    ]
    for en, zh in zip(english.checks, chinese.checks, strict=True):
        assert zh.message != en.message and zh.hint, zh.id
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh.message + zh.hint), (zh.id, zh.message)
        named = next(word for word in NAMED[zh.id].split() if word.startswith("shop-"))
        assert named in zh.message, (zh.id, zh.message)  # object names are not translated
    assert any("https://kubernetes.io/zh-cn/docs/" in (c.hint or "") for c in chinese.checks)
