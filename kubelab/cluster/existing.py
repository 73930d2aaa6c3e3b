"""A cluster kubelab did not start: a cloud one, or a lab's own, registered with `cluster use`.

`kubelab cluster use --kubeconfig FILE [--context NAME]` records the file and the context under
the course cluster's name. kubelab then keeps a one-context copy of that kubeconfig in its cache
(relative paths made absolute, the chosen context current, refreshed whenever the source file
changes), and `kubeconfig_path()` returns that copy. Every command that finds the course cluster
through `api.default_kubeconfig()` (`check`, `reset`, `workshop`, `grade`, notebooks) therefore
works there unchanged, and kubectl reads the same file. kubelab never starts, stops or deletes
such a cluster: `down` only forgets it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import yaml

from kubelab import api, kube
from kubelab.cluster import state
from kubelab.cluster.base import DEFAULT_NODES, ClusterStatus
from kubelab.errors import KubelabError

NAME = "existing"
# Kubeconfig fields that name a file, resolved against the kubeconfig's folder as kubectl does.
_FILE_FIELDS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


def _entry(config: dict[str, Any], section: str, name: str) -> dict[str, Any] | None:
    for item in config.get(section) or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


def _absolute(body: dict[str, Any], fields: tuple[str, ...], base: Path) -> dict[str, Any]:
    out = dict(body)
    for key in fields:
        value = out.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            out[key] = str((base / value).resolve())
    return out


def read_kubeconfig(source: Path) -> dict[str, Any]:
    """Load a kubeconfig file, or raise one line saying why it cannot be used."""
    if not source.is_file():
        raise KubelabError(f"no kubeconfig at {source}")
    try:
        config = yaml.safe_load(source.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise KubelabError(f"cannot read kubeconfig {source}: {err}") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise KubelabError(f"kubeconfig {source}{where} is not valid YAML") from err
    if not isinstance(config, dict) or not isinstance(config.get("contexts"), list):
        raise KubelabError(f"{source} is not a kubeconfig (it has no contexts)")
    return config


def single_context(source: Path, context: str | None) -> tuple[str, dict[str, Any]]:
    """Return (context name, a kubeconfig holding only that context, with absolute paths)."""
    config = read_kubeconfig(source)
    name = context or config.get("current-context")
    names = [str(c.get("name")) for c in config["contexts"] if isinstance(c, dict)]
    if not name:
        raise KubelabError(
            f"{source} has no current context; pass --context (one of: {', '.join(names)})"
        )
    ctx = _entry(config, "contexts", name)
    if ctx is None:
        raise KubelabError(
            f"no context {name!r} in {source} (it has: {', '.join(names) or 'none'})"
        )
    body = ctx.get("context") or {}
    cluster = _entry(config, "clusters", str(body.get("cluster")))
    user = _entry(config, "users", str(body.get("user")))
    if cluster is None:
        raise KubelabError(
            f"context {name!r} in {source} names cluster {body.get('cluster')!r}, "
            "which the file does not define"
        )
    base = source.resolve().parent
    copy: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster["name"],
                "cluster": _absolute(cluster.get("cluster") or {}, _FILE_FIELDS["cluster"], base),
            }
        ],
        "contexts": [{"name": name, "context": body}],
        "current-context": name,
        "users": [],
    }
    if user is not None:
        copy["users"] = [
            {
                "name": user["name"],
                "user": _absolute(user.get("user") or {}, _FILE_FIELDS["user"], base),
            }
        ]
    return name, copy


def write_private(path: Path, config: dict[str, Any]) -> Path:
    """Write a kubeconfig readable by its owner only (it holds credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(yaml.safe_dump(config, sort_keys=False))
    tmp.replace(path)
    return path


class ExistingBackend:
    """A cluster someone else runs, reached through a registered kubeconfig and context."""

    name = NAME

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster

    @property
    def source(self) -> Path | None:
        """The kubeconfig file given to `cluster use`."""
        recorded = state.details(self.cluster).get("kubeconfig")
        return Path(recorded) if recorded else None

    @property
    def context(self) -> str | None:
        """The context chosen in it."""
        return state.details(self.cluster).get("context")

    def exists(self) -> bool:
        """Tell whether a cluster of this name was registered with `cluster use`."""
        return state.recorded_backend(self.cluster) == NAME

    def register(self, source: Path, context: str | None) -> str:
        """Record `source` and `context` as this course cluster; return the context used."""
        source = source.expanduser().resolve()
        chosen, copy = single_context(source, context)
        write_private(state.side_file(self.cluster, ".kubeconfig"), copy)
        state.record(self.cluster, NAME, kubeconfig=str(source), context=chosen)
        return chosen

    def kubeconfig_path(self) -> Path:
        """Return kubelab's one-context copy, rewritten first if the source file changed."""
        copy = state.side_file(self.cluster, ".kubeconfig")
        source = self.source
        if source is not None and source.is_file():
            stale = not copy.is_file() or source.stat().st_mtime > copy.stat().st_mtime
            if stale:
                # on a broken source, keep the last good copy; `cluster check` reports the problem
                with contextlib.suppress(KubelabError):
                    write_private(copy, single_context(source, self.context)[1])
        return copy

    def up(self, *, nodes: int = DEFAULT_NODES, api_port: int | None = None) -> ClusterStatus:
        """Nothing to start: report the cluster, failing in one line when it does not answer."""
        status = self.status()
        if not status.running:
            raise KubelabError(f"cluster {self.cluster!r} (existing) {status.detail}")
        return status

    def down(self) -> None:
        """Forget the registration; the cluster itself is never touched."""
        state.side_file(self.cluster, ".kubeconfig").unlink(missing_ok=True)
        state.forget(self.cluster)

    def status(self) -> ClusterStatus:
        """Report whether the API server answers these credentials, and the nodes if visible."""
        kubeconfig = self.kubeconfig_path()
        components = {"source": f"{self.source} (context {self.context})"}
        try:
            conn = api.Api(kubeconfig)
        except KubelabError as err:
            return self._down(kubeconfig, components, str(err))
        try:
            conn.request("GET", "/version")
            ready = total = 0
            try:
                nodes = conn.list(api.NODES, labels=f"!{kube.LAB_NODE_LABEL}")
            except api.ApiError as err:
                components["nodes"] = f"not readable with these credentials ({err.status})"
            else:
                total = len(nodes)
                ready = sum(1 for n in nodes if _ready(n))
        except KubelabError as err:
            return self._down(kubeconfig, components, str(err))
        finally:
            conn.close()
        return ClusterStatus(
            NAME,
            self.cluster,
            running=True,
            kubeconfig=kubeconfig,
            server=conn.server,
            nodes_ready=ready,
            nodes_total=total,
            components=components,
        )

    def _down(self, kubeconfig: Path, components: dict[str, str], why: str) -> ClusterStatus:
        return ClusterStatus(
            NAME,
            self.cluster,
            running=False,
            kubeconfig=kubeconfig,
            components=components,
            detail=f"does not answer: {why}",
        )


def _ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
