"""The course cluster in the learner's own kubeconfig, as `kind create cluster` does it.

`cluster up` adds a cluster, a user and a context all named for the cluster to the file kubectl
reads by default ($KUBECONFIG's first file, else ~/.kube/config), so every kubectl command a hint
prints works as typed in a new shell. It backs that file up once, changes no other entry, and
makes its context current only if none is set or kubelab's already was. `cluster down` removes
exactly what `up` added. The edits go through `kubectl config`, which merges and keeps the file's
mode; what was added is recorded beside the cluster's state.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelab import tools
from kubelab.cluster import state
from kubelab.i18n import N_

OPT_OUT_ENV = "KUBELAB_NO_KUBECONFIG"  # set (to anything but "" or 0) to leave kubeconfigs alone
BACKUP_SUFFIX = ".kubelab-backup"


@dataclass(frozen=True)
class Added:
    """A context `up` wrote: in which file, named what, and whether it was made current."""

    file: Path
    name: str
    current: bool


def opted_out() -> bool:
    """Tell whether the learner asked kubelab to leave their kubeconfig alone."""
    return os.environ.get(OPT_OUT_ENV, "") not in ("", "0")


def default_file() -> Path:
    """Return the kubeconfig kubectl writes to: $KUBECONFIG's first file, else ~/.kube/config."""
    for entry in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if entry:
            return Path(entry).expanduser()
    return Path.home() / ".kube" / "config"


def _record(cluster: str) -> Path:
    return state.side_file(cluster, ".user-kubeconfig.json")


def _config(file: Path, *args: str) -> str:
    kubectl = tools.require("kubectl", N_("to add the cluster to your kubeconfig"))
    argv: list[str | Path] = [kubectl, "config", "--kubeconfig", file, *args]
    proc = tools.run(argv, what=f"kubectl config {args[0]} ({file})", timeout=30)
    return proc.stdout


def _view(file: Path, *extra: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(_config(file, "view", "--raw", "-o", "json", *extra))
    return found


def add(cluster: str, source: Path) -> Added | None:
    """Add the cluster of kubeconfig `source` to the learner's kubeconfig, named `cluster`.

    Returns None when that kubeconfig is `source` itself (KUBECONFIG already points at it).
    """
    target = default_file()
    if target.resolve() == source.resolve():
        return None
    # Certificates inline, as kind writes them: the file stays valid wherever the cluster's is.
    own = _view(source, "--minify", "--flatten")
    server = own["clusters"][0]["cluster"]
    user = own["users"][0]["user"]
    if target.exists():
        backup = target.with_name(target.name + BACKUP_SUFFIX)
        if not backup.exists():  # the learner's file as it was before kubelab first touched it
            shutil.copy2(target, backup)
    else:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _config(target, "set-cluster", cluster, f"--server={server['server']}")
    for key in ("certificate-authority-data", "tls-server-name"):
        if key in server:
            _config(target, "set", f"clusters.{cluster}.{key}", str(server[key]))
    _config(target, "set-credentials", cluster)
    for key in ("client-certificate-data", "client-key-data", "token"):
        if key in user:
            _config(target, "set", f"users.{cluster}.{key}", str(user[key]))
    _config(target, "set-context", cluster, f"--cluster={cluster}", f"--user={cluster}")
    current = _view(target).get("current-context") or ""
    made_current = current in ("", cluster)
    if made_current:
        _config(target, "use-context", cluster)
    _record(cluster).write_text(json.dumps({"file": str(target), "name": cluster}) + "\n")
    return Added(target, cluster, made_current)


def remove(cluster: str) -> Added | None:
    """Remove what `add` wrote for `cluster` (nothing else); None if it wrote nothing."""
    try:
        recorded = json.loads(_record(cluster).read_text())
        file, name = Path(recorded["file"]), str(recorded["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not file.is_file():
        _record(cluster).unlink(missing_ok=True)
        return None
    config = _view(file)
    was_current = config.get("current-context") == name
    if was_current:
        _config(file, "unset", "current-context")
    for kind, verb in (("contexts", "delete-context"), ("clusters", "delete-cluster")):
        if any(entry.get("name") == name for entry in config.get(kind) or []):
            _config(file, verb, name)
    if any(entry.get("name") == name for entry in config.get("users") or []):
        _config(file, "delete-user", name)
    _record(cluster).unlink(missing_ok=True)
    return Added(file, name, was_current)
