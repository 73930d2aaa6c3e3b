"""`kubelab cluster use | check | prepare`: the course on a cluster kubelab did not start.

`use` registers a kubeconfig and context as the course cluster (see `existing`), then checks it;
`check` (alias `doctor`) prints what the course needs and what is missing, one row each; `prepare`
installs the course's own parts (`parts.PARTS`) where they are absent and says what it could not.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from kubelab.cluster import EXISTING, default_cluster_name, recorded, state
from kubelab.cluster.findings import NEEDS_ADMIN, Finding, table
from kubelab.errors import KubelabError
from kubelab.i18n import _

# The kubernetes client (under api, parts, requirements, existing, sim) is imported by the
# commands, not here: `kubelab --help` builds these parsers and needs none of it.
if TYPE_CHECKING:
    from kubelab import api
    from kubelab.cluster import parts


def register(csub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `use`, `check` (`doctor`) and `prepare` to `kubelab cluster`."""
    use = csub.add_parser(
        "use", help=_("make an existing cluster (kubeconfig and context) the course's cluster")
    )
    _add_source(use, required=True)
    use.set_defaults(handler=cmd_use)
    check = csub.add_parser(
        "check", aliases=["doctor"], help=_("check what the course needs on the cluster")
    )
    _add_source(check)
    check.set_defaults(handler=cmd_check)
    prepare = csub.add_parser(
        "prepare", help=_("install the course's cluster-wide parts that are missing")
    )
    _add_source(prepare)
    prepare.set_defaults(handler=cmd_prepare)


def _add_source(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    p.add_argument(
        "--kubeconfig",
        required=required,
        metavar="FILE",
        help=_("kubeconfig of the cluster")
        if required
        else _(
            "kubeconfig of the cluster (default: the course cluster's, as `kubelab check` uses)"
        ),
    )
    p.add_argument("--context", metavar="NAME", help=_("context in it (default: its current one)"))


@contextmanager
def _one_context(source: Path, context: str | None) -> Iterator[tuple[Path, str]]:
    """A temporary one-context copy of `source` (so --context works for every reader)."""
    from kubelab.cluster_files import single_context, write_private

    name, config = single_context(source.expanduser().resolve(), context)
    with tempfile.TemporaryDirectory(prefix="kubelab-") as d:
        yield write_private(Path(d) / "kubeconfig", config), name


@contextmanager
def _target(args: argparse.Namespace) -> Iterator[api.Api]:
    """A connection to the cluster the command is about; its errors name the file and context."""
    from kubelab import api

    explicit = args.kubeconfig
    if args.context and not explicit:  # a context of the usual kubeconfig
        env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        explicit = env or str(Path.home() / ".kube" / "config")
    if not explicit:
        backend = None if os.environ.get("KUBECONFIG") else recorded(args.name)
        conn = api.Api(backend.kubeconfig_path() if backend else None)
        try:
            yield conn
        finally:
            conn.close()
        return
    with _one_context(Path(explicit), args.context) as (kubeconfig, context):
        where = _("context {context} of {file}").format(context=context, file=explicit)
        try:
            conn = api.Api(kubeconfig)
        except KubelabError as err:  # name the user's file, not the temporary copy
            raise KubelabError(str(err).replace(str(kubeconfig), explicit)) from err
        try:
            yield conn
        except api.ClusterUnreachable as err:
            if err.no_answer:
                raise api.ClusterUnreachable(
                    _(
                        "no cluster answers at {server} ({where}): is it running, and are the"
                        " kubeconfig and context the right ones?"
                    ).format(server=conn.server, where=where),
                    no_answer=True,
                ) from err
            raise api.ClusterUnreachable(
                _("{problem} ({where})").format(problem=err, where=where)
            ) from err
        finally:
            conn.close()


def _print_table(findings: list[Finding]) -> int:
    print(table(findings))
    failing = [f for f in findings if f.failing]
    if failing:
        print(
            "\n"
            + _("{failing} of {total} requirements not met: see WHAT TO DO above").format(
                failing=len(failing), total=len(findings)
            )
        )
        return 1
    print("\n" + _("the cluster has what the course needs"))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Print the requirement table; exit 0 when everything needed is there, else 1."""
    from kubelab.cluster import requirements

    with _target(args) as conn:
        return _print_table(requirements.check(conn))


def cmd_use(args: argparse.Namespace) -> int:
    """Register an existing cluster under the course cluster's name, then check it."""
    from kubelab.cluster import requirements
    from kubelab.cluster.existing import ExistingBackend
    from kubelab.cluster.sim import SimBackend

    cluster: str = args.name
    other = state.recorded_backend(cluster)
    if (other and other != EXISTING) or (other is None and SimBackend(cluster).exists()):
        raise KubelabError(
            _(
                "cluster {name} runs on {backend} here; `kubelab cluster down` it first,"
                " or pass another --name (and set KUBELAB_CLUSTER to it)"
            ).format(name=repr(cluster), backend=other or "sim")
        )
    source = Path(args.kubeconfig).expanduser()
    with _target(args) as conn:  # nothing is recorded unless the cluster answers
        findings = requirements.check(conn)
        server = conn.server
    backend = ExistingBackend(cluster)
    context = backend.register(source, args.context)
    print(
        _("cluster {name} is now {server} (context {context} of {file});").format(
            name=repr(cluster), server=server, context=context, file=source.resolve()
        )
        + "\n"
        + _("kubeconfig: {file}").format(file=backend.kubeconfig_path())
        + "\n"
    )
    code = _print_table(findings)
    if os.environ.get("KUBECONFIG"):
        print(
            _(
                "note: KUBECONFIG is set, and kubelab commands use it first;"
                " `export KUBECONFIG={file}` (or unset it) to use this cluster"
            ).format(file=backend.kubeconfig_path())
        )
    if cluster != default_cluster_name():
        print(
            _("note: commands use cluster {name}; to use this one:").format(
                name=repr(default_cluster_name())
            )
        )
        print(f"  export KUBELAB_CLUSTER={cluster}")
    return code


def cmd_prepare(args: argparse.Namespace) -> int:
    """Install the missing course parts; exit 0 when nothing is left to do, else 1."""
    from kubelab.cluster import parts, requirements

    with _target(args) as conn:
        requirements.Checker(conn).reach()  # one line and exit 2 when nothing answers
        target = parts.Target(conn)
        actions = [a for p in parts.PARTS for a in parts.prepare_part(target, p)]
    for line in _lines(actions):
        print(line)
    created = sum(1 for a in actions if a.what == "created")
    upgraded = sum(1 for a in actions if a.what in ("upgraded", "updated"))
    kept = sum(1 for a in actions if a.what == "kept")
    admin = [a for a in actions if a.what == NEEDS_ADMIN]
    other = [a for a in actions if a.failing and a.what != NEEDS_ADMIN]
    print(
        "\n"
        + _(
            "{created} created, {updated} updated, {kept} kept as they were (not created by"
            " kubelab), {admin} needs cluster-admin, {other} not done"
        ).format(created=created, updated=upgraded, kept=kept, admin=len(admin), other=len(other))
    )
    if admin:
        print(
            _(
                "needs cluster-admin: {parts}; ask the cluster's admin to run"
                " `kubelab cluster prepare`"
            ).format(parts=", ".join(dict.fromkeys(_(a.part) for a in admin)))
        )
    return 1 if admin or other else 0


def _lines(actions: list[parts.Action], collapse: int = 3) -> Iterator[str]:
    """One line per action, but `collapse` or more alike in one part say so once."""
    from kubelab.cluster import parts

    alike = Counter((a.part, a.what, a.detail) for a in actions)
    said: set[tuple[str, str, str]] = set()
    for a in actions:
        key = (a.part, a.what, a.detail)
        if alike[key] < collapse:
            yield a.line()
        elif key not in said:
            said.add(key)
            many = parts.Action(
                a.part,
                a.what,
                _("{n} objects of {part}").format(n=alike[key], part=_(a.part)),
                a.detail,
            )
            yield many.line()
