"""Print the wall time of bulk-grading N submissions of lab 02 (target: 30 on 2 cores <= 3 min).

    .venv/bin/python benchmarks/bulk_grading.py [--submissions 30] [--workers 2] [--cluster NAME]

Makes a throwaway nbgrader course, releases lab 02, hands in N submissions (a third solved with
the rollout typed, a third half done, a third untouched: the mix a real class hands in), then runs
the same bulk grader as `kubelab grade autograde`: per submission a fresh namespace, a confined
ServiceAccount token, the notebook in the sandbox, a fresh grader run, nbgrader's gradebook.
Prints total wall time, mean and median per submission, and the time of each phase.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kubelab import api, labs
from kubelab.cluster.sim import SimBackend
from kubelab.course import write_course_config
from kubelab.instructor import bulk, commands, gradebook

LAB = labs.find("02-deployment")
ROLLOUT = (
    "!kubectl set image deployment/demo-web web=kubelab/demo-web:v2 -n {grader.namespace}\n"
    "!kubectl rollout status deployment/demo-web -n {grader.namespace} --timeout=90s"
)


def _hand_in(course: Path, student: str, kind: str) -> None:
    target = course / "submitted" / student / LAB.id
    shutil.copytree(course / "release" / LAB.id, target)
    if kind == "untouched":
        return
    shutil.rmtree(target / "starter")
    shutil.copytree(LAB.directory / "solution", target / "starter")
    if kind == "half":  # the Service left as handed out, no rollout
        shutil.copy(
            course / "release" / LAB.id / "starter/base/service.yaml", target / "starter/base"
        )
        return
    nb = json.loads((target / "lab.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "rollout":
            cell["source"] = ROLLOUT
    (target / "lab.ipynb").write_text(json.dumps(nb))


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=30)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cluster", default="kubelab-bench")
    args = parser.parse_args()

    backend = SimBackend(args.cluster)
    backend.up(nodes=3)
    client = api.Api(backend.kubeconfig_path())
    course = Path(tempfile.mkdtemp(prefix="kubelab-bench-course-"))
    try:
        write_course_config(course)
        commands.nbgrader(course, "generate_assignment", LAB.id, "--force")
        kinds = ["solved", "half", "untouched"]
        students = [f"s{i:02d}" for i in range(1, args.submissions + 1)]
        for i, student in enumerate(students):
            _hand_in(course, student, kinds[i % 3])
        settings = bulk.Settings(workers=args.workers)
        per: list[float] = []
        last = [time.monotonic()]

        def finished(row: gradebook.Row) -> None:
            now = time.monotonic()
            per.append(now - last[0])
            last[0] = now

        start = time.monotonic()
        rows = bulk.grade_all(course, LAB, students, client, settings, on_row=finished)
        total = time.monotonic() - start
        commands.write_reports(course)
        by_status: dict[str, int] = {}
        for row in rows:
            by_status[row.status] = by_status.get(row.status, 0) + 1
        scores = sorted({f"{r.total:g}" for r in rows})
        print(
            f"bulk grading {len(rows)} submissions of {LAB.id} with {args.workers} workers on "
            f"{os.cpu_count()} cores: total {total:.1f} s ({total / 60:.2f} min), "
            f"{total / len(rows):.1f} s per submission of wall time; "
            f"statuses {by_status}; distinct scores {scores}",
            flush=True,
        )
        print(
            f"time between finished submissions: median {statistics.median(per):.1f} s, "
            f"max {max(per):.1f} s · target: 30 submissions on 2 cores <= 180 s"
        )
        return 0 if all(r.status == "graded" for r in rows) else 1
    finally:
        client.close()
        shutil.rmtree(course, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
