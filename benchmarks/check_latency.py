"""Print the wall time of `kubelab check LAB` on a solved namespace, for one lab or all of them.

    .venv/bin/python benchmarks/check_latency.py [--lab 02] [--runs 10] [--cluster NAME]

Each run is a fresh process (`kubelab check ...` via the venv's console script), so Python start-up
and imports are included, as a learner experiences it. The script starts (or reuses) a sim cluster,
puts each lab's solution into a scratch namespace (with the commands the lab asks learners to
type), runs one check to let it converge ("first"), then times the runs. Labs whose checks act
(01 drives the learner's controller, 03 puts load on pods and rehearses a drain) are slower by
design. Target for a converged lab: <= 1.5 s; goal 0.5 s. Also prints the import-only floor.
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

# What a learner types after applying the solution, per lab (as in each lab.ipynb).
AFTER_APPLY: dict[str, list[list[str]]] = {
    "02-deployment": [
        ["set", "image", "deployment/demo-web", "web=kubelab/demo-web:v2"],
        ["rollout", "status", "deployment/demo-web", "--timeout=90s"],
    ],
    "04-statefulset": [
        [
            "patch", "statefulset", "demo-db",
            "-p", '{"spec": {"updateStrategy": {"rollingUpdate": {"partition": 2}}}}',
        ],
        ["set", "image", "statefulset/demo-db", "db=postgres:16.6"],
        ["rollout", "status", "statefulset/demo-db", "--timeout=90s"],
    ],
}  # fmt: skip
SOLUTION_TARGET = {"01-control-loop": "configmapset.yaml", "02-deployment": "overlays/prod"}


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    return time.perf_counter() - start, proc.returncode


def _solve(lab: labs.Lab, ns: str, client: api.Api, kubectl: list[str]) -> None:
    """Put the lab's reference answer into `ns`, as a learner who finished it would have."""
    if lab.id == "06-rbac-policy":  # the namespace must enforce restricted before the pods come
        label = "pod-security.kubernetes.io/enforce=restricted"
        subprocess.run([*kubectl, "label", "ns", ns, label], check=True, capture_output=True)
    solution = lab.directory / "solution" / SOLUTION_TARGET.get(lab.id, "")
    apply.apply(solution, namespace=ns, client=client)
    for args in AFTER_APPLY.get(lab.id, []):
        subprocess.run([*kubectl, "-n", ns, *args], check=True, capture_output=True)


def bench(lab: labs.Lab, runs: int, kubeconfig: Path, client: api.Api) -> bool:
    """Time `kubelab check` for one lab and print one line; return whether every run passed."""
    ns = f"bench-{lab.number}-{uuid.uuid4().hex[:4]}"
    kubectl = [str(tools.require("kubectl", "by the benchmark")), "--kubeconfig", str(kubeconfig)]
    lab_namespaces.ensure(client, lab, ns)
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), KUBELAB_DATA=str(Path("/tmp") / ns))
    env["KUBELAB_CONTROLLER"] = str(lab.directory / "solution" / "controller.py")  # lab 01 only
    try:
        _solve(lab, ns, client, kubectl)
        check = [str(Path(sys.executable).parent / "kubelab"), "check", lab.id, "-n", ns]
        first, code = _timed([*check, "--timeout", "120"], env)
        times, codes = [], {code}
        for _ in range(runs):
            seconds, code = _timed(check, env)
            times.append(seconds)
            codes.add(code)
    finally:
        subprocess.run([*kubectl, "delete", "ns", ns, "--wait=false"], capture_output=True)
    print(
        f"{lab.id:<20} first {first:6.2f} s · then median {statistics.median(times):.3f} s, "
        f"min {min(times):.3f} s, max {max(times):.3f} s over {runs} runs · exit codes "
        f"{sorted(codes)}",
        flush=True,
    )
    return codes == {0}


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", help="one lab (id or number); default: every lab")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cluster", default="kubelab-bench")
    args = parser.parse_args()

    backend = SimBackend(args.cluster)
    backend.up(nodes=3)
    kubeconfig = backend.kubeconfig_path()
    client = api.Api(kubeconfig)
    chosen = [labs.find(args.lab)] if args.lab else labs.all_labs()
    print(f"kubelab check on a solved namespace ({args.runs} runs each, start-up included):")
    try:
        passed = all([bench(lab, args.runs, kubeconfig, client) for lab in chosen])
    finally:
        client.close()
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    floor = [
        _timed([sys.executable, "-c", "import kubelab.cli, kubelab.api"], env)[0] for _ in range(5)
    ]
    print(f"Python start-up + imports alone: median {statistics.median(floor):.3f} s")
    print("target <= 1.5 s for a converged lab, goal 0.5 s")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
