"""Setting a workshop up on a cluster and taking it down again, with the leader's credentials.

`up` gives every participant their copies of the labs (`alice-lab-02`, labelled
`kubelab.dev/participant: alice`), a grant that reaches only those (`access.confine`), and a
kubeconfig with a certificate the cluster signed for `kubelab:participant:alice`. It can be run
again: what exists is kept, what is missing is added. Everything it makes is findable afterwards
(labels on namespaces and certificate requests, grant names from participant names), so `down`
needs no record of its own.
"""

from __future__ import annotations

import base64
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import yaml

from kubelab import access, api, lab_namespaces, labs
from kubelab.errors import KubelabError
from kubelab.fence import admission, cleanup
from kubelab.i18n import _
from kubelab.lab_namespaces import MANAGED_BY, PARTICIPANT
from kubelab.progress import status
from kubelab.workshop import certs, participants

OURS = f"{PARTICIPANT},{MANAGED_BY}=kubelab"  # label selector of everything up makes
README = "README.txt"
_README_TITLE = "kubelab workshop: participants' kubeconfigs"
WORKERS = 8  # API calls overlap; the API server, not this machine, is the limit
DELETE_TIMEOUT = 180.0


@dataclass
class UpResult:
    """What `up` did."""

    out: Path
    new: list[str] = field(default_factory=list)  # participants given a new kubeconfig
    kept: list[str] = field(default_factory=list)  # participants whose kubeconfig was kept
    namespaces: int = 0  # namespaces created by this run


@dataclass
class DownResult:
    """What `down` removed."""

    participants: list[str]
    namespaces: int
    requests: int
    files: int = 0
    kept_folder: Path | None = None  # the kubeconfig folder, kept because it holds other files


def csr_name(name: str) -> str:
    """Return the name of a participant's CertificateSigningRequest."""
    return f"kubelab-participant-{name}"


def _labels(name: str) -> dict[str, str]:
    return {MANAGED_BY: "kubelab", PARTICIPANT: name}


def _claim(client: api.Api, namespace: str, name: str) -> None:
    """Make sure an existing namespace is kubelab's and labelled as `name`'s."""
    current = client.get(api.NAMESPACES, namespace) or {}
    labels = current.get("metadata", {}).get("labels") or {}
    if labels.get(MANAGED_BY) != "kubelab":
        raise KubelabError(
            _(
                "namespace {namespace} exists and kubelab did not create it: delete it or choose"
                " another participant name"
            ).format(namespace=namespace)
        )
    if labels.get(PARTICIPANT) != name:
        client.patch(api.NAMESPACES, namespace, {"metadata": {"labels": {PARTICIPANT: name}}})


def kubeconfig_owner(path: Path) -> str | None:
    """Return the participant a kubeconfig written by `up` belongs to, or None."""
    return lab_namespaces.participant(str(path)) if path.is_file() else None


def _reusable(path: Path, name: str, server: str, ca: str) -> bool:
    """Tell whether `path` is `name`'s kubeconfig for this cluster with a certificate that lasts."""
    if kubeconfig_owner(path) != name:
        return False
    try:
        config = yaml.safe_load(path.read_text())
        cluster = config["clusters"][0]["cluster"]
        pem = base64.b64decode(config["users"][0]["user"]["client-certificate-data"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError, ValueError):
        return False
    same_cluster = cluster.get("certificate-authority-data", "") == ca
    return same_cluster and cluster.get("server") == server and certs.still_valid(pem, 86400)


class _Setup:
    """One `up` run: the cluster's address and what already exists."""

    def __init__(self, client: api.Api, chosen: list[labs.Lab], out: Path, server: str | None):
        self.client = client
        self.chosen = chosen
        self.out = out
        own_server, self.ca = access.cluster_endpoint(client.kubeconfig)
        self.server = server or own_server
        self.existing: dict[str, dict[str, labs.Lab]] = {}
        by_id = {lab.id: lab for lab in labs.all_labs()}
        for ns in client.list(api.NAMESPACES, labels=OURS):
            found = ns["metadata"]["labels"]
            lab = by_id.get(found.get(lab_namespaces.LAB_LABEL, ""))
            if lab is not None:
                self.existing.setdefault(found[PARTICIPANT], {})[ns["metadata"]["name"]] = lab

    def participant(self, name: str) -> tuple[bool, int]:
        """Set one participant up; return (new kubeconfig written, namespaces created)."""
        made, mine = 0, {}
        for lab in self.chosen:
            ns = participants.namespace(name, lab)
            if lab_namespaces.ensure(self.client, lab, ns, labels={PARTICIPANT: name}):
                made += 1
            else:
                _claim(self.client, ns, name)
            mine[ns] = lab
        # Namespaces an earlier run made for other labs stay reachable.
        reach = {**self.existing.get(name, {}), **mine}
        subject = {"kind": "User", "name": participants.user(name)}
        access.confine(self.client, participants.grant(name), subject, reach)
        path = self.out / f"{name}.kubeconfig"
        if _reusable(path, name, self.server, self.ca):
            return False, made
        credential = certs.mint(
            self.client,
            csr_name(name),
            participants.user(name),
            participants.GROUP,
            labels=_labels(name),
        )
        config = access.kubeconfig_for(
            self.server,
            self.ca,
            credential.kubeconfig_user(),
            name=f"kubelab-workshop-{name}",
            namespace=next(iter(mine)),
            extensions={PARTICIPANT: name},
        )
        access.write_kubeconfig(path, config)
        return True, made


def _readme(out: Path, server: str, example: str, lab: labs.Lab) -> None:
    ns = participants.namespace(example, lab)
    days = certs.VALID_FOR // 86400
    text = f"""{_README_TITLE}
Made by `kubelab workshop up` on {time.strftime("%Y-%m-%d %H:%M")} for the cluster at {server}.

Each NAME.kubeconfig holds one participant's own credentials (a client certificate valid for
{days} days). Hand each person only their own file, as you would a password.

For the participant:
  1. Save the file, e.g. as ~/workshop.kubeconfig, and run
       export KUBECONFIG=~/workshop.kubeconfig
  2. Work through the labs as usual. `kubelab check {lab.number}` grades your own copy of the
     lab ({ns} for {example}), and kubectl works in it: `kubectl -n {ns} get pods`.
  You can see and change only your own namespaces. To start a lab afresh, ask the leader.

For the leader:
  kubelab workshop status          live board of everyone's scores (Ctrl-C to stop)
  kubelab workshop up ...          again: adds participants, keeps everything that exists;
                                   also repairs a namespace after `kubelab reset -n NS`
  kubelab workshop down --out DIR  removes the namespaces, grants and this folder's kubeconfigs
"""
    (out / README).write_text(text)


def up(
    client: api.Api,
    names: list[str],
    chosen: list[labs.Lab],
    out: Path,
    *,
    server: str | None = None,
    stream: TextIO | None = None,
) -> UpResult:
    """Set every participant up (idempotent); kubeconfigs go to `out` (created 0700)."""
    if not chosen:
        raise KubelabError(_("no labs chosen"))
    if out.exists() and not out.is_dir():
        raise KubelabError(_("--out {folder} is a file, not a folder").format(folder=out))
    chosen = sorted(chosen, key=lambda lab: lab.id)  # course order: the first is the default
    setup = _Setup(client, chosen, out, server)  # first API call: a dead cluster stops here
    admission.install(client)  # before any participant holds credentials
    if not out.exists():
        out.mkdir(mode=0o700, parents=True)
        out.chmod(0o700)  # whatever the umask: it holds everyone's credentials
    result = UpResult(out)
    lock = threading.Lock()
    with status(
        _("Setting up {n} participants").format(n=len(names)), stream=stream or sys.stderr
    ) as s:

        def one(name: str) -> None:
            new, made = setup.participant(name)
            with lock:
                (result.new if new else result.kept).append(name)
                result.namespaces += made
                s.update(
                    _("{done}/{total} ready").format(
                        done=len(result.new) + len(result.kept), total=len(names)
                    )
                )

        # The first one alone: it installs what labs need cluster-wide (CRDs) before the rest
        # apply the same objects at once.
        _each(names[:1], one, workers=1)
        _each(names[1:], one, workers=WORKERS)
    _readme(out, setup.server, names[0], chosen[0])
    result.new.sort()
    result.kept.sort()
    return result


def _each(names: list[str], fn: Callable[[str], None], *, workers: int) -> None:
    """Run fn for every name, a few at once; the first failure is raised, naming its participant."""
    if not names:
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(names))) as pool:
        futures = {pool.submit(fn, name): name for name in names}
        failures = []
        for future in as_completed(futures):
            err = future.exception()
            if err is not None:
                failures.append((futures[future], err))
    if failures:
        name, err = min(failures, key=lambda f: f[0])
        if isinstance(err, KubelabError):
            more = (
                _(" (and {n} more participants failed)").format(n=len(failures) - 1)
                if len(failures) > 1
                else ""
            )
            raise KubelabError(
                _("participant {name}: {error}").format(name=name, error=err) + more
            ) from err
        raise err


def down(client: api.Api, *, out: Path | None = None, stream: TextIO | None = None) -> DownResult:
    """Remove every participant's namespaces, grants and certificate requests, and (with `out`)
    the kubeconfigs `up` wrote there; other files are never touched."""
    namespaces = client.list(api.NAMESPACES, labels=OURS)
    requests = client.list(certs.CSRS, labels=OURS)
    names = sorted(
        {str(o["metadata"]["labels"][PARTICIPANT]) for o in [*namespaces, *requests]}
        | _kubeconfig_names(out)
    )
    with status(
        _("Removing {n} participants").format(n=len(names)), stream=stream or sys.stderr
    ) as s:
        for name in names:
            access.release(client, participants.grant(name))
        for csr in requests:
            client.delete(certs.CSRS, csr["metadata"]["name"])
        start = time.monotonic()
        left = [ns["metadata"]["name"] for ns in namespaces]
        for ns in left:
            try:  # all at once; then wait for each in turn
                client.delete(api.NAMESPACES, ns)
            except api.ApiError as err:
                if err.status != 409:
                    raise
        stuck: list[str] = []
        for i, ns in enumerate(left):
            s.update(
                _("{n} namespaces terminating, {seconds}s").format(
                    n=len(left) - i, seconds=f"{time.monotonic() - start:.0f}"
                )
            )
            budget = max(10.0, DELETE_TIMEOUT - (time.monotonic() - start))
            try:
                cleanup.delete_namespace(client, ns, timeout=budget)
            except cleanup.StillThere as err:
                stuck.append(str(err))
        # The fence policy stays: it guards every namespace kubelab makes (bulk grading may be
        # running on the same cluster), and `workshop up` or `grade` would install it again.
        if stuck:
            more = _(" (and {n} more)").format(n=len(stuck) - 1) if len(stuck) > 1 else ""
            raise KubelabError(stuck[0] + more)
    result = DownResult(names, len(namespaces), len(requests))
    if out is not None:
        _remove_kubeconfigs(out, result)
    return result


def _kubeconfig_names(out: Path | None) -> set[str]:
    if out is None or not out.is_dir():
        return set()
    return {owner for f in out.glob("*.kubeconfig") if (owner := kubeconfig_owner(f)) == f.stem}


def _remove_kubeconfigs(out: Path, result: DownResult) -> None:
    """Delete the files `up` wrote in `out`, and `out` itself once nothing else is in it."""
    if not out.is_dir():
        return
    for f in out.glob("*.kubeconfig"):
        if kubeconfig_owner(f) == f.stem:
            f.unlink()
            result.files += 1
    readme = out / README
    if readme.is_file() and readme.read_text(errors="replace").startswith(_README_TITLE):
        readme.unlink()
        result.files += 1
    if any(out.iterdir()):
        result.kept_folder = out
    else:
        out.rmdir()


def resolve_out(text: str | None) -> Path:
    """Return the kubeconfig folder (default ./workshop-kubeconfigs)."""
    return Path(os.path.expanduser(text or "workshop-kubeconfigs"))
