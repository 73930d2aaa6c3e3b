"""What kubelab keeps on disk about each named cluster: its record and its kubeconfig file.

`kubelab cluster up` (or `use`) records which backend runs a cluster; every later command, the
JSON client included (`api.default_kubeconfig`), finds the cluster's kubeconfig from that record.
This module knows where each backend keeps that file without importing the backends, so the
client stays in the bottom layer: `kubelab.cluster` (the backends) builds on it, never the reverse.
`kubelab.cluster.state` and `kubelab.cluster.existing` keep the names they always had.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from kubelab import paths
from kubelab.errors import KubelabError
from kubelab.i18n import _

EXISTING = "existing"  # the backend name of a cluster registered with `kubelab cluster use`


def default_cluster_name() -> str:
    """Return the cluster name: $KUBELAB_CLUSTER or ``kubelab``."""
    return os.environ.get("KUBELAB_CLUSTER", "kubelab")


def _file(cluster: str) -> Path:
    d = paths.cache_home() / "clusters"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{cluster}.json"


def recorded_backend(cluster: str) -> str | None:
    """Return the backend recorded for `cluster`, if any."""
    f = _file(cluster)
    if not f.is_file():
        return None
    try:
        value = json.loads(f.read_text()).get("backend")
    except (OSError, ValueError):
        return None
    return value if isinstance(value, str) else None


def record(cluster: str, backend: str, **details: str) -> None:
    """Note that `cluster` runs on `backend` (with backend-specific `details`, all strings)."""
    _file(cluster).write_text(json.dumps({"backend": backend, **details}) + "\n")


def details(cluster: str) -> dict[str, str]:
    """Return everything recorded for `cluster` ({} when nothing is)."""
    try:
        value = json.loads(_file(cluster).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(v, str)}


def side_file(cluster: str, suffix: str) -> Path:
    """Return a file kept beside the record of `cluster` (e.g. ``.kubeconfig``)."""
    return _file(cluster).with_suffix(suffix)


def forget(cluster: str) -> None:
    """Drop the record for `cluster`."""
    _file(cluster).unlink(missing_ok=True)


# --- the kubeconfig of each backend -----------------------------------------------------------


def sim_workdir() -> Path:
    """Return kwokctl's work folder for sim clusters."""
    return paths.cache_home() / "kwok"


def sim_kubeconfig(cluster: str, workdir: Path | None = None) -> Path:
    """Return the admin kubeconfig kwokctl writes for a sim cluster."""
    return (workdir or sim_workdir()) / "clusters" / cluster / "kubeconfig.yaml"


def kind_kubeconfig(cluster: str) -> Path:
    """Return the kubeconfig kubelab keeps for a kind cluster (not ~/.kube/config)."""
    return paths.cache_home() / "kind" / f"{cluster}.kubeconfig"


def existing_kubeconfig(cluster: str) -> Path:
    """Return the one-context copy of a registered cluster's kubeconfig, rewritten first if the
    source file changed since (on a broken source the last good copy stays)."""
    copy = side_file(cluster, ".kubeconfig")
    recorded = details(cluster)
    source = Path(recorded["kubeconfig"]) if recorded.get("kubeconfig") else None
    if source is not None and source.is_file():
        stale = not copy.is_file() or source.stat().st_mtime > copy.stat().st_mtime
        if stale:
            # on a broken source, keep the last good copy; `cluster check` reports the problem
            with contextlib.suppress(KubelabError):
                write_private(copy, single_context(source, recorded.get("context"))[1])
    return copy


def recorded_kubeconfig(cluster: str) -> Path | None:
    """Return the kubeconfig of the cluster recorded under this name, or None if none is."""
    backend = recorded_backend(cluster)
    if backend is None:
        return None
    if backend == EXISTING:
        return existing_kubeconfig(cluster)
    if backend == "sim":
        return sim_kubeconfig(cluster)
    return kind_kubeconfig(cluster)  # as `kubelab.cluster.recorded` makes any other name kind


# --- one-context copies of a kubeconfig -------------------------------------------------------

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
        raise KubelabError(_("no kubeconfig at {file}").format(file=source))
    try:
        config = yaml.safe_load(source.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise KubelabError(
            _("cannot read kubeconfig {file}: {error}").format(file=source, error=err)
        ) from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise KubelabError(
            _("kubeconfig {file} is not valid YAML").format(file=f"{source}{where}")
        ) from err
    if not isinstance(config, dict) or not isinstance(config.get("contexts"), list):
        raise KubelabError(_("{file} is not a kubeconfig (it has no contexts)").format(file=source))
    return config


def single_context(source: Path, context: str | None) -> tuple[str, dict[str, Any]]:
    """Return (context name, a kubeconfig holding only that context, with absolute paths)."""
    config = read_kubeconfig(source)
    name = context or config.get("current-context")
    names = [str(c.get("name")) for c in config["contexts"] if isinstance(c, dict)]
    if not name:
        raise KubelabError(
            _("{file} has no current context; pass --context (one of: {names})").format(
                file=source, names=", ".join(names)
            )
        )
    ctx = _entry(config, "contexts", name)
    if ctx is None:
        raise KubelabError(
            _("no context {name} in {file} (it has: {names})").format(
                name=repr(name), file=source, names=", ".join(names) or _("none")
            )
        )
    body = ctx.get("context") or {}
    cluster = _entry(config, "clusters", str(body.get("cluster")))
    user = _entry(config, "users", str(body.get("user")))
    if cluster is None:
        raise KubelabError(
            _(
                "context {name} in {file} names cluster {cluster}, which the file does not define"
            ).format(name=repr(name), file=source, cluster=repr(body.get("cluster")))
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
