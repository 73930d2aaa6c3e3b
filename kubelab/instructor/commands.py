"""`kubelab grade`: an instructor's way from released labs to a gradebook.

    kubelab grade release 02            # nbgrader generate_assignment (solution/ never released)
    kubelab grade collect 02 inbox/     # submissions -> <course>/submitted/<student>/02-deployment
    kubelab grade autograde 02          # every submission, sandboxed, in its own namespace
    kubelab grade report                # gradebook.csv and feedback pages, again, from results

The course is the folder with nbgrader_config.py: `--course DIR`, else the current folder if it
has one, else the repository. A `--course` folder without one gets one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from kubelab import paths
from kubelab.errors import KubelabError
from kubelab.grading.result import NOT_CONVERGED
from kubelab.i18n import _

FEEDBACK_DIR = "kubelab-feedback"
GRADEBOOK = "gradebook.csv"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `grade` command group to the `kubelab` parser."""
    grade = sub.add_parser("grade", help=_("instructors: release, collect, autograde, report"))
    gsub = grade.add_subparsers(dest="action", required=True, parser_class=type(grade))

    def course_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--course", type=Path, default=None, help=_("nbgrader course folder"))

    release = gsub.add_parser("release", help=_("make the student version of labs (no solutions)"))
    release.add_argument("labs", nargs="+", help=_("lab ids or numbers"))
    course_arg(release)
    release.set_defaults(handler=cmd_release)

    collect = gsub.add_parser("collect", help=_("take in a folder of submissions or of zips"))
    collect.add_argument("lab", help="lab id or number")
    collect.add_argument("folder", type=Path, help=_("<student>/ folders or <student>.zip files"))
    course_arg(collect)
    collect.set_defaults(handler=cmd_collect)

    auto = gsub.add_parser("autograde", help=_("grade every submission of a lab on the cluster"))
    auto.add_argument("lab", help="lab id or number")
    auto.add_argument("--student", action="append", help=_("only this student (repeatable)"))
    auto.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help=_("in parallel (default: cores)")
    )
    auto.add_argument(
        "--timeout", type=float, default=900, help=_("seconds per notebook (default 900)")
    )
    auto.add_argument(
        "--check-timeout",
        type=float,
        default=60,
        help=_("seconds the grader waits for the cluster to settle (default 60)"),
    )
    auto.add_argument(
        "--kubeconfig", help=_("instructor credentials (default: the course cluster)")
    )
    course_arg(auto)
    auto.set_defaults(handler=cmd_autograde)

    report = gsub.add_parser("report", help=_("write gradebook.csv and feedback pages again"))
    course_arg(report)
    report.set_defaults(handler=cmd_report)


def course_root(given: Path | None) -> Path:
    """Return the course folder (see the module docstring), creating its config if asked to."""
    from kubelab.course import write_course_config

    if given is not None:
        root = given.resolve()
        if not (root / "nbgrader_config.py").is_file():
            write_course_config(root)
        return root
    here = Path.cwd()
    return here if (here / "nbgrader_config.py").is_file() else paths.COURSE_ROOT


def nbgrader(course: Path, *args: str) -> str:
    """Run an nbgrader command in the course; return its output or raise its last error line."""
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]))
    proc = subprocess.run(
        [str(bin_dir / "nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        errors = [ln for ln in output.splitlines() if "ERROR" in ln or "Error" in ln]
        last = errors[-1].strip() if errors else _("no output")
        raise KubelabError(
            _("nbgrader {command} failed: {error}").format(command=args[0], error=last)
        )
    return output


def cmd_release(args: argparse.Namespace) -> int:
    """Release labs: the student version, without solution/, in <course>/release/<lab>."""
    from kubelab import labs
    from kubelab.progress import status

    course = course_root(args.course)
    for lab in [labs.find(x) for x in args.labs]:
        with status(_("releasing {lab} (nbgrader generate_assignment)").format(lab=lab.id)):
            nbgrader(course, "generate_assignment", lab.id, "--force")
        out = course / "release" / lab.id
        leaked = [p for p in out.rglob("*") if p.name == "solution"]
        if leaked:
            raise KubelabError(
                _("release of {lab} contains {path}: not handing it out").format(
                    lab=lab.id, path=leaked[0]
                )
            )
        print(_("released {lab} -> {path}").format(lab=lab.id, path=out))
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    """Copy submissions into the course in nbgrader's layout."""
    from kubelab import labs
    from kubelab.instructor import submissions

    course = course_root(args.course)
    lab = labs.find(args.lab)
    done = submissions.collect(course, lab, args.folder)
    for line in done.skipped:
        print(_("skipped {what}").format(what=line))
    print(
        _("collected {n} submissions of {lab} into {path}").format(
            n=len(done.students), lab=lab.id, path=course / "submitted"
        )
    )
    return 0 if done.students else 1


def cmd_autograde(args: argparse.Namespace) -> int:
    """Grade every (or the named) submission of a lab; write the gradebook and feedback."""
    from kubelab import api, labs
    from kubelab.instructor import bulk, submissions

    course = course_root(args.course)
    lab = labs.find(args.lab)
    students = [submissions.check_student(s) for s in args.student or []] or (
        submissions.submitted(course, lab)
    )
    if not students:
        raise KubelabError(
            _("no submissions of {lab} in {path}: `kubelab grade collect` first").format(
                lab=lab.id, path=course / "submitted"
            )
        )
    missing = [s for s in students if not (course / "submitted" / s / lab.id).is_dir()]
    if missing:
        raise KubelabError(
            _("no submission of {lab} from {students}").format(
                lab=lab.id, students=", ".join(missing)
            )
        )
    if args.workers < 1:
        raise KubelabError(_("--workers must be at least 1"))
    if args.check_timeout <= 0:
        raise KubelabError(_("--check-timeout must be more than 0 seconds"))
    settings = bulk.Settings(
        workers=args.workers, wall_seconds=args.timeout, check_timeout=args.check_timeout
    )
    admin = api.Api(args.kubeconfig)
    rows = bulk.grade_all(course, lab, students, admin, settings)
    for row in rows:
        print(f"{row.student:<24} {row.total:>5g}/{row.max_total:<4g} {row.status} {row.message}")
    write_reports(course)
    unsettled = [r.student for r in rows if r.status == NOT_CONVERGED]
    if unsettled:  # cannot grade: a busy cluster, twice; never a lower score
        print(
            _("not converged twice, not graded: {students}").format(students=", ".join(unsettled)),
            file=sys.stderr,
        )
        return 2
    return 0


def write_reports(course: Path) -> None:
    """Rebuild gradebook.csv and every feedback page from the results on disk."""
    from kubelab import labs
    from kubelab.instructor import gradebook, submissions

    rows = [
        gradebook.read_row(course, lab, student)
        for lab in labs.all_labs()
        for student in submissions.submitted(course, lab)
        if gradebook.result_path(course, lab, student).is_file()
    ]
    csv_path = gradebook.write_csv(rows, course / GRADEBOOK)
    for row in rows:
        gradebook.write_feedback(row, course / FEEDBACK_DIR)
    print(
        _("gradebook: {path} ({n} rows); feedback: {folder}/").format(
            path=csv_path, n=len(rows), folder=course / FEEDBACK_DIR
        )
    )


def cmd_report(args: argparse.Namespace) -> int:
    """Write the gradebook and feedback pages again from the results on disk."""
    write_reports(course_root(args.course))
    return 0
