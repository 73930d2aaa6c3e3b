"""Print how long the sim cluster takes to build, start and stop, and how much memory it uses.

    .venv/bin/python benchmarks/cluster_lifecycle.py [--runs 3] [--cold] [--name kubelab-bench]

--cold rebuilds every binary with an empty Go build cache and kubelab cache (the module
download cache is kept) to measure a first build; otherwise the build time recorded when the
current binaries were built is printed. Targets: warm up <= 20 s (goal 10 s), RSS <= 800 MB.

Your kubeconfig is left alone: the cluster's `up` runs with KUBELAB_NO_KUBECONFIG=1, so no
`kubelab-bench` context is added to ~/.kube/config (or $KUBECONFIG) and none removed by `down`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kubelab import procs
from kubelab.cluster import sim_build
from kubelab.cluster.sim import SimBackend

CLUSTER = "kubelab-bench"
OPT_OUT = "KUBELAB_NO_KUBECONFIG"  # kubelab.cluster.user_kubeconfig.OPT_OUT_ENV


def kubelab(*args: str) -> float:
    """Run the kubelab CLI and return its wall time in seconds."""
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "kubelab", "cluster", "--name", CLUSTER, *args],
        env=dict(os.environ, **{OPT_OUT: "1"}),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.monotonic() - start


def cold_build() -> float:
    """Build all binaries from scratch in throwaway caches and return the seconds taken."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, KUBELAB_CACHE=f"{tmp}/kubelab", GOCACHE=f"{tmp}/go-build")
        start = time.monotonic()
        subprocess.run(
            [sys.executable, "scripts/build-sim"],
            env=env,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        return time.monotonic() - start


def main() -> int:
    """Measure and print."""
    global CLUSTER
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="warm up/down cycles (default 3)")
    parser.add_argument("--cold", action="store_true", help="measure a cold build too")
    parser.add_argument("--name", default=CLUSTER, help=f"the cluster's name (default {CLUSTER})")
    args = parser.parse_args()
    CLUSTER = args.name
    os.environ[OPT_OUT] = "1"  # also for the in-process down below and the cold build

    if args.cold:
        print(f"cold build (empty GOCACHE):   {cold_build():7.1f} s")
    bin_dir = sim_build.ensure_built()
    stamp = json.loads((bin_dir.parent / "versions.json").read_text())
    print(
        f"last build of the current binaries: {stamp.get('build_seconds', 'n/a')} s "
        f"({stamp['go']}; a warm Go cache makes it far shorter than --cold)"
    )

    backend = SimBackend(CLUSTER)
    if backend.exists():
        backend.down()
    ups, downs, rss, private = [], [], [], []
    for run in range(1, args.runs + 1):
        ups.append(kubelab("up", "--backend", "sim", "--nodes", "3"))
        time.sleep(5)  # let the components settle before reading memory
        per = {name: procs.rss_bytes(pid) for name, pid in backend.pids().items()}
        rss.append(sum(per.values()))
        own = {name: procs.private_rss_bytes(pid) for name, pid in backend.pids().items()}
        private.append(sum(own.values()))
        if run == 1:
            for name, value in sorted(per.items()):
                print(
                    f"  rss {name:<24} {value / 2**20:7.1f} MiB"
                    f"  (private {own[name] / 2**20:6.1f} MiB)"
                )
        downs.append(kubelab("down"))
        print(
            f"run {run}: up {ups[-1]:5.1f} s   down {downs[-1]:5.1f} s   "
            f"rss {rss[-1] / 2**20:6.1f} MiB"
        )

    print(
        f"warm up (3 nodes Ready), median of {len(ups)}: {statistics.median(ups):5.1f} s "
        "(target <= 20 s, goal 10 s)"
    )
    print(f"down, median:                       {statistics.median(downs):5.1f} s")
    peak = max(rss)
    print(
        f"total RSS of cluster processes, max: {peak / 1e6:6.1f} MB = {peak / 2**20:.1f} MiB "
        "(target <= 800 MB)"
    )
    # The rest is the executables' pages, shared through the page cache by every cluster on the
    # machine: a workshop's tenth cluster costs its private memory, not its RSS.
    most = max(private)
    print(
        f"private memory of cluster processes, max: {most / 1e6:6.1f} MB = {most / 2**20:.1f} MiB "
        "(what each further cluster on the machine costs; goal 500 MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
