"""Print the wall time of `kubelab check 02-deployment` on a converged namespace.

    .venv/bin/python benchmarks/check_latency.py [--runs 10] [--cluster NAME]

Each run is a fresh process (`kubelab check ...` via the venv's console script), so Python start-up
and imports are included, as a learner experiences it. The script starts (or reuses) a sim cluster,
applies lab 02's solution into a scratch namespace, rolls it out to v2, then times the runs.
Target: <= 1.5 s; our goal: 0.5 s. Also prints the import-only floor for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kubelab import api, apply, lab_namespaces, labs, tools
from kubelab.cluster.sim import SimBackend


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    return time.perf_counter() - start, proc.returncode


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cluster", default="kubelab-bench")
    args = parser.parse_args()

    backend = SimBackend(args.cluster)
    backend.up(nodes=3)
    kubeconfig = backend.kubeconfig_path()
    lab = labs.find("02-deployment")
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    client = api.Api(kubeconfig)
    lab_namespaces.ensure(client, lab, ns)
    apply.apply(lab.directory / "solution/overlays/prod", namespace=ns, client=client)
    kubectl = str(tools.require("kubectl", "by the benchmark"))
    base = [kubectl, "--kubeconfig", str(kubeconfig), "-n", ns]
    subprocess.run(
        [*base, "set", "image", "deployment/demo-web", "web=kubelab/demo-web:v2"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*base, "rollout", "status", "deployment/demo-web", "--timeout=60s"],
        check=True,
        capture_output=True,
    )

    env = dict(os.environ, KUBECONFIG=str(kubeconfig), KUBELAB_DATA=str(Path("/tmp") / ns))
    cli = str(Path(sys.executable).parent / "kubelab")
    check = [cli, "check", "02-deployment", "-n", ns]
    _timed(check, env)  # warm the page cache once
    times, codes = [], set()
    for _ in range(args.runs):
        seconds, code = _timed(check, env)
        times.append(seconds)
        codes.add(code)
    floor = [
        _timed([sys.executable, "-c", "import kubelab.cli, kubelab.api"], env)[0] for _ in range(5)
    ]
    subprocess.run(
        [*base[:3], "delete", "namespace", ns, "--wait=false"], capture_output=True, check=False
    )
    client.close()

    print(
        f"kubelab check 02-deployment on a converged namespace, {args.runs} runs "
        f"(exit codes {sorted(codes)}):"
    )
    print(
        f"  median {statistics.median(times):.3f} s · min {min(times):.3f} s · "
        f"max {max(times):.3f} s"
    )
    print(f"  Python start-up + imports alone: median {statistics.median(floor):.3f} s")
    print("  target <= 1.5 s, goal 0.5 s")
    return 0 if codes == {0} else 1


if __name__ == "__main__":
    raise SystemExit(main())
