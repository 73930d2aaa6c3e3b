"""The simulated cluster: a real control plane with KWOK nodes, supervised by kwokctl.

kube-apiserver, kube-controller-manager, kube-scheduler, etcd and metrics-server are real
programs built from pinned sources (see `sim_build`); KWOK fakes the nodes and the pods' status.
kwokctl's binary runtime starts and stops the processes; kubelab adds nodes, storage classes and
the Gateway API CRDs, and never downloads anything at run time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from kubelab import api, cluster_files, kube, paths, procs, progress, tools, wait
from kubelab.cluster import machine_lock, parts, sim_fetch, state
from kubelab.cluster.base import DEFAULT_NODES, ClusterStatus
from kubelab.cluster.gateway_crds import VENDORED
from kubelab.errors import KubelabError
from kubelab.i18n import N_, _

KWOKCTL_CONFIG = paths.SIM_DIR / "kwokctl.yaml"
# KWOK Stages: KWOK's defaults plus the planted faults of the fault drills (sim/stages/faults.yaml).
# Given any Stage, kwokctl adds none of its defaults, hence both files.
STAGES = (paths.SIM_DIR / "stages" / "kwok-defaults.yaml", paths.SIM_DIR / "stages" / "faults.yaml")
GATEWAY_CRDS = VENDORED
ADDONS = paths.MANIFESTS_DIR / "cluster" / "sim"

# Fake nodes look like a modest real node, so requests vs allocatable means something in labs.
# No node IPs: kwok then gives each node the address `localhost` (type Hostname), which is where
# metrics-server can reach kwok's simulated kubelet metrics; the template's default 192.0.2.x
# addresses route nowhere on a laptop.
NODE_PARAMS = (
    '.allocatable.cpu = "8"',
    '.allocatable.memory = "32Gi"',
    ".allocatable.pods = 110",
    ".nodeIPs = []",
)
PORT_OPTIONS = (
    "kubeApiserverPort",
    "etcdPort",
    "etcdPeerPort",
    "kwokControllerPort",
    "kubeControllerManagerPort",
    "kubeSchedulerPort",
    "metricsServerPort",
)


class SimBackend:
    """Run the course cluster with kwokctl's binary runtime."""

    name = "sim"

    def __init__(self, cluster: str = "kubelab", workdir: Path | None = None) -> None:
        self.cluster = cluster
        self.workdir = workdir or cluster_files.sim_workdir()

    # --- files kwokctl keeps -------------------------------------------------------------------

    @property
    def cluster_dir(self) -> Path:
        """kwokctl's folder for this cluster."""
        return self.workdir / "clusters" / self.cluster

    def kubeconfig_path(self) -> Path:
        """Return the admin kubeconfig kwokctl wrote for this cluster."""
        return cluster_files.sim_kubeconfig(self.cluster, self.workdir)

    def exists(self) -> bool:
        """Tell whether kwokctl has a cluster of this name."""
        return (self.cluster_dir / "kwok.yaml").is_file()

    def pids(self) -> dict[str, int]:
        """Return component name -> pid for every process kwokctl recorded."""
        result: dict[str, int] = {}
        pid_dir = self.cluster_dir / "pids"
        if pid_dir.is_dir():
            for f in sorted(pid_dir.glob("*.pid")):
                try:
                    result[f.stem] = int(f.read_text().strip())
                except ValueError:
                    continue
        return result

    def saved_config(self) -> dict[str, Any]:
        """Return the options kwokctl saved for this cluster (ports, binaries, flags)."""
        try:
            for doc in yaml.safe_load_all((self.cluster_dir / "kwok.yaml").read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "KwokctlConfiguration":
                    options = doc.get("options") or {}
                    return options if isinstance(options, dict) else {}
        except (OSError, yaml.YAMLError):
            pass
        return {}

    def ports(self) -> dict[str, int]:
        """Return option name -> TCP port for every port the cluster was given."""
        options = self.saved_config()
        return {k: int(options[k]) for k in PORT_OPTIONS if options.get(k)}

    # --- running kwokctl -----------------------------------------------------------------------

    def _env(self, bin_dir: Path) -> dict[str, str]:
        kubectl = tools.require("kubectl", N_("by kwokctl to talk to the cluster"))
        env = dict(os.environ)
        env["KWOK_WORKDIR"] = str(self.workdir)
        env["PATH"] = os.pathsep.join([str(bin_dir), str(kubectl.parent), env.get("PATH", "")])
        return env

    def kwokctl(
        self, *args: str, bin_dir: Path | None = None, timeout: float = 180, check: bool = True
    ) -> str:
        """Run kwokctl for this cluster and return its output."""
        bin_dir = bin_dir or sim_fetch.ensure_binaries()
        argv = [str(bin_dir / "kwokctl"), "--name", self.cluster, *args]
        verb = " ".join(a for a in args[:4] if not a.startswith("-") and "/" not in a)
        proc = tools.run(
            argv, env=self._env(bin_dir), timeout=timeout, check=False, what=f"kwokctl {verb}"
        )
        if check and proc.returncode != 0:
            raise KubelabError(
                _("{what} failed: {reason}").format(
                    what=f"kwokctl {verb}", reason=_kwokctl_error(proc.stderr)
                )
            )
        return proc.stdout

    def write_config(self, bin_dir: Path, ports: dict[str, int] | None = None) -> Path:
        """Write the kwokctl config: sim/kwokctl.yaml, the paths of the cached binaries, the Stages.

        Every artifact kwokctl would otherwise download (binaries, the metrics-server manifest)
        is given as a local path, so creating a cluster never touches the network.
        """
        doc = yaml.safe_load(KWOKCTL_CONFIG.read_text())
        options = doc.setdefault("options", {})
        options.update(
            {
                "kubeApiserverBinary": str(bin_dir / "kube-apiserver"),
                "kubeControllerManagerBinary": str(bin_dir / "kube-controller-manager"),
                "kubeSchedulerBinary": str(bin_dir / "kube-scheduler"),
                "kwokControllerBinary": str(bin_dir / "kwok"),
                "etcdBinary": str(bin_dir / "etcd"),
                "metricsServerBinary": str(bin_dir / "metrics-server"),
                "kubectlBinary": str(tools.require("kubectl", N_("by kwokctl"))),
                # Only used with --prometheus-port, which kubelab never passes. A local path that
                # does not exist makes enabling it fail here instead of downloading from GitHub.
                "prometheusBinary": str(bin_dir / "prometheus-not-provided"),
                # a kustomize dir: kwokctl renders it with kubectl instead of fetching GitHub's
                "metricsServerManifests": [
                    str(bin_dir.parent / "assets" / "metrics-server-manifests")
                ],
                **(ports or {}),
            }
        )
        # kube-controller-manager signs CertificateSigningRequests (workshop participants' user
        # certificates) with the cluster CA that kwokctl generates in <cluster>/pki before it
        # starts any component; the API server trusts that CA for client certificates.
        pki = self.cluster_dir / "pki"
        signing = [
            {"key": "cluster-signing-cert-file", "value": str(pki / "ca.crt")},
            {"key": "cluster-signing-key-file", "value": str(pki / "ca.key")},
        ]
        patches = doc.setdefault("componentsPatches", [])
        kcm = next((p for p in patches if p.get("name") == "kube-controller-manager"), None)
        if kcm is None:
            kcm = {"name": "kube-controller-manager"}
            patches.append(kcm)
        kcm.setdefault("extraArgs", []).extend(signing)
        out = self.workdir / "configs" / f"{self.cluster}.yaml"
        out.parent.mkdir(parents=True, exist_ok=True)
        # The Stages go in as written (their templates are block text, kept readable in the copy).
        stages = "".join(f"---\n{f.read_text()}\n" for f in STAGES)
        out.write_text(yaml.safe_dump(doc, sort_keys=False) + stages)
        return out

    def _claimed_ports(self) -> set[int]:
        """Every port any other sim cluster on this machine was given, running or stopped."""
        claimed: set[int] = set()
        for saved in (self.workdir / "clusters").glob("*/kwok.yaml"):
            if saved.parent.name != self.cluster:
                claimed.update(SimBackend(saved.parent.name, workdir=self.workdir).ports().values())
        return claimed

    def _pick_ports(self, api_port: int | None) -> dict[str, int]:
        """Choose this cluster's ports: free now, and given to no other sim cluster.

        kwokctl would pick ports that are merely free at this instant; a component of another
        cluster that is still starting, or stopped and about to be restarted, may own one of them,
        and whichever binds second dies with "address already in use". Called with the start lock
        held, so two starts cannot choose at the same time. Below 32768: Linux hands out ports
        from there up to clients, and a client's connection can hold any of them.
        """
        claimed = self._claimed_ports()
        chosen: dict[str, int] = {}
        if api_port:
            chosen["kubeApiserverPort"] = api_port
        port = 32767
        for option in PORT_OPTIONS:
            if option in chosen:
                continue
            while port in claimed or port in chosen.values() or not procs.port_free(port):
                port -= 1
                if port < 20000:
                    raise KubelabError(
                        _("no free TCP port between 20000 and 32767 for the cluster")
                    )
            chosen[option] = port
            port -= 1
        return chosen

    def _create_args(self, bin_dir: Path, api_port: int | None) -> list[str]:
        args = [
            "-c",
            str(self.write_config(bin_dir, self._pick_ports(api_port))),
            "create",
            "cluster",
            "--runtime",
            "binary",
            "--enable-metrics-server",
            "--kube-authorization=true",
            "--kube-admission=true",
            "--kubeconfig=",
            "--wait",
            "90s",
        ]
        return args

    # --- lifecycle -----------------------------------------------------------------------------

    def healthy(self) -> bool:
        """Tell whether every process runs and the API server answers."""
        pids = self.pids()
        if not pids or not all(procs.alive(p) for p in pids.values()):
            return False
        try:
            kubectl = tools.require("kubectl", N_("to reach the cluster"))
            out = tools.run(
                [kubectl, "--kubeconfig", self.kubeconfig_path(), "get", "--raw", "/readyz"],
                timeout=10,
                check=False,
            )
        except KubelabError:
            return False
        return out.returncode == 0 and out.stdout.strip() == "ok"

    def up(self, *, nodes: int = DEFAULT_NODES, api_port: int | None = None) -> ClusterStatus:
        """Start the cluster (downloading or building binaries first if needed), or reuse one."""
        if nodes < 1:
            raise KubelabError(_("--nodes must be at least 1"))
        bin_dir = sim_fetch.ensure_binaries()  # release download, else the Go build
        # kwokctl picks free ports when it creates a cluster, and its processes take them a moment
        # later: two clusters starting at once (two shells, two test workers) can pick the same
        # port. One start at a time on this machine, until the nodes are up.
        with machine_lock.held(self.workdir / "start.lock"):
            if self.exists() and not self.healthy():
                self._restart(bin_dir)
            if not self.exists():
                if api_port and not procs.port_free(api_port):
                    raise KubelabError(
                        _(
                            "port {port} is already in use; free it or choose another --api-port"
                        ).format(port=api_port)
                    )
                starting = _("Starting sim cluster {name}").format(name=repr(self.cluster))
                with progress.status(starting) as st:
                    st.update("etcd, kube-apiserver, controller-manager, scheduler, kwok, metrics")
                    self.kwokctl(*self._create_args(bin_dir, api_port), bin_dir=bin_dir)
            self._ensure_nodes(nodes, bin_dir)
        self._ensure_addons()
        self._check_components(bin_dir)
        state.record(self.cluster, self.name)
        return self.status()

    def _check_components(self, bin_dir: Path) -> None:
        """Revive any process that exited early, or fail with the line of its log that says why.

        metrics-server reads its client CA from the API server as it starts, and gives up if the
        API server is slow to come up (a loaded machine): one restart is all it needs.
        """
        dead = [name for name, pid in self.pids().items() if not procs.alive(pid)]
        if dead:
            self._restart(bin_dir)
        for name, pid in self.pids().items():
            if not procs.alive(pid):
                log = self.cluster_dir / "logs" / f"{name}.log"
                reason = _exit_reason(log.read_text()) if log.is_file() else _("no log")
                raise KubelabError(
                    _("{component} exited after start: {reason} (log: {log})").format(
                        component=name, reason=reason[:300], log=log
                    )
                )

    def _restart(self, bin_dir: Path) -> None:
        """Start the stopped processes of an existing cluster (after a reboot), keeping its data."""
        # kwokctl treats a pid file whose process is gone but not yet reaped (a zombie) as running
        # and would not restart it; drop the files of processes that are not really alive.
        for name, pid in self.pids().items():
            if not procs.alive(pid):
                (self.cluster_dir / "pids" / f"{name}.pid").unlink(missing_ok=True)
        restarting = _("Restarting sim cluster {name}").format(name=repr(self.cluster))
        with progress.status(restarting) as st:
            self.kwokctl("start", "cluster", bin_dir=bin_dir, check=False)
            st.update(_("waiting for the API server to be ready"))
            healthy = wait.until(self.healthy, bool, timeout=60, raise_on_timeout=False)
        if not healthy:
            # Never delete a learner's cluster state silently: say how to start afresh instead.
            raise KubelabError(
                _(
                    "sim cluster {name} exists but would not restart (logs: {logs});"
                    " `kubelab cluster down` then `up` starts a new one"
                ).format(name=repr(self.cluster), logs=self.cluster_dir / "logs")
            )

    def _ensure_nodes(self, nodes: int, bin_dir: Path) -> None:
        api = kube.api_client(self.kubeconfig_path())
        ready, total = kube.ready_nodes(api)
        if total != nodes:
            params = [a for p in NODE_PARAMS for a in ("--param", p)]
            self.kwokctl("scale", "node", "--replicas", str(nodes), *params, bin_dir=bin_dir)
        with progress.status(_("Waiting for {n} Ready nodes").format(n=nodes)) as st:

            def count() -> tuple[int, int]:
                ready, total = kube.ready_nodes(api)
                st.update(_("{ready}/{total} Ready").format(ready=ready, total=nodes))
                return ready, total

            ready, total = wait.until(
                count, lambda rt: rt == (nodes, nodes), timeout=60, raise_on_timeout=False
            )
        if (ready, total) != (nodes, nodes):
            # Usually kwok-controller died; its log says why (a port another cluster took while
            # both were starting shows as "address already in use").
            for name, pid in self.pids().items():
                log = self.cluster_dir / "logs" / f"{name}.log"
                if not procs.alive(pid) and log.is_file():
                    raise KubelabError(
                        _(
                            "only {ready} of {nodes} nodes became Ready: {component} exited:"
                            " {reason}; `kubelab cluster down` then `up` starts afresh"
                        ).format(
                            ready=ready,
                            nodes=nodes,
                            component=name,
                            reason=_exit_reason(log.read_text())[:200],
                        )
                    )
            raise KubelabError(
                _("only {ready} of {nodes} nodes became Ready within 60s").format(
                    ready=ready, nodes=nodes
                )
            )

    def _addons_digest(self) -> str:
        h = hashlib.sha256(GATEWAY_CRDS.read_bytes())
        for f in sorted(ADDONS.iterdir()):
            h.update(f.name.encode() + f.read_bytes())
        h.update(parts.fence_digest().encode())
        return h.hexdigest()

    def _ensure_addons(self) -> None:
        """Apply the add-ons unless this cluster already has exactly these (saves ~3 s on reuse)."""
        stamp = self.cluster_dir / "kubelab-addons.sha256"
        digest = self._addons_digest()
        if stamp.is_file() and stamp.read_text() == digest:
            return
        self._apply_addons()
        stamp.write_text(digest)

    def _apply_addons(self) -> None:
        kubectl = tools.require("kubectl", N_("to install the cluster add-ons"))
        kc = ["--kubeconfig", str(self.kubeconfig_path())]
        with progress.status(_("Installing Gateway API CRDs, storage classes, GatewayClass")):
            tools.run(
                [kubectl, *kc, "apply", "--server-side", "--force-conflicts", "-f", GATEWAY_CRDS],
                what=_("applying the Gateway API CRDs"),
            )
            crds = [
                f"crd/{d['metadata']['name']}"
                for d in yaml.safe_load_all(GATEWAY_CRDS.read_text())
                if d and d.get("kind") == "CustomResourceDefinition"
            ]
            tools.run(
                [kubectl, *kc, "wait", "--for=condition=Established", "--timeout=60s", *crds],
                what=_("waiting for the Gateway API CRDs"),
            )
            tools.run(
                [kubectl, *kc, "apply", "--server-side", "--force-conflicts", "-k", ADDONS],
                what=_("applying the cluster add-ons"),
            )
        with progress.status(_("Installing the fence (roles, admission policies, API fairness)")):
            conn = api.Api(self.kubeconfig_path())
            try:
                parts.fence_up(conn)
            finally:
                conn.close()

    def down(self) -> None:
        """Stop every component process and delete the cluster's files."""
        if not self.exists():
            raise KubelabError(
                _("no sim cluster named {name} is up").format(name=repr(self.cluster))
            )
        pids = self.pids()
        with progress.status(_("Stopping sim cluster {name}").format(name=repr(self.cluster))):
            self.kwokctl("delete", "cluster", check=False)
            wait.until(
                lambda: [p for p in pids.values() if procs.alive(p)],
                lambda alive: not alive,
                timeout=15,
                interval=0.1,
                raise_on_timeout=False,
            )
        state.forget(self.cluster)
        left = [f"{name} (pid {p})" for name, p in pids.items() if procs.alive(p)]
        if left:
            raise KubelabError(
                _("these processes did not stop: {processes}").format(processes=", ".join(left))
            )

    def status(self) -> ClusterStatus:
        """Report the processes, the API server and the nodes."""
        if not self.exists():
            return ClusterStatus(self.name, self.cluster, running=False, detail=_("not created"))
        components = {
            name: (
                _("running (pid {pid})").format(pid=pid)
                if procs.alive(pid)
                else _("stopped (pid {pid})").format(pid=pid)
            )
            for name, pid in self.pids().items()
        }
        port = self.ports().get("kubeApiserverPort")
        server = f"https://127.0.0.1:{port}" if port else None
        if not self.healthy():
            return ClusterStatus(
                self.name,
                self.cluster,
                running=False,
                kubeconfig=self.kubeconfig_path(),
                server=server,
                components=components,
                detail=_("processes stopped or API not ready"),
            )
        ready, total = kube.ready_nodes(kube.api_client(self.kubeconfig_path()))
        return ClusterStatus(
            self.name,
            self.cluster,
            running=True,
            kubeconfig=self.kubeconfig_path(),
            server=server,
            nodes_ready=ready,
            nodes_total=total,
            components=components,
        )


def _exit_reason(log: str) -> str:
    """Pick the line of a component's log that says why it exited (Go panics end in a stack)."""
    for line in log.splitlines():
        if line.startswith(("panic:", "Error:", "F")) and not line.startswith("Flag"):
            return line.strip()
    return tools.last_line(log)


def _kwokctl_error(stderr: str) -> str:
    """Return the `err` of kwokctl's last JSON log line, or its last line as it is."""
    line = tools.last_line(stderr)
    try:
        record = json.loads(line)
    except ValueError:
        return line
    return str(record.get("err") or record.get("msg") or line) if isinstance(record, dict) else line
