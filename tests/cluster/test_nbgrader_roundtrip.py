"""nbgrader round trip of every lab on the sim cluster: full, zero and partial marks as they
should be.

For each lab, three submissions are autograded, each in a namespace of its own: "solved" (the
reference answer as the learner's starter/ files, plus the commands the lab asks to be typed),
"untouched" (the release as handed out: 0 on every task), and "half" (some tasks done, some
half done: nbgrader must record the partial credit the grader gives).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from kubelab import labs
from tests.conftest import Kubectl
from tests.nbgrader_course import (
    answer,
    autograde_all,
    make_course,
    nbgrader,
    submit,
    submit_solution,
)


def _solution(lab: labs.Lab, name: str) -> Path:
    return lab.directory / "solution" / name


def _edit_yaml(path: Path, edit: Callable[[list[dict]], None]) -> None:  # type: ignore[type-arg]
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    edit(docs)
    path.write_text(yaml.safe_dump_all(docs))


def _half_00(lab: labs.Lab, sub: Path) -> None:
    """Pod and Service right; the Secret written as a file and mounted at the wrong path, the
    namespace typed in, the Job run once, the CronJob allowed to overlap; the DaemonSet as
    handed out. Every pod still runs on kind (no missing ConfigMap key or Secret)."""
    starter = sub / "starter"
    for name in ("pod.yaml", "config.yaml", "batch.yaml"):
        shutil.copy(_solution(lab, name), starter / name)
    (starter / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: quote-token\n"
        "stringData:\n  token: in-a-file\n"
    )

    def add_secret(docs: list[dict]) -> None:  # type: ignore[type-arg]
        docs[0]["resources"].append("secret.yaml")

    def two_faults(docs: list[dict]) -> None:  # type: ignore[type-arg]
        pod = next(d for d in docs if d["kind"] == "Pod")
        container = pod["spec"]["containers"][0]
        container["volumeMounts"][0]["mountPath"] = "/etc/secret"
        env = next(e for e in container["env"] if e["name"] == "POD_NAMESPACE")
        env.pop("valueFrom")
        env["value"] = "lab-00"

    def run_once_and_overlap(docs: list[dict]) -> None:  # type: ignore[type-arg]
        by_kind = {d["kind"]: d for d in docs}
        by_kind["Job"]["spec"]["completions"] = 1
        by_kind["CronJob"]["spec"]["concurrencyPolicy"] = "Allow"

    _edit_yaml(starter / "kustomization.yaml", add_secret)
    _edit_yaml(starter / "pod.yaml", two_faults)
    _edit_yaml(starter / "batch.yaml", run_once_and_overlap)


def _half_01(lab: labs.Lab, sub: Path) -> None:
    """The parent right, and a controller that never writes status."""
    shutil.copy(_solution(lab, "configmapset.yaml"), sub / "starter/configmapset.yaml")
    source = _solution(lab, "controller.py").read_text()
    status_write = "if any(seen.get(key) != value for key, value in status.items()):"
    assert source.count(status_write) == 1
    (sub / "starter/controller.py").write_text(source.replace(status_write, "if False:"))


def _half_02(lab: labs.Lab, sub: Path) -> None:
    """A Deployment with a wrong surge; Service and rollout left undone."""
    shutil.copy(_solution(lab, "base/deployment.yaml"), sub / "starter/base/deployment.yaml")

    def surge_0(docs: list[dict]) -> None:  # type: ignore[type-arg]
        docs[0]["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 0

    _edit_yaml(sub / "starter/base/deployment.yaml", surge_0)


def _half_03(lab: labs.Lab, sub: Path) -> None:
    """HPA and PDB fixed; the Deployment as handed out (no CPU request, no preStop), and the
    leftover second budget still there."""
    for name in ("hpa.yaml", "pdb.yaml"):
        shutil.copy(_solution(lab, name), sub / "starter" / name)


def _half_04(lab: labs.Lab, sub: Path) -> None:
    """The solution with an unnamed Service port and claims deleted on scale-down; no update."""
    shutil.rmtree(sub / "starter")
    shutil.copytree(lab.directory / "solution", sub / "starter")

    def unnamed_port(docs: list[dict]) -> None:  # type: ignore[type-arg]
        del docs[0]["spec"]["ports"][0]["name"]

    def delete_when_scaled(docs: list[dict]) -> None:  # type: ignore[type-arg]
        docs[0]["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] = "Delete"

    _edit_yaml(sub / "starter/service.yaml", unnamed_port)
    _edit_yaml(sub / "starter/statefulset.yaml", delete_when_scaled)


def _half_05(lab: labs.Lab, sub: Path) -> None:
    """Backends and Gateway done; the route splits 50/50 and its header rule takes any value."""
    for name in ("deployments.yaml", "services.yaml", "gateway.yaml"):
        shutil.copy(_solution(lab, name), sub / "starter" / name)
    shutil.copy(_solution(lab, "httproute.yaml"), sub / "starter/httproute.yaml")

    def loosen(docs: list[dict]) -> None:  # type: ignore[type-arg]
        header_rule, canary_rule = docs[0]["spec"]["rules"]
        header_rule["matches"][0]["headers"][0].update(type="RegularExpression", value=".*")
        for ref in canary_rule["backendRefs"]:
            ref["weight"] = 50

    _edit_yaml(sub / "starter/httproute.yaml", loosen)


def _half_06(lab: labs.Lab, sub: Path) -> None:
    """The solution, except the article's Role (lists secrets) and a quota without memory; Pod
    Security left undone."""
    shutil.rmtree(sub / "starter")
    shutil.copytree(lab.directory / "solution", sub / "starter")

    def articles_role(docs: list[dict]) -> None:  # type: ignore[type-arg]
        role = next(d for d in docs if d["kind"] == "Role")
        role["rules"] = [
            {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "list"]}
        ]

    def no_memory(docs: list[dict]) -> None:  # type: ignore[type-arg]
        del docs[0]["spec"]["hard"]["requests.memory"]

    _edit_yaml(sub / "starter/rbac.yaml", articles_role)
    _edit_yaml(sub / "starter/quota.yaml", no_memory)


def _half_07(lab: labs.Lab, sub: Path) -> None:
    """The solution's files, except a burn rate written in percent and an HPA capped above the
    plan; priority left undone. The answer cells are left as handed out, so the notebook writes
    nothing into the plan."""
    shutil.rmtree(sub / "starter")
    shutil.copytree(lab.directory / "solution", sub / "starter")

    def percent(docs: list[dict]) -> None:  # type: ignore[type-arg]
        docs[0]["data"]["burn-rate"] = "1.44"

    def capped_at_20(docs: list[dict]) -> None:  # type: ignore[type-arg]
        docs[0]["spec"]["maxReplicas"] = 20

    def no_priority(docs: list[dict]) -> None:  # type: ignore[type-arg]
        del docs[0]["spec"]["template"]["spec"]["priorityClassName"]

    _edit_yaml(sub / "starter/capacity-plan.yaml", percent)
    _edit_yaml(sub / "starter/hpa.yaml", capped_at_20)
    _edit_yaml(sub / "starter/deployment.yaml", no_priority)


def _half_08(lab: labs.Lab, sub: Path) -> None:
    """The solution, except no limits on the web container, liveness on the readiness
    endpoint, and one web replica."""
    shutil.rmtree(sub / "starter")
    shutil.copytree(lab.directory / "solution", sub / "starter")

    def three_faults(docs: list[dict]) -> None:  # type: ignore[type-arg]
        web = next(d for d in docs if d["kind"] == "Deployment")
        web["spec"]["replicas"] = 1
        container = web["spec"]["template"]["spec"]["containers"][0]
        del container["resources"]["limits"]
        container["livenessProbe"]["httpGet"]["path"] = "/healthz"

    _edit_yaml(sub / "starter/shop.yaml", three_faults)


def _half_09(lab: labs.Lab, sub: Path) -> None:
    """The solution, except shop-web's image and shop-api's PORT still broken."""
    shutil.rmtree(sub / "starter")
    shutil.copytree(lab.directory / "solution", sub / "starter")

    def two_faults(docs: list[dict]) -> None:  # type: ignore[type-arg]
        by_name = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
        by_name["shop-web"]["spec"]["template"]["spec"]["containers"][0]["image"] = (
            "kubelab/demo-web:v1.1"
        )
        api = by_name["shop-api"]["spec"]["template"]["spec"]["containers"][0]
        api["env"] = [{"name": "PORT", "value": "80800"}]

    _edit_yaml(sub / "starter/shop.yaml", two_faults)


@dataclass(frozen=True)
class Case:
    """One lab's round trip: what "solved" types into its answer cells, how "half" is made, and
    the points "half" must get."""

    lab: str
    half: Callable[[labs.Lab, Path], None]
    half_points: dict[str, float]
    answers: dict[str, str] = field(default_factory=dict)


CASES = [
    # Lab 00: the Secret mounted at the wrong path (1 of 2), POD_NAMESPACE typed in, a Job of one
    # completion, a CronJob at the right time that may overlap (1 of 2), no DaemonSet pods.
    Case(
        "00-first-objects",
        _half_00,
        {
            "pod": 2,
            "selector": 2,
            "config": 1,
            "namespace": 0,
            "job": 0,
            "cronjob": 1,
            "daemonset": 0,
        },
        answers={
            "secret": "!kubectl delete secret quote-token -n {grader.namespace}"
            " --ignore-not-found\n!kubectl create secret generic quote-token -n {grader.namespace}"
            " --from-literal=token=not-real"
        },
    ),
    # Lab 01: reconcile meets 2 of its 3 requirements (status never written).
    Case(
        "01-control-loop",
        _half_01,
        {
            "custom-resource": 2,
            "reconcile": 2,
            "self-healing": 3,
            "owner-references": 2,
            "idempotent": 2,
        },
    ),
    # Lab 02: 2 of 3 deployment requirements met -> 2 of 3 points.
    Case(
        "02-deployment",
        _half_02,
        {
            "deployment": 2,
            "resources": 2,
            "probes": 2,
            "security": 1,
            "service": 0,
            "rolling-update": 0,
            "dev-overlay": 0,
        },
        answers={
            "rollout": "!kubectl set image deployment/demo-web web=kubelab/demo-web:v2"
            " -n {grader.namespace}\n"
            "!kubectl rollout status deployment/demo-web -n {grader.namespace} --timeout=90s"
        },
    ),
    # Lab 03: the HPA meets 3 of 4 (no CPU request); two budgets over the pods make the live
    # dry-run eviction fail (500); with no CPU request the HPA cannot react, so no load is put on.
    Case(
        "03-hpa-pdb",
        _half_03,
        {
            "hpa": 2,
            "pdb": 2,
            "unhealthy-eviction": 2,
            "eviction": 2,
            "graceful-shutdown": 0,
            "scales-under-load": 0,
        },
        answers={
            "delete-freeze": "!kubectl delete pdb demo-web-freeze -n {grader.namespace}"
            " --ignore-not-found"
        },
    ),
    # Lab 04: 3 of 4 Service requirements met -> 1 of 2 points; claims deleted when scaled.
    Case(
        "04-statefulset",
        _half_04,
        {
            "headless-service": 1,
            "statefulset": 3,
            "storage": 2,
            "retention": 0,
            "staged-update": 0,
        },
        answers={
            "stage": "stage = '"
            '{"spec": {"updateStrategy": {"rollingUpdate": {"partition": 2}}}}'
            "'\n"
            "!kubectl patch statefulset demo-db -n {grader.namespace} -p '{stage}'\n"
            "!kubectl set image statefulset/demo-db db=postgres:16.6 -n {grader.namespace}\n"
            "!kubectl rollout status statefulset/demo-db -n {grader.namespace} --timeout=90s"
        },
    ),
    # Lab 05: attached but 50/50 (1 of 2 -> 1 of 3 points); the header rule sends "true" to v2
    # but also every other value (1 of 2 -> 1 of 2 points).
    Case(
        "05-gateway-canary",
        _half_05,
        {"backends": 3, "gateway": 2, "canary-route": 1, "header-route": 1},
    ),
    # Lab 06: least privilege 3 of 4 (it may also list and watch secrets); quota 1 of 3
    # (requests.memory missing, an oversized-memory pod admitted); no image policy applied.
    Case(
        "06-rbac-policy",
        _half_06,
        {
            "service-account": 2,
            "least-privilege": 3,
            "default-deny": 2,
            "allow-rules": 4,
            "limits": 2,
            "quota": 1,
            "pod-security": 0,
            "image-policy": 0,
        },
        answers={
            "enforce": "!kubectl label ns {grader.namespace}"
            " pod-security.kubernetes.io/enforce=restricted --overwrite\n"
            'grader.apply(f"{MANIFESTS}")',
            "pin-images": "!kubectl apply -f {MANIFESTS}/image-policy.yaml\n"
            "!kubectl label ns {grader.namespace} image-policy=pinned --overwrite",
        },
    ),
    # Lab 07: burn rate 1 of 2 requirements; the HPA 3 of 4 (max not the plan's) -> 2 of 3.
    # "solved" types the arithmetic, which the notebook writes into the plan.
    Case(
        "07-slo-capacity",
        _half_07,
        {
            "error-budget": 2,
            "burn-rate": 1,
            "capacity": 3,
            "requests": 2,
            "autoscaling": 2,
            "priority": 0,
        },
        answers={
            "answer-error-budget": "error_budget_minutes = (1 - SLO) * WINDOW_DAYS * 24 * 60\n"
            "error_budget_requests = (1 - SLO) * WINDOW_DAYS * REQUESTS_PER_DAY",
            "answer-burn-rate": "burn_rate = ERROR_RATIO / (1 - SLO)\n"
            "hours_to_exhaustion = WINDOW_DAYS * 24 / burn_rate",
            "answer-capacity": 'cpu_request = "250m"\n'
            "min_replicas = math.ceil(P95_RPS / (POD_RPS * TARGET))\n"
            "max_replicas = math.ceil(P95_RPS * BURST / (POD_RPS * TARGET))",
        },
    ),
    # Lab 08: requests but no limits (1 of 2), its own liveness probe on the readiness endpoint
    # (1 of 2), one web replica (0 of 1); the rest of the review passes.
    Case(
        "08-production-readiness",
        _half_08,
        {
            "requests-limits": 1,
            "liveness-probe": 1,
            "image-tags": 1,
            "non-root": 2,
            "read-only-root": 1,
            "pdb": 2,
            "prestop": 2,
            "backup-policy": 2,
            "replicas": 0,
        },
    ),
    # Lab 09: shop-web's tag and shop-api's PORT left broken; the probe and the pin are fixed.
    Case(
        "09-fault-drills",
        _half_09,
        {"image-pull": 0, "crash-loop": 0, "readiness": 2, "node-not-ready": 2},
    ),
]


def test_every_lab_has_a_round_trip() -> None:
    assert [c.lab for c in CASES] == [lab.id for lab in labs.all_labs()]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.lab for c in CASES])
def test_autograde_gives_full_zero_and_partial_marks(
    case: Case, tmp_path: Path, kubeconfig: Path, kubectl: Kubectl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBELAB_CONTROLLER", raising=False)  # lab 01's notebook must set it
    lab = labs.find(case.lab)
    course = make_course(tmp_path / "course")
    nbgrader(course, "generate_assignment", lab.id, "--force")
    assert not (course / "release" / lab.id / "solution").exists()

    solved = submit_solution(course, lab.id, "solved", lab.directory / "solution")
    for grade_id, source in case.answers.items():
        answer(solved / "lab.ipynb", grade_id, source)
    submit(course, lab.id, "untouched")
    case.half(lab, submit(course, lab.id, "half"))

    found = autograde_all(
        course,
        lab.id,
        ["solved", "untouched", "half"],
        kubeconfig=kubeconfig,
        home=tmp_path / "home",
        delete_namespace=lambda ns: kubectl("delete", "namespace", ns, "--wait=false", check=False),
    )
    full = {t.id: float(t.points) for t in lab.tasks}
    assert found["solved"] == full
    assert found["untouched"] == dict.fromkeys(full, 0.0)
    assert found["half"] == {k: float(v) for k, v in case.half_points.items()}
    assert found["half"] != full and any(v > 0 for v in found["half"].values())
