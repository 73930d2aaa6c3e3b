"""Print the kind cluster's figures: image build, cluster up, node memory, a lab check.

    .venv/bin/python benchmarks/kind_cluster.py [--cold] [--cluster NAME] [--keep]

- build: `kind_build.ensure_built()` (with --cold, the kind caches and the node image are removed
  first, keeping Go's module and build caches: the cold build of the kind images on this machine),
  and each binary's last build time;
- up: `KindBackend.up()` from nothing to 3 Ready nodes with every add-on serving (warm caches);
- RSS: the resident memory of each node container's processes (its cgroup's `rss`), and the sum;
- check: `kubelab check 02` on the lab 02 solution, rolled out to v2.
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
from pathlib import Path

from kubelab import labs, tools
from kubelab.cluster import kind_build
from kubelab.cluster.kind import KindBackend, docker_available


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
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
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

    backend = KindBackend(args.cluster, publish_ports=False)
    if backend.exists():
        backend.down()
    started = time.monotonic()
    backend.up(nodes=3)
    figures["cluster_up_s"] = round(time.monotonic() - started, 1)
    rss = node_rss(backend)
    figures["node_rss_mib"] = {k: round(v / 2**20) for k, v in rss.items()}
    figures["node_rss_total_mib"] = round(sum(rss.values()) / 2**20)

    lab = labs.find("02-deployment")
    env = {"KUBELAB_CLUSTER": args.cluster}
    kubelab = [sys.executable, "-m", "kubelab.cli"]
    kubectl = [str(tools.require("kubectl", "")), "--kubeconfig", str(backend.kubeconfig_path())]
    ns = ["-n", lab.namespace]
    full_env = {**os.environ, **env}
    subprocess.run([*kubelab, "reset", "02"], env=full_env, check=True, capture_output=True)
    solution = lab.directory / "solution" / "overlays" / "prod"
    subprocess.run(
        [*kubelab, "apply", str(solution), "--lab", "02"],
        env=full_env,
        check=True,
        capture_output=True,
    )
    subprocess.run([*kubectl, *ns, "rollout", "status", "deployment/demo-web"], check=True)
    subprocess.run(
        [*kubectl, *ns, "set", "image", "deployment/demo-web", "web=kubelab/demo-web:v2"],
        check=True,
        capture_output=True,
    )
    subprocess.run([*kubectl, *ns, "rollout", "status", "deployment/demo-web"], check=True)
    started = time.monotonic()
    check = subprocess.run([*kubelab, "check", "02"], env=full_env, capture_output=True, text=True)
    figures["check_02_s"] = round(time.monotonic() - started, 1)
    figures["check_02_exit"] = check.returncode
    if not args.keep:
        backend.down()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
