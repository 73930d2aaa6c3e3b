"""Grade every submission of a lab: in parallel, each in a fresh namespace with credentials that
reach only that namespace, each notebook in the sandbox, with a progress bar.

The instructor's (admin) credentials only prepare and clean up: the lab's cluster-wide set-up once,
then per submission a namespace, a ServiceAccount token confined to it (kubelab/access.py), and
afterwards the namespace's deletion. Everything the submission runs uses the token.

nbgrader's output is kept beside each result and read for tampering it found or refused
(kubelab/instructor/nbgrader_log.py). A submission with a check that did not converge (the
cluster too busy to settle before the deadline) is graded once more after the others, alone.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kubelab import access, api, cluster_record, lab_namespaces, sandbox
from kubelab.course import sandboxed_autograde
from kubelab.errors import KubelabError
from kubelab.fence import admission, cleanup
from kubelab.instructor import gradebook, nbgrader_log, submissions
from kubelab.instructor.sandboxed_execute import Spec
from kubelab.labs import Lab
from kubelab.progress import status

ACCOUNT = "kubelab-submission"


@dataclass(frozen=True)
class Settings:
    """Limits of one bulk run."""

    workers: int = max(1, os.cpu_count() or 1)
    wall_seconds: float = 900.0  # a whole notebook, kernel start to last cell
    cell_timeout: int = 300  # one cell (grade cells wait for rollouts)
    check_timeout: float = (
        60.0  # the final grader run's wait for convergence (or the lab's, if longer)
    )


def _loopback_server(server: str) -> str:
    host = urlsplit(server).hostname or ""
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise KubelabError(
            f"bulk grading runs notebooks against a cluster on this machine, not {server}: "
            "start one with `kubelab cluster up` (sim)"
        )
    return server


@dataclass(frozen=True)
class NbgraderRun:
    """How one `nbgrader autograde` ended, and everything it printed."""

    returncode: int | None  # None: killed at the time limit
    output: str
    timeout: float

    @property
    def failure(self) -> str:
        """Return '' or a one-line failure."""
        if self.returncode is None:
            return f"nbgrader autograde did not finish in {self.timeout:.0f}s"
        if self.returncode != 0:
            lines = [ln for ln in self.output.splitlines() if "ERROR" in ln]
            return (lines[-1] if lines else f"nbgrader autograde exited {self.returncode}")[:300]
        return ""


def _text(out: str | bytes | None) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else (out or "")


def _nbgrader(course: Path, lab: Lab, student: str, spec_path: Path, timeout: float) -> NbgraderRun:
    """Run `nbgrader autograde` for one submission, in kubelab's sandboxed steps."""
    bin_dir = Path(sys.executable).parent  # nbgrader runs alembic from PATH: this venv's
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    argv = [str(bin_dir / "nbgrader"), "autograde", lab.id, "--student", student, "--force"]
    argv.append("--Autograde.create_student=True")
    # The steps and the submission's spec, on the command line: above the course's config files.
    argv += sandboxed_autograde(spec_path)
    # Workers write one gradebook at once: wait for its lock instead of failing after 5 s.
    argv.append(f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}?timeout=120")
    try:
        proc = subprocess.run(
            argv, cwd=course, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        return NbgraderRun(None, _text(err.stdout) + _text(err.stderr), timeout)
    return NbgraderRun(proc.returncode, proc.stdout + proc.stderr, timeout)


def _record(course: Path, lab: Lab, student: str, run: NbgraderRun) -> None:
    """Keep nbgrader's log beside the result and say in the result what it found or refused."""
    result = gradebook.result_path(course, lab, student)
    nbgrader_log.keep(run.output, result.parent)
    failure = run.failure
    found = nbgrader_log.explain(run.output, {t.id for t in lab.tasks}, failed=bool(failure))
    log = gradebook.log_path(lab, student)
    if found.refused:
        status = gradebook.REFUSED if found.tampered else "error"
        gradebook.write_error(course, lab, student, found.refused, status=status, log=log)
    elif failure or not result.is_file():
        gradebook.write_error(course, lab, student, failure or "no result", log=log)
    else:
        gradebook.annotate(course, lab, student, log=log, nbgrader={"notes": found.notes})


class BulkGrader:
    """Grades submissions of one lab on the cluster that `admin` reaches."""

    def __init__(self, course: Path, lab: Lab, admin: api.Api, settings: Settings) -> None:
        self.course, self.lab, self.admin, self.settings = course, lab, admin, settings
        self.server, self.ca = access.cluster_endpoint(admin.kubeconfig)
        _loopback_server(self.server)
        # kind: graders send real requests through the Gateway, relayed into each sandbox
        record = cluster_record.read(admin)
        kind = record.get(cluster_record.SUBSTRATE_KEY) == "kind"
        self.gateway_url = cluster_record.gateway_url(record) if kind else ""
        self._lock = threading.Lock()
        self.leftovers: list[str] = []  # what clean-up could not remove, reported at the end

    def prepare(self) -> None:
        """Install what every submission needs once, with the instructor's credentials."""
        sandbox.check_available()
        access.install_shared_roles(self.admin, [self.lab])
        admission.install(self.admin)
        if self.lab.cluster_setup is not None:
            lab_namespaces.install_cluster_setup(self.admin, self.lab, "default")

    def grade(self, student: str) -> gradebook.Row:
        """Grade one submission from a fresh namespace; always returns its row."""
        ns = submissions.namespace_for(self.lab, student)
        grant = ns
        s = self.settings
        check_timeout = max(s.check_timeout, self.lab.timeout)
        tmp = Path(tempfile.mkdtemp(prefix="kubelab-bulk-"))
        try:
            with self._lock:  # one creation at a time keeps the API server's answers fast
                lab_namespaces.reset(self.admin, self.lab, ns, stream=io.StringIO())
                lifetime = int(s.wall_seconds + 3 * check_timeout + 600)
                token = access.service_account_token(self.admin, ns, ACCOUNT, seconds=lifetime)
                subject = {"kind": "ServiceAccount", "name": ACCOUNT, "namespace": ns}
                access.confine(self.admin, grant, subject, {ns: self.lab})
            config = access.kubeconfig_for(
                self.server, self.ca, {"token": token}, name="submission", namespace=ns
            )
            kubeconfig = access.write_kubeconfig(tmp / "kubeconfig", config)
            result = gradebook.result_path(self.course, self.lab, student)
            spec = Spec(
                lab=self.lab.id,
                student=student,
                namespace=ns,
                kubeconfig=str(kubeconfig),
                api_server=self.server,
                wall_seconds=s.wall_seconds,
                cell_timeout=s.cell_timeout,
                check_timeout=check_timeout,
                result=str(result),
                gateway_url=self.gateway_url,
            ).write(tmp / "spec.json")
            budget = s.wall_seconds + 3 * check_timeout + 180
            _record(
                self.course,
                self.lab,
                student,
                _nbgrader(self.course, self.lab, student, spec, budget),
            )
        except KubelabError as err:
            gradebook.write_error(self.course, self.lab, student, str(err))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            self._cleanup(ns, grant)
        return gradebook.read_row(self.course, self.lab, student)

    def _cleanup(self, ns: str, grant: str) -> None:
        """Remove the grant, then the namespace until it is gone; say what would not go."""
        try:
            access.release(self.admin, grant)
            cleanup.delete_namespace(self.admin, ns, timeout=lab_namespaces.DELETE_TIMEOUT)
        except KubelabError as err:  # a dead cluster, or a namespace that would not go
            with self._lock:
                self.leftovers.append(str(err))


def grade_all(
    course: Path,
    lab: Lab,
    students: list[str],
    admin: api.Api,
    settings: Settings,
    *,
    on_row: Callable[[gradebook.Row], None] | None = None,
) -> list[gradebook.Row]:
    """Grade `students`' submissions with `settings.workers` in parallel; show a progress bar."""
    grader = BulkGrader(course, lab, admin, settings)
    with status(f"preparing {lab.id} for {len(students)} submissions"):
        grader.prepare()
    rows: list[gradebook.Row] = []
    started = time.monotonic()
    with (
        status(f"grading {lab.id}") as bar,
        ThreadPoolExecutor(max_workers=settings.workers) as pool,
    ):
        bar.update(_bar(0, len(students)))
        futures = {pool.submit(grader.grade, s): s for s in students}
        try:
            for future in as_completed(futures):
                row = future.result()
                rows.append(row)
                bar.update(
                    f"{_bar(len(rows), len(students))} last: {row.student} "
                    f"{row.total:g}/{row.max_total:g} ({row.status})"
                )
                if on_row:
                    on_row(row)
        except KeyboardInterrupt:  # start nothing new; running ones end with their nbgrader
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        bar.update(f"{_bar(len(rows), len(students))} in {time.monotonic() - started:.0f}s")
    rows = regrade_unsettled(grader, rows, on_row=on_row)
    for leftover in grader.leftovers:  # grades stand; the cluster needs a look
        print(f"clean-up: {leftover}", file=sys.stderr)
    return sorted(rows, key=lambda r: r.student)


def regrade_unsettled(
    grader: BulkGrader,
    rows: list[gradebook.Row],
    *,
    on_row: Callable[[gradebook.Row], None] | None = None,
) -> list[gradebook.Row]:
    """Grade once more, one at a time with nothing else running, each submission that had a
    check not converge: a busy cluster must not cost points. A second time stays
    `not-converged` in the gradebook (for the instructor to look at), never a lower score."""
    again = [r.student for r in rows if any(c.not_converged for c in r.checks)]
    if not again:
        return rows
    by_student = {r.student: r for r in rows}
    with status(f"grading {len(again)} submission(s) again, alone (not converged)") as bar:
        for done, student in enumerate(again):
            bar.update(f"{_bar(done, len(again))} {student}")
            grader.grade(student)
            gradebook.annotate(grader.course, grader.lab, student, attempts=2)
            row = gradebook.read_row(grader.course, grader.lab, student)
            by_student[student] = row
            if on_row:
                on_row(row)
        bar.update(f"{_bar(len(again), len(again))} graded again")
    return list(by_student.values())


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / total) if total else width
    return f"[{'█' * filled}{'░' * (width - filled)}] {done}/{total}"
