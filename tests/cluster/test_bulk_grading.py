"""Bulk grading on the sim cluster: each submission in its own namespace, as a ServiceAccount that
reaches nothing else, its notebook in the sandbox; hostile submissions harm nothing.

One bulk run of lab 02 grades five submissions with two workers at once:
- solved: the reference answer (full marks);
- untouched: the release as handed out (0);
- hostile: tries to delete other namespaces (another submission's included), bind itself to
  cluster-admin, read another namespace's Secret, read and overwrite the instructor's files, and
  reach a server on the host's loopback;
- looper: solved manifests, then loops forever in the last answer: that cell is stopped at the
  cell time limit and costs its task only, as in nbgrader;
- forkbomb: forks without end: the sandbox's process cap holds, the wall limit ends it, and the
  row still comes (status timeout, 0 for the tasks never reached).

A bulk run of lab 03 checks that grading is bounded (outputs capped in bytes), explained (tampered
grade cells, nbgrader's log) and that a state which does not converge is graded again, not scored
lower.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelab import access, api, labs
from kubelab.course import write_course_config
from kubelab.instructor import bulk, commands, output_caps, submissions
from tests.cluster.test_nbgrader_roundtrip import CASES, Case
from tests.conftest import Kubectl
from tests.nbgrader_course import answer, nbgrader, scores, submit, submit_solution

LAB = labs.find("02-deployment")
ROLLOUT = (
    "!kubectl set image deployment/demo-web web=kubelab/demo-web:v2 -n {grader.namespace}\n"
    "!kubectl rollout status deployment/demo-web -n {grader.namespace} --timeout=90s"
)


def _hostile(sentinel: str, victim: str, private: list[Path], port: int) -> str:
    return f"""
import pathlib, socket, subprocess
def attempt(name, argv):
    run = subprocess.run(argv, capture_output=True, text=True)
    print("ATTEMPT", name, run.returncode, (run.stdout + run.stderr).strip()[:200])
attempt("delete-namespace", ["kubectl", "delete", "namespace", "{sentinel}", "--wait=false"])
attempt("delete-victim", ["kubectl", "delete", "namespace", "{victim}", "--wait=false"])
attempt("delete-kube-system", ["kubectl", "delete", "pods", "--all", "-n", "kube-system"])
attempt("cluster-admin", ["kubectl", "create", "clusterrolebinding", "pwned",
         "--clusterrole=cluster-admin", "--group=system:serviceaccounts"])
attempt("read-secret", ["kubectl", "get", "secret", "keep", "-n", "{sentinel}", "-o", "yaml"])
for path in {[str(p) for p in private]!r}:
    try:
        print("ATTEMPT read", path, pathlib.Path(path).read_text()[:50])
    except Exception as err:
        print("ATTEMPT read", path, "failed", type(err).__name__)
try:
    pathlib.Path("{private[0]}").write_text("pwned")
    print("ATTEMPT write ok")
except Exception as err:
    print("ATTEMPT write failed", type(err).__name__)
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).sendall(b"pwned")
    print("ATTEMPT connect ok")
except Exception as err:
    print("ATTEMPT connect failed", type(err).__name__)
"""


FORK_BOMB = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on the host's loopback that records anything that reaches it."""
    server = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def serve() -> None:
        server.settimeout(1)
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            got.append(conn.recv(100))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], got
    server.close()


@pytest.mark.slow
def test_bulk_grading_contains_hostile_submissions(
    tmp_path: Path,
    kubeconfig: Path,
    client: api.Api,
    kubectl: Kubectl,
    listener: tuple[int, list[bytes]],
) -> None:
    port, reached_host = listener
    course = tmp_path / "course"
    write_course_config(course)
    nbgrader(course, "generate_assignment", LAB.id, "--force")
    instructor_file = tmp_path / "instructor-notes.txt"
    instructor_file.write_text("grades are private")
    sentinel = "instructor-private"
    kubectl("create", "namespace", sentinel, check=False)
    kubectl(
        "-n", sentinel, "create", "secret", "generic", "keep", "--from-literal=k=v", check=False
    )
    victim = submissions.namespace_for(LAB, "solved")
    private = [instructor_file, course / "gradebook.db", kubeconfig]  # admin credentials

    solved = submit_solution(course, LAB.id, "solved", LAB.directory / "solution")
    answer(solved / "lab.ipynb", "rollout", ROLLOUT)
    submit(course, LAB.id, "untouched")
    hostile = submit(course, LAB.id, "hostile")
    answer(hostile / "lab.ipynb", "manifests", _hostile(sentinel, victim, private, port))
    looper = submit_solution(course, LAB.id, "looper", LAB.directory / "solution")
    answer(looper / "lab.ipynb", "rollout", "while True:\n    pass")
    bomb = submit(course, LAB.id, "forkbomb")
    answer(bomb / "lab.ipynb", "manifests", FORK_BOMB)

    students = ["forkbomb", "hostile", "looper", "solved", "untouched"]
    settings = bulk.Settings(workers=2, wall_seconds=90, cell_timeout=25, check_timeout=60)
    rows = {r.student: r for r in bulk.grade_all(course, LAB, students, client, settings)}
    commands.write_reports(course)

    full = {t.id: float(t.points) for t in LAB.tasks}
    zero = dict.fromkeys(full, 0.0)
    assert rows["solved"].points == full and rows["solved"].status == "graded"
    assert rows["untouched"].points == zero and rows["untouched"].status == "graded"
    assert rows["hostile"].points == zero
    assert rows["looper"].status == "graded" and "cell time limit" in rows["looper"].message
    assert rows["looper"].points == {**full, "rolling-update": 0.0}
    assert rows["forkbomb"].points == zero and rows["forkbomb"].status == "timeout"

    # The hostile code really ran, and every attempt failed.
    executed = json.loads((course / "autograded/hostile" / LAB.id / "lab.ipynb").read_text())
    printed = "".join(
        "".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])
    )
    attempts = [line for line in printed.splitlines() if line.startswith("ATTEMPT")]
    assert len(attempts) == 10, printed
    for name in ("delete-namespace", "delete-victim", "delete-kube-system", "cluster-admin"):
        line = next(a for a in attempts if a.startswith(f"ATTEMPT {name} "))
        assert " 1 " in line and "forbidden" in line.lower(), line
    assert "forbidden" in next(a for a in attempts if "read-secret" in a).lower()
    assert all("failed" in a for a in attempts if a.startswith(("ATTEMPT read /", "ATTEMPT write")))
    assert any(a.startswith("ATTEMPT connect failed") for a in attempts)

    # ...and harmed nothing.
    assert instructor_file.read_text() == "grades are private"
    assert reached_host == []
    assert client.get(api.NAMESPACES, sentinel) is not None
    assert kubectl("-n", sentinel, "get", "secret", "keep", "-o", "name").stdout.strip()
    assert client.get(access.CLUSTERROLEBINDINGS, "pwned") is None

    # Gradebook and feedback: a row per submission, per-task points, status; hints in feedback.
    table = {r["student"]: r for r in csv.DictReader((course / "gradebook.csv").open())}
    assert set(table) == set(students)
    assert table["solved"]["total"] == "14" and table["forkbomb"]["status"] == "timeout"
    assert table["looper"]["02:rolling-update"] == "0" and table["looper"]["02:deployment"] == "3"
    page = (course / commands.FEEDBACK_DIR / "untouched" / f"{LAB.id}.html").read_text()
    assert "💡" in page  # every failed check carries a hint
    page = (course / commands.FEEDBACK_DIR / "forkbomb" / f"{LAB.id}.html").read_text()
    assert "not run" in page and "timeout" in page
    # nbgrader's own gradebook holds the same points.
    assert scores(course, LAB.id, "solved") == full
    assert scores(course, LAB.id, "hostile") == zero
    assert scores(course, LAB.id, "looper") == rows["looper"].points

    # Every grading namespace and grant is gone (deletion may still be finishing).
    for student in students:
        ns = client.get(api.NAMESPACES, submissions.namespace_for(LAB, student))
        assert ns is None or ns.get("metadata", {}).get("deletionTimestamp")
        grant = f"kubelab:own:{submissions.namespace_for(LAB, student)}"
        assert client.get(access.CLUSTERROLEBINDINGS, grant) is None
    kubectl("delete", "namespace", sentinel, "--wait=false", check=False)
    shutil.rmtree(course, ignore_errors=True)


def _kubelab(*args: str, kubeconfig: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    return subprocess.run(
        [str(Path(sys.executable).parent / "kubelab"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_grade_commands_from_release_to_gradebook(tmp_path: Path, kubeconfig: Path) -> None:
    course = tmp_path / "course"
    run = functools.partial(_kubelab, kubeconfig=kubeconfig, cwd=tmp_path)
    released = run("grade", "release", "02", "--course", str(course))
    assert released.returncode == 0 and not (course / "release" / LAB.id / "solution").exists()

    inbox = tmp_path / "inbox"
    alice = tmp_path / "alice-work"
    shutil.copytree(course / "release" / LAB.id, alice)
    shutil.rmtree(alice / "starter")
    shutil.copytree(LAB.directory / "solution", alice / "starter")
    answer(alice / "lab.ipynb", "rollout", ROLLOUT)
    inbox.mkdir()
    shutil.make_archive(str(inbox / "alice"), "zip", tmp_path, "alice-work")
    shutil.copytree(course / "release" / LAB.id, inbox / "bob" / LAB.id)
    (inbox / "not a student").mkdir()
    collected = run("grade", "collect", "02", str(inbox), "--course", str(course))
    assert collected.returncode == 0, collected.stderr
    assert "collected 2 submissions" in collected.stdout and "not a student id" in collected.stdout

    graded = run("grade", "autograde", "02", "--course", str(course), "--workers", "2")
    assert graded.returncode == 0, graded.stderr
    table = {r["student"]: r for r in csv.DictReader((course / "gradebook.csv").open())}
    assert (table["alice"]["total"], table["bob"]["total"]) == ("14", "0")
    assert table["alice"]["status"] == table["bob"]["status"] == "graded"
    for student in ("alice", "bob"):
        assert (course / commands.FEEDBACK_DIR / student / f"{LAB.id}.html").is_file()
    (course / "gradebook.csv").unlink()
    assert run("grade", "report", "--course", str(course)).returncode == 0
    assert (course / "gradebook.csv").read_text().count("\n") == 3

    # Bad input: one line, exit 2, nothing changed.
    for args, needle in [
        (("grade", "autograde", "02", "--course", str(tmp_path / "empty")), "no submissions"),
        (
            ("grade", "collect", "02", str(tmp_path / "nowhere"), "--course", str(course)),
            "no folder",
        ),
        (("grade", "autograde", "02", "--course", str(course), "--student", "zoe"), "zoe"),
        (("grade", "release", "99", "--course", str(course)), "99"),
    ]:
        bad = run(*args)
        assert bad.returncode == 2 and needle in bad.stderr, (args, bad.stderr)
        assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.lab for c in CASES])
def test_every_lab_grades_in_full_with_confined_credentials(
    case: Case, tmp_path: Path, client: api.Api
) -> None:
    """The confined ServiceAccount can do and read all that every lab needs (CRDs, namespace
    labels, access reviews, quotas), so a solved submission gets every point."""
    lab = labs.find(case.lab)
    course = tmp_path / "course"
    write_course_config(course)
    nbgrader(course, "generate_assignment", lab.id, "--force")
    solved = submit_solution(course, lab.id, "solved", lab.directory / "solution")
    for grade_id, source in case.answers.items():
        answer(solved / "lab.ipynb", grade_id, source)
    settings = bulk.Settings(workers=1, wall_seconds=600, cell_timeout=300)
    (row,) = bulk.grade_all(course, lab, ["solved"], client, settings)
    assert row.status == "graded", row.message
    assert row.points == {t.id: float(t.points) for t in lab.tasks}, [
        c.message for c in row.checks if not c.passed
    ]


LAB03 = labs.find("03-hpa-pdb")


def _forge_grade_cell(notebook: Path) -> None:
    """Add a copy of grade cell pdb that claims to be a grade cell `bonus` worth 100 points."""
    nb = json.loads(notebook.read_text())
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in nb["cells"]]
    real = nb["cells"][ids.index("pdb")]
    forged = json.loads(json.dumps(real))
    forged["id"] = "bonus"
    forged["metadata"]["nbgrader"].update(grade_id="bonus", points=100)
    nb["cells"].append(forged)
    notebook.write_text(json.dumps(nb))


def _never_ready(submission: Path) -> None:
    """demo-web's readiness probe on a path it does not serve: its pods never become Ready."""
    path = submission / "starter" / "deployment.yaml"
    text = path.read_text()
    assert text.count("path: /healthz") == 1
    path.write_text(text.replace("path: /healthz", "path: /not-served"))


@pytest.mark.slow
def test_bulk_grading_is_bounded_explained_and_regrades_what_did_not_converge(
    tmp_path: Path, client: api.Api
) -> None:
    """One bulk run of lab 03: a submission printing 10 MB is capped in bytes, with the cap named
    in its notebook and feedback; a forged grade cell is refused in plain words; an altered one is
    put back and said so; one whose pods never become Ready is not converged, graded again alone,
    and left `not-converged`, never a lower score; nbgrader's log is kept for every one."""
    lab = LAB03
    course = tmp_path / "course"
    write_course_config(course)
    nbgrader(course, "generate_assignment", lab.id, "--force")
    flood = submit(course, lab.id, "flood")
    answer(flood / "lab.ipynb", "manifests", 'print("x" * 10_000_000)')
    _forge_grade_cell(submit(course, lab.id, "forged") / "lab.ipynb")
    altered = submit(course, lab.id, "altered")
    answer(altered / "lab.ipynb", "pdb", 'print("2 points, please")')
    _never_ready(submit_solution(course, lab.id, "stuck", lab.directory / "solution"))

    students = ["altered", "flood", "forged", "stuck"]
    settings = bulk.Settings(workers=2, wall_seconds=240, cell_timeout=20, check_timeout=8)
    rows = {r.student: r for r in bulk.grade_all(course, lab, students, client, settings)}
    commands.write_reports(course)
    table = {r["student"]: r for r in csv.DictReader((course / "gradebook.csv").open())}

    def feedback(student: str) -> str:
        return (course / commands.FEEDBACK_DIR / student / f"{lab.id}.html").read_text()

    # Bounded: the notebook keeps at most the caps, and says so where it cut.
    autograded = course / "autograded" / "flood" / lab.id / "lab.ipynb"
    assert autograded.stat().st_size < output_caps.NOTEBOOK_BYTES, autograded.stat().st_size
    cap_note = "kubelab keeps at most 262,144 per cell"
    printed = autograded.read_text()
    assert "output truncated: this cell printed 10,000,0" in printed and cap_note in printed
    assert rows["flood"].status == "graded" and cap_note in table["flood"]["message"]
    assert cap_note in feedback("flood")
    nbgrader(course, "generate_feedback", lab.id, "--student", "flood", "--force")
    (page,) = (course / "feedback" / "flood" / lab.id).glob("*.html")
    assert page.stat().st_size < output_caps.NOTEBOOK_BYTES and cap_note in page.read_text()

    # Explained: a forged grade cell is refused in plain words, not "exited 1".
    assert rows["forged"].status == table["forged"]["status"] == "refused"
    assert rows["forged"].total == 0
    for text in (table["forged"]["message"], feedback("forged")):
        assert "grade cell `bonus`" in text and "forged grade cell" in text, text
        assert "exited" not in text
    assert rows["altered"].status == "graded"
    assert "grade cell `pdb` was changed" in table["altered"]["message"]
    assert rows["altered"].points["pdb"] == 0  # the starter's budget, graded from the cluster

    # nbgrader's full log is kept for each, and the gradebook and feedback point to it.
    for student in students:
        log = course / table[student]["log"]
        assert log.is_file() and log.name == "nbgrader-autograde.log", student
        assert table[student]["log"] in feedback(student)
    forged_log = (course / table["forged"]["log"]).read_text()
    assert "Cell 'bonus' does not exist in the database" in forged_log

    # Not converged: graded again alone, still not settled, so marked, never a lower score.
    stuck = rows["stuck"]
    assert stuck.status == table["stuck"]["status"] == "not-converged", stuck.message
    assert stuck.retried and "still so when graded again alone" in stuck.message
    unsettled = {c.id for c in stuck.checks if c.not_converged}
    assert "pdb" in unsettled and stuck.points["pdb"] == 0
    assert stuck.points["hpa"] == 3  # what could be judged is judged
    assert "Not graded yet" in feedback("stuck")
    assert not any(r.retried for r in rows.values() if r.student != "stuck")
    shutil.rmtree(course, ignore_errors=True)
