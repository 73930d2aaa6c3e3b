"""The grading engine without a cluster: points, rendering, the JSON contract, lab.yaml validation,
quantities, kubectl error condensing, and a crashing check reported as not the learner's fault."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kubelab import apply, labs
from kubelab.errors import KubelabError
from kubelab.grading import Checks, Verdict, render, runner
from kubelab.grading.context import Context
from kubelab.grading.quantity import parse
from kubelab.grading.result import CheckResult, Report


def _verdict(met: int, failed: int) -> Verdict:
    v = Verdict()
    for _ in range(met):
        v.expect(True, "", "")
    for i in range(failed):
        v.expect(False, f"problem {i}", f"hint {i}")
    return v


@pytest.mark.parametrize(
    ("met", "failed", "max_points", "points"),
    [(3, 0, 3, 3), (2, 1, 3, 2), (1, 2, 3, 1), (0, 3, 3, 0), (3, 1, 2, 1), (1, 1, 1, 0)],
)
def test_points_are_whole_shares_of_requirements_met(
    met: int, failed: int, max_points: int, points: int
) -> None:
    assert runner.points_for(_verdict(met, failed), max_points) == points


REPORT = Report(
    "02-deployment",
    "Deployment and Service",
    "lab-02",
    (
        CheckResult("deployment", "Deployment", True, 3, 3, "3/3 available"),
        CheckResult(
            "probes", "Probes", False, 1, 2, "liveness <copy>", "Use /livez. Docs: https://k8s.io/x"
        ),
    ),
)


def test_json_contract_shape() -> None:
    data = json.loads(REPORT.to_json())
    assert data == {
        "lab": "02-deployment",
        "namespace": "lab-02",
        "score": 4,
        "max_score": 5,
        "checks": [
            {
                "id": "deployment",
                "title": "Deployment",
                "passed": True,
                "outcome": "passed",
                "points": 3,
                "max_points": 3,
                "message": "3/3 available",
                "hint": None,
                "problems": [],
            },
            {
                "id": "probes",
                "title": "Probes",
                "passed": False,
                "outcome": "failed",
                "points": 1,
                "max_points": 2,
                "message": "liveness <copy>",
                "hint": "Use /livez. Docs: https://k8s.io/x",
                "problems": [],
            },
        ],
    }


def test_text_and_html_rendering() -> None:
    table = render.text(REPORT, width=80)
    assert "✔ deployment" in table and "◐ probes" in table and "hint: Use /livez." in table
    assert "4/5 points" in table and "\033[" not in table
    html = REPORT._repr_html_()
    assert "liveness &lt;copy&gt;" in html  # escaped
    assert '<a href="https://k8s.io/x"' in html


def _write_lab(tmp_path: Path, body: str, name: str = "09-demo") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "lab.yaml").write_text(body)
    return folder / "lab.yaml"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("id: 09-demo\ntitle: x\nnamespace: lab-09\ntasks: [\n", "not valid YAML"),
        ("id: 08-other\ntitle: x\nnamespace: lab-09\n", "equal the folder name"),
        ("id: 09-demo\ntitle: x\nnamespace: Lab_09\ntasks: []\n", "DNS label"),
        ("id: 09-demo\ntitle: x\nnamespace: lab-09\ntasks: []\n", "non-empty list"),
        (
            "id: 09-demo\ntitle: x\nnamespace: lab-09\ntasks: [{id: a, title: A, points: 0}]\n",
            "positive whole number",
        ),
        (
            "id: 09-demo\ntitle: x\nnamespace: lab-09\n"
            "tasks: [{id: a, title: A, points: 1}, {id: a, title: B, points: 1}]\n",
            "unique ids",
        ),
        (
            "id: 09-demo\ntitle: x\nnamespace: lab-09\ntasks: [{id: a, title: A, points: 1}]\n"
            "cluster_setup: crds/\n",
            "cluster_setup must name a file or folder of the lab",
        ),
        (
            "id: 09-demo\ntitle: x\nnamespace: lab-09\ntasks: [{id: a, title: A, points: 1}]\n"
            "setup: [a]\n",
            "setup must name a file or folder of the lab",
        ),
        (
            "id: 09-demo\ntitle: x\nnamespace: lab-09\ntasks: [{id: a, title: A, points: 1}]\n"
            "timeout: soon\n",
            "timeout must be a positive number of seconds",
        ),
    ],
)
def test_lab_yaml_is_validated(tmp_path: Path, body: str, needle: str) -> None:
    with pytest.raises(KubelabError, match=needle):
        labs.load(_write_lab(tmp_path, body))


def test_a_lab_sets_its_own_grading_budget(tmp_path: Path) -> None:
    body = "id: 09-demo\ntitle: x\nnamespace: lab-09\ntasks: [{id: a, title: A, points: 1}]\n"
    assert labs.load(_write_lab(tmp_path, body)).timeout == labs.DEFAULT_TIMEOUT
    slow_body = body.replace("09-demo", "10-demo") + "timeout: 180\n"
    slow = labs.load(_write_lab(tmp_path, slow_body, name="10-demo"))
    assert slow.timeout == 180.0
    # lab 04's postgres pods start in order on kind: its checks get the longer budget
    assert labs.find("04").timeout > labs.DEFAULT_TIMEOUT


def test_labs_are_found_by_id_or_number() -> None:
    assert labs.find("02").id == labs.find("2").id == labs.find("02-deployment").id
    with pytest.raises(KubelabError, match="unknown lab"):
        labs.find("nope")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", 0.25),
        ("1", 1),
        ("512Mi", 512 * 2**20),
        ("1Gi", 2**30),
        ("1.5G", 1.5e9),
        ("2k", 2000),
    ],
)
def test_quantities(text: str, value: float) -> None:
    assert float(parse(text) or -1) == pytest.approx(value)
    assert parse("lots") is None


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (
            'Error from server (BadRequest): error when creating "d.yaml": Deployment in version '
            '"v1" cannot be handled as a Deployment: strict decoding error: '
            'unknown field "spec.replica"',
            'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
            'unknown field "spec.replica"',
        ),
        (
            'error: resource mapping not found for name: "x" namespace: "" from "d.yaml": no '
            'matches for kind "Deploymnt" in version "apps/v1"\nensure CRDs are installed first',
            'from "d.yaml": no matches for kind "Deploymnt" in version "apps/v1"',
        ),
        ("Warning: something\nerror: one\nerror: two\n", "one (and 1 more)"),
    ],
)
def test_kubectl_errors_are_condensed_to_one_line(stderr: str, expected: str) -> None:
    assert apply.condense(stderr) == expected


MISSPELT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "demo-web"},
    "spec": {
        "replicas": 3,
        "template": {"spec": {"containers": [{"name": "web", "imagePullPolicyy": "Always"}]}},
    },
}
FIELD = "spec.template.spec.containers[0].imagePullPolicyy"
# What kubectl prints for a misspelt field on an object that exists: the whole patch as escaped
# JSON (with -f), or as a Go map with no file or object named at all (with -k).
_LAST_APPLIED = json.dumps(json.dumps(MISSPELT))
PATCH_ERROR = (
    "Error from server (Invalid): error when applying patch:\n"
    f'{{"metadata":{{"annotations":{{"kubectl.kubernetes.io/last-applied-configuration":'
    f"{_LAST_APPLIED}}}}}}}\n"
    "to:\n"
    'Resource: "apps/v1, Resource=deployments", GroupVersionKind: "apps/v1, Kind=Deployment"\n'
    'Name: "demo-web", Namespace: "lab-02"\n'
    'for: "base/deployment.yaml": error when patching "base/deployment.yaml":  "" is invalid: '
    f'patch: Invalid value: "map[metadata:map[{_LAST_APPLIED}]]": strict decoding error: '
    f'unknown field "{FIELD}"\n'
)
KUSTOMIZE_ERROR = (
    f'The request is invalid: patch: Invalid value: "map[metadata:map[{_LAST_APPLIED}]]": '
    f'strict decoding error: unknown field "{FIELD}"\n'
)


@pytest.mark.parametrize(
    ("output", "source"),
    [(PATCH_ERROR, "base/deployment.yaml"), (KUSTOMIZE_ERROR, "overlays/prod")],
)
def test_a_misspelt_field_is_one_line_naming_file_object_and_field(
    output: str, source: str
) -> None:
    assert len(output) > 300  # the escaped patch the learner used to read first
    objects = [(source, {"kind": "Service", "metadata": {"name": "demo-web"}}), (source, MISSPELT)]
    line = apply.strict_field_errors(output, objects)
    assert line == f'{source}: Deployment demo-web: unknown field "{FIELD}"'


def test_misspelt_fields_are_grouped_by_object() -> None:
    config = {"kind": "ConfigMap", "metadata": {"name": "x"}, "dat": {}, "kindd": "y"}
    output = (
        'Error from server (BadRequest): error when creating "cm.yaml": ConfigMap in version "v1" '
        'cannot be handled as a ConfigMap: strict decoding error: unknown field "dat", '
        'unknown field "kindd"'
    )
    assert apply.strict_field_errors(output, [("cm.yaml", config)]) == (
        'cm.yaml: ConfigMap x: unknown fields "dat", "kindd"'
    )
    assert apply.strict_field_errors("Error from server (Forbidden): no", []) is None


def test_every_failed_requirement_is_listed_with_its_own_hint() -> None:
    lab = labs.find("02-deployment")
    checks = Checks(lab.id)

    @checks.check("probes", docs="https://example.org/probes")
    def five_problems(ctx: Context) -> Verdict:
        return _verdict(1, 5)

    ctx = Context(None, "ns", deadline=time.monotonic() + 1)  # type: ignore[arg-type]
    result = runner.run_check(lab, lab.task("probes"), checks.by_task["probes"], ctx)
    wanted = [(f"problem {i}", f"hint {i}") for i in range(5)]
    assert result.problems == tuple(wanted)
    assert "more" not in result.message and "problem 4" in result.message
    assert result.hint == "hint 0 Docs: https://example.org/probes"

    report = Report(lab.id, lab.title, "ns", (result,))
    listed = json.loads(report.to_json())["checks"][0]["problems"]
    assert listed == [{"message": m, "hint": h} for m, h in wanted]
    assert Report.from_dict(json.loads(report.to_json())).checks[0].problems == result.problems

    table = render.text(report, width=100)
    for i in range(5):
        assert f"• problem {i}" in table
    assert "hint: hint 0 Docs: https://example.org/probes" in table
    assert all(f"hint: hint {i}" in table for i in range(1, 5))
    html = report._repr_html_()
    assert all(f"💡 hint {i}" in html for i in range(5)) and "problem 4" in html


def test_a_crashing_check_is_a_grader_error_not_the_learners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBELAB_CACHE", str(tmp_path))
    lab = labs.find("02-deployment")
    checks = Checks(lab.id)

    @checks.check("deployment", docs="https://example.org")
    def broken(ctx: Context) -> Verdict:
        raise KeyError("spec")

    @checks.check("service", docs="https://example.org")
    def empty(ctx: Context) -> Verdict:
        return Verdict()  # tests nothing: a grader bug, never a pass

    ctx = Context(None, "ns", deadline=time.monotonic() + 1)  # type: ignore[arg-type]
    for task_id in ("deployment", "service"):
        result = runner.run_check(lab, lab.task(task_id), checks.by_task[task_id], ctx)
        assert not result.passed and result.points == 0
        assert result.message.startswith("grader error (not your fault)")
    log = (tmp_path / "logs" / "grader-error.log").read_text()
    assert "KeyError" in log and "tested no requirement" in log


def test_a_grader_that_cannot_load_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBELAB_CACHE", str(tmp_path / "cache"))
    body = "id: 09-demo\ntitle: x\nnamespace: lab-09\ntasks: [{id: a, title: A, points: 1}]\n"
    lab = labs.load(_write_lab(tmp_path, body))  # no graders/lab09_demo.py exists
    with pytest.raises(KubelabError, match=r"grader error \(not your fault\).*09-demo"):
        runner.run(lab, namespace="ns")
    assert "ModuleNotFoundError" in (tmp_path / "cache/logs/grader-error.log").read_text()


def test_a_state_that_never_settles_is_not_converged_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBELAB_CACHE", str(tmp_path))
    monkeypatch.setenv("KUBELAB_DATA", str(tmp_path / "data"))
    lab = labs.find("03-hpa-pdb")
    checks = Checks(lab.id)
    polls: list[float] = []

    @checks.check("pdb", docs="https://example.org")
    def slow(ctx: Context) -> Verdict:
        v = Verdict()
        ready = ctx.converge(
            lambda: polls.append(time.monotonic()) or 2, lambda n: n == 3, what="3 Ready pods"
        )
        v.expect(ready == 3, "never judged", "")
        return v

    ctx = Context(None, "ns", deadline=time.monotonic() + 0.3, timeout=0.3)  # type: ignore[arg-type]
    result = runner.run_check(lab, lab.task("pdb"), checks.by_task["pdb"], ctx)
    assert len(polls) >= 2  # it really waited, until the deadline
    assert result.not_converged and result.outcome == "not-converged"
    assert not result.passed and result.points == 0 and result.max_points == 2
    assert "not converged: waited for 3 Ready pods until the 0.3 s" in result.message
    assert "kubelab check 03-hpa-pdb --task pdb" in (result.hint or "")
    assert not (tmp_path / "logs" / "grader-error.log").exists()  # not a grader bug

    passed = CheckResult("hpa", "HPA", True, 3, 3, "ok")
    report = Report(lab.id, lab.title, "ns", (passed, result))
    assert report.not_converged == ("pdb",) and not report.passed
    data = json.loads(report.to_json())
    assert [c["outcome"] for c in data["checks"]] == ["passed", "not-converged"]
    assert Report.from_dict(data, title=lab.title) == report
    table = render.text(report, width=100)
    assert "⧖ pdb" in table and "-/2" in table and "1 not converged" in table
    html = report._repr_html_()
    assert "not converged" in html and "#e3f2fd" in html


def test_a_not_converged_check_keeps_the_saved_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubelab.grading import saved_progress

    monkeypatch.setenv("KUBELAB_DATA", str(tmp_path))
    lab = labs.find("03-hpa-pdb")
    passed = CheckResult("pdb", "PDB", True, 2, 2, "ok")
    saved_progress.record(Report(lab.id, lab.title, "ns", (passed,)))
    unsettled = CheckResult("pdb", "PDB", False, 0, 2, "not converged", None, not_converged=True)
    saved_progress.record(Report(lab.id, lab.title, "ns", (unsettled,)))
    assert saved_progress.passed_tasks(lab) == {"pdb": True}


@pytest.mark.parametrize(
    ("spec", "expected", "required"),
    [
        ({"minAvailable": 2}, 3, 2),
        ({"minAvailable": "50%"}, 3, 2),  # rounded up, as the disruption controller does
        ({"maxUnavailable": 1}, 3, 2),
        ({"maxUnavailable": "34%"}, 3, 1),  # 34% of 3 rounds up to 2 unavailable
        ({"minAvailable": 3}, 3, 3),
        ({}, 3, 0),
    ],
)
def test_a_budgets_required_pods_are_worked_out_as_the_controller_does(
    spec: dict[str, object], expected: int, required: int
) -> None:
    from kubelab.graders.lab03_hpa_pdb import required_healthy

    assert required_healthy(spec, expected) == required


class _Cells(HTMLParser):
    """Each cell's style and text, and the table's style, of a scorecard."""

    def __init__(self) -> None:
        super().__init__()
        self.table_style = ""
        self.cells: list[tuple[str, str]] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        style = dict(attrs).get("style") or ""
        if tag == "table":
            self.table_style = style
        if tag == "td":
            self.cells.append((style, ""))

    def handle_data(self, data: str) -> None:
        if self.cells:
            style, text = self.cells[-1]
            self.cells[-1] = (style, text + data)


def test_the_scorecard_wraps_long_links_and_paths_instead_of_overflowing() -> None:
    long_url = "https://kubernetes.io/docs/tasks/configure-pod-container/" + "x" * 120
    long_path = "spec.template.spec.containers[0]." + "securityContext." * 8
    result = CheckResult(
        "security", "Security", False, 0, 2, f"{long_path} not set", f"Set it. Docs: {long_url}"
    )
    cells = _Cells()
    cells.feed(Report("02-deployment", "Lab", "ns", (result,))._repr_html_())
    assert "table-layout:fixed" in cells.table_style and "width:100%" in cells.table_style
    (notes,) = [style for style, text in cells.cells if long_url in text]
    assert "overflow-wrap:anywhere" in notes and "nowrap" not in notes
    (title,) = [style for style, text in cells.cells if "Security" in text]
    assert "overflow-wrap:anywhere" in title  # a long task id wraps too
