"""Does one participant's flood slow everyone else down? Checks of 10 participants, quiet and then
while an 11th floods its namespace as fast as its quota lets it.

    .venv/bin/python benchmarks/fence_flood.py [--participants 10] [--rounds 4] [--cluster NAME]

Starts (or reuses) a sim cluster and runs `kubelab workshop up` for N+1 participants on lab 02;
puts lab 02's solution into the N checkers' namespaces. Then, in each phase, every checker runs
`kubelab check 02` (in this process, one thread and one API connection of its own each, with its
own certificate, so the figures are the API server's and not Python start-up's) ROUNDS times at
once. The flooder, in a second process with its own certificate, creates 900 KB ConfigMaps from
4 threads without pause; when the quota refuses, it deletes one and goes on. Prints p50/p95 of the
checks quiet and under flood, their ratio (goal: p95 under flood < 1.5x quiet), what the quota
refused, and kube-apiserver's RSS before, during and after. Cleans up with `workshop down`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubelab import api, apply, labs, procs, tools
from kubelab.cluster.sim import SimBackend
from kubelab.grading import runner

KUBELAB = str(Path(sys.executable).parent / "kubelab")
KUBECTL = str(tools.require("kubectl", "by the benchmark"))
LAB = labs.find("02-deployment")
SOLUTION = LAB.directory / "solution" / "overlays" / "prod"
PAYLOAD = "x" * 900_000


def _kubelab(*args: str, kubeconfig: Path) -> None:
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    proc = subprocess.run([KUBELAB, *args], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"kubelab {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")


def _flood(kubeconfig: str, namespace: str, seconds: float, out: multiprocessing.Queue) -> None:
    """Create big ConfigMaps as fast as the quota lets; report (created, refused, errors)."""
    client = api.Api(kubeconfig)
    counts = {"created": 0, "refused": 0, "other": 0}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(me: int) -> None:
        i = 0
        while time.monotonic() < stop:
            i += 1
            name = f"flood-{me}-{i}"
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                    "data": {"blob": PAYLOAD}}  # fmt: skip
            try:
                client.create(api.CONFIGMAPS, body, namespace)
                key = "created"
            except api.ApiError as err:
                key = "refused" if "exceeded quota" in str(err) else "other"
                if key == "refused":  # make room, and go on flooding
                    mine = client.list(api.CONFIGMAPS, namespace, labels=None)
                    for cm in mine:
                        if cm["metadata"]["name"].startswith(f"flood-{me}-"):
                            client.delete(api.CONFIGMAPS, cm["metadata"]["name"], namespace)
                            break
            with lock:
                counts[key] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(counts)


def _checks(kubeconfigs: dict[str, Path], rounds: int) -> list[float]:
    """Every participant checks lab 02 `rounds` times, all at once; return each check's seconds."""
    times: list[float] = []
    lock = threading.Lock()

    def one(name: str) -> None:
        client = api.Api(kubeconfigs[name])
        try:
            for _ in range(rounds):
                start = time.perf_counter()
                report = runner.run(LAB, namespace=f"{name}-{LAB.namespace}", client=client)
                took = time.perf_counter() - start
                if report.score != LAB.max_score:
                    raise SystemExit(f"{name}: {report.score}/{LAB.max_score}: not solved")
                with lock:
                    times.append(took)
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=len(kubeconfigs)) as pool:
        list(pool.map(one, kubeconfigs))
    return times


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--cluster", default="kubelab-bench")
    args = parser.parse_args()

    backend = SimBackend(args.cluster)
    backend.up(nodes=3)
    admin_config = backend.kubeconfig_path()
    admin = api.Api(admin_config)
    folder = Path(tempfile.mkdtemp(prefix="kubelab-flood-"))
    names = [f"p{i:02d}" for i in range(1, args.participants + 1)]
    flooder = "flooder"
    (folder / "names.txt").write_text("\n".join([*names, flooder]) + "\n")
    out = folder / "kubeconfigs"
    _kubelab("workshop", "up", "--participants-file", str(folder / "names.txt"), "--labs", "02",
             "--out", str(out), kubeconfig=admin_config)  # fmt: skip
    try:
        for name in names:
            ns = f"{name}-{LAB.namespace}"
            apply.apply(SOLUTION, namespace=ns, client=admin)
            patch = {"spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "kubelab/demo-web:v2"}]}}}}  # fmt: skip
            admin.patch(api.DEPLOYMENTS, "demo-web", patch, ns,
                        patch_type="application/strategic-merge-patch+json")  # fmt: skip
        kubeconfigs = {n: out / f"{n}.kubeconfig" for n in names}
        for name in names:  # converge: every rollout done before anything is timed
            subprocess.run(
                [KUBECTL, "--kubeconfig", str(admin_config), "-n", f"{name}-{LAB.namespace}",
                 "rollout", "status", "deployment/demo-web", "--timeout=180s"],
                capture_output=True, check=True,
            )  # fmt: skip
        _checks(kubeconfigs, 1)

        apiserver = backend.pids()["kube-apiserver"]
        rss_before = procs.rss_bytes(apiserver)
        quiet = _checks(kubeconfigs, args.rounds)

        results: multiprocessing.Queue = multiprocessing.Queue()
        seconds = 5.0 + 3.0 * args.rounds
        flood = multiprocessing.Process(
            target=_flood,
            args=(str(out / f"{flooder}.kubeconfig"), f"{flooder}-{LAB.namespace}", seconds,
                  results),
        )  # fmt: skip
        flood.start()
        time.sleep(3.0)  # let the flood reach the quota first
        loud = _checks(kubeconfigs, args.rounds)
        rss_during = procs.rss_bytes(apiserver)
        flood.join()
        counts = results.get(timeout=30)
    finally:
        _kubelab("workshop", "down", "--out", str(out), kubeconfig=admin_config)
        admin.close()
    rss_after = procs.rss_bytes(apiserver)
    mib = 2**20
    print(f"{args.participants} participants x {args.rounds} checks of lab 02, at once:")
    print(f"  quiet:       p50 {_p(quiet, 0.5):.3f} s  p95 {_p(quiet, 0.95):.3f} s  "
          f"(mean {statistics.mean(quiet):.3f} s, {len(quiet)} checks)")  # fmt: skip
    print(f"  under flood: p50 {_p(loud, 0.5):.3f} s  p95 {_p(loud, 0.95):.3f} s  "
          f"(mean {statistics.mean(loud):.3f} s, {len(loud)} checks)")  # fmt: skip
    ratio = _p(loud, 0.95) / _p(quiet, 0.95)
    print(f"  p95 ratio flood/quiet: {ratio:.2f}x (goal < 1.5x)")
    print(
        f"flood of 900 KB ConfigMaps for {seconds:.0f} s from 4 threads: {counts['created']} "
        f"created, {counts['refused']} refused by the quota, {counts['other']} other errors"
    )
    print(f"kube-apiserver RSS: {rss_before / mib:.0f} MiB before, {rss_during / mib:.0f} MiB "
          f"during the flood, {rss_after / mib:.0f} MiB after clean-up")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
