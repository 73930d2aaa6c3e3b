"""Time a workshop's rush: N participants all running `kubelab check 02` at the same moment.

    .venv/bin/python benchmarks/workshop_checks.py [--participants 30] [--rounds 3]
        [--kubeconfig ADMIN_KUBECONFIG | --cluster NAME]

Starts (or reuses) a sim cluster, or uses the cluster of --kubeconfig; runs `kubelab workshop up
--participants N --labs 02`; puts lab 02's solution into every participant's namespace (as each
learner would: apply, then roll out v2); then, each round, launches N `kubelab check 02` processes
at once, each with its participant's kubeconfig, and prints p50, p95 and max latency per check
and the wall time of the round. Each check is a fresh process, so Python start-up is included,
and all of them share this machine's cores with the cluster. Also times `workshop up`, one
`workshop status --once` of the full board, and `workshop down`, which cleans up at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubelab import api, apply, labs, tools
from kubelab.cluster.sim import SimBackend

KUBELAB = str(Path(sys.executable).parent / "kubelab")
LAB = labs.find("02-deployment")
SOLUTION = LAB.directory / "solution" / "overlays" / "prod"


def _run(argv: list[str], env: dict[str, str], what: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed: {proc.stderr.strip()[-500:]}")
    return time.perf_counter() - start


def _solve(ns: str, client: api.Api, kubectl: list[str]) -> None:
    """Put lab 02's reference answer into `ns` and roll it out to v2, as the lab asks."""
    apply.apply(SOLUTION, namespace=ns, client=client)
    for args in (
        # v1 must be rolled out before v2 is set, or the controller only ever sees v2
        ["rollout", "status", "deployment/demo-web", "--timeout=180s"],
        ["set", "image", "deployment/demo-web", "web=kubelab/demo-web:v2"],
        ["rollout", "status", "deployment/demo-web", "--timeout=180s"],
    ):
        subprocess.run([*kubectl, "-n", ns, *args], check=True, capture_output=True)


def _rush(
    kubeconfigs: list[Path], data: Path, argv: list[str]
) -> tuple[list[float], float, int, float]:
    """Launch `argv` once per kubeconfig, all at once; return the latencies, the wall time, how
    many passed, and the CPU seconds (user + system) each process used on average."""
    launched: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
    start = time.perf_counter()
    for kc in kubeconfigs:
        env = dict(os.environ, KUBECONFIG=str(kc), KUBELAB_DATA=str(data / kc.stem))
        env.pop("KUBELAB_NAMESPACE", None)
        at = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        launched[proc.pid] = (proc, at)
    latencies, passed, cpu = [], 0, 0.0
    while launched:  # reap each child as it ends, with what it used (wait4's rusage)
        pid, status, usage = os.wait4(-1, 0)
        if pid not in launched:
            continue
        proc, at = launched.pop(pid)
        latencies.append(time.perf_counter() - at)
        proc.returncode = os.waitstatus_to_exitcode(status)
        passed += proc.returncode == 0
        cpu += usage.ru_utime + usage.ru_stime
    return latencies, time.perf_counter() - start, passed, cpu / len(kubeconfigs)


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def _line(label: str, latencies: list[float], wall: float | None = None) -> str:
    text = (
        f"{label}: p50 {statistics.median(latencies):.2f} s, p95 {_p95(latencies):.2f} s, "
        f"max {max(latencies):.2f} s"
    )
    return text + (f", wall {wall:.2f} s" if wall is not None else "")


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kubeconfig", type=Path, help="admin kubeconfig of a running cluster")
    parser.add_argument("--cluster", default="kubelab-bench", help="sim cluster to start or reuse")
    args = parser.parse_args()
    if args.participants < 2 or args.rounds < 1:
        parser.error("--participants must be at least 2 and --rounds at least 1")

    kubeconfig = args.kubeconfig
    if kubeconfig is None:
        kubeconfig = SimBackend(args.cluster).up(nodes=3).kubeconfig
    assert kubeconfig is not None
    admin = dict(os.environ, KUBECONFIG=str(kubeconfig))
    admin.pop("KUBELAB_NAMESPACE", None)
    client = api.Api(kubeconfig)
    kubectl = [str(tools.require("kubectl", "by the benchmark")), "--kubeconfig", str(kubeconfig)]
    with tempfile.TemporaryDirectory(prefix="kubelab-workshop-bench-") as tmp:
        out, data = Path(tmp) / "kubeconfigs", Path(tmp) / "data"
        n = args.participants
        try:
            up = _run(
                [KUBELAB, "workshop", "up", "--participants", str(n), "--labs", "02",
                 "--out", str(out)],
                admin,
                "workshop up",
            )  # fmt: skip
            print(f"workshop up, {n} participants, lab 02: {up:.2f} s", flush=True)
            kubeconfigs = sorted(out.glob("*.kubeconfig"))
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda kc: _solve(f"{kc.stem}-lab-02", client, kubectl), kubeconfigs))
            print(f"solution applied and rolled out in {n} namespaces: "
                  f"{time.perf_counter() - start:.1f} s", flush=True)  # fmt: skip
            everything: list[float] = []
            all_passed = True
            for r in range(1, args.rounds + 1):
                latencies, wall, passed, cpu = _rush(kubeconfigs, data, [KUBELAB, "check", "02"])
                everything += latencies
                all_passed &= passed == n
                print(_line(f"round {r}: {n} checks at once", latencies, wall)
                      + f", {passed}/{n} passed, {cpu:.2f} CPU-s each", flush=True)  # fmt: skip
            print(_line(f"all {len(everything)} checks", everything))
            imports = [sys.executable, "-c", "import kubelab.cli, kubelab.api, kubelab.grading"]
            floor, wall, _, cpu = _rush(kubeconfigs, data, imports)
            print(_line(f"floor: {n} Python start-ups + imports at once, no grading", floor, wall)
                  + f", {cpu:.2f} CPU-s each")  # fmt: skip
            print(f"load average now: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
                  f"on {os.cpu_count()} cores (the cluster and the checks share them)")  # fmt: skip
            board = _run([KUBELAB, "workshop", "status", "--once"], admin, "workshop status")
            print(f"workshop status --once ({n} rows): {board:.2f} s")
        finally:
            down = _run([KUBELAB, "workshop", "down", "--out", str(out)], admin, "workshop down")
            print(f"workshop down: {down:.1f} s")
            client.close()
    if args.kubeconfig is None:
        print(
            f"(cluster {args.cluster!r} is still up: `kubelab cluster --name {args.cluster} down`)"
        )
    return 0 if all_passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
