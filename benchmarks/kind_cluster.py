"""Print the kind cluster's figures beside the sim's: image build, cluster up, memory, a lab check.

    .venv/bin/python benchmarks/kind_cluster.py [--cold] [--cluster NAME] [--keep] [--no-sim]

- build: `kind_build.ensure_built()` (with --cold, the kind caches and the node image are removed
  first, keeping Go's module and build caches: the cold build of the kind images on this machine),
  and each binary's last build time;
- up: `Backend.up()` from nothing to 3 Ready nodes with every add-on serving (warm caches), for
  kind and for sim;
- RSS: kind, the resident memory of each node container's processes (its cgroup's `rss`); sim,
  the resident memory of its processes (etcd, API server, controllers, kwok, metrics);
- check: `kubelab check 02` on the lab 02 solution, rolled out to v2, on each.
Needs a Docker daemon (scripts/ci-docker starts one).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kubelab import labs, procs, tools
from kubelab.cluster import kind_build
from kubelab.cluster.base import Backend
from kubelab.cluster.kind import KindBackend, docker_available
from kubelab.cluster.sim import SimBackend


def node_rss(backend: KindBackend) -> dict[str, int]:
    """Return node container -> resident bytes of its processes (cgroup v1 or v2)."""
    docker = tools.require("docker", "to measure the nodes")
    result = {}
    for name in backend.node_containers():
        cid = tools.run([docker, "inspect", "-f", "{{.Id}}", name]).stdout.strip()
        for stat, key in (
            (Path(f"/sys/fs/cgroup/memory/docker/{cid}/memory.stat"), "total_rss"),
            (Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/memory.stat"), "anon"),
        ):
            if stat.is_file():
                fields = dict(line.split() for line in stat.read_text().splitlines())
                result[name] = int(fields[key])
                break
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="remove the kind caches first")
    parser.add_argument("--cluster", default="kubelab-kind-bench")
    parser.add_argument("--keep", action="store_true", help="leave the clusters running")
    parser.add_argument("--no-sim", action="store_true", help="measure kind only")
    args = parser.parse_args()
    if not docker_available():
        print("no Docker daemon answers; scripts/ci-docker starts one", file=sys.stderr)
        return 2
    figures: dict[str, object] = {}
    if args.cold:
        shutil.rmtree(kind_build.kind_root(), ignore_errors=True)
        docker = tools.require("docker", "to remove the node image")
        subprocess.run([str(docker), "rmi", "-f", kind_build.node_image()], capture_output=True)
    started = time.monotonic()
    kind_build.ensure_built()
    figures["build_s"] = round(time.monotonic() - started, 1)
    figures["binary_build_s"] = kind_build.build_times()

    kind = KindBackend(args.cluster, publish_ports=False)
    figures["kind"] = measure(kind, lambda: node_rss(kind), keep=args.keep)
    if not args.no_sim:
        sim = SimBackend(f"{args.cluster}-sim")
        figures["sim"] = measure(
            sim, lambda: {n: procs.rss_bytes(p) for n, p in sim.pids().items()}, keep=args.keep
        )
    print(json.dumps(figures, indent=2))
    if "sim" in figures:
        k, m = figures["kind"], figures["sim"]
        assert isinstance(k, dict) and isinstance(m, dict)
        print(f"{'':28}{'kind':>10}{'sim':>10}")
        for key, label in (
            ("cluster_up_s", "cluster up (s)"),
            ("rss_total_mib", "resident memory (MiB)"),
            ("check_02_s", "kubelab check 02 (s)"),
        ):
            print(f"{label:28}{k[key]:>10}{m[key]:>10}")
    return 0


def measure(
    backend: Backend, rss: Callable[[], dict[str, int]], *, keep: bool
) -> dict[str, object]:
    """Bring `backend` up from nothing, then measure its memory and a check of lab 02."""
    figures: dict[str, object] = {}
    if backend.exists():
        backend.down()
    started = time.monotonic()
    backend.up(nodes=3)
    figures["cluster_up_s"] = round(time.monotonic() - started, 1)
    parts = rss()
    figures["rss_mib"] = {k: round(v / 2**20) for k, v in parts.items()}
    figures["rss_total_mib"] = round(sum(parts.values()) / 2**20)

    lab = labs.find("02-deployment")
    env = {**os.environ, "KUBELAB_CLUSTER": backend.cluster}
    env.pop("KUBECONFIG", None)
    kubelab = [sys.executable, "-m", "kubelab.cli"]
    kubectl = [str(tools.require("kubectl", "")), "--kubeconfig", str(backend.kubeconfig_path())]
    ns = ["-n", lab.namespace]
    subprocess.run([*kubelab, "reset", "02"], env=env, check=True, capture_output=True)
    solution = lab.directory / "solution" / "overlays" / "prod"
    subprocess.run(
        [*kubelab, "apply", str(solution), "--lab", "02"], env=env, check=True, capture_output=True
    )
    subprocess.run([*kubectl, *ns, "rollout", "status", "deployment/demo-web"], check=True)
    subprocess.run(
        [*kubectl, *ns, "set", "image", "deployment/demo-web", "web=kubelab/demo-web:v2"],
        check=True,
        capture_output=True,
    )
    subprocess.run([*kubectl, *ns, "rollout", "status", "deployment/demo-web"], check=True)
    started = time.monotonic()
    check = subprocess.run([*kubelab, "check", "02"], env=env, capture_output=True, text=True)
    figures["check_02_s"] = round(time.monotonic() - started, 1)
    figures["check_02_exit"] = check.returncode
    if not keep:
        backend.down()
    return figures


if __name__ == "__main__":
    sys.exit(main())
