"""The `kubelab` command line.

Every user-fixable problem is a `KubelabError`, printed as one line with exit code 2. A bug in
kubelab prints one line too, and the traceback goes to a log file instead of the learner's screen.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from kubelab import __version__, paths, procs, tools
from kubelab.cluster import (
    BACKENDS,
    backend_for,
    default_cluster_name,
    recorded,
    state,
    user_kubeconfig,
)
from kubelab.cluster.base import DEFAULT_NODES, Backend, ClusterStatus
from kubelab.cluster.findings import pad, width
from kubelab.errors import KubelabError
from kubelab.i18n import N_, _


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        """Print the error on one line and exit 2."""
        self.exit(
            2,
            _("{prog}: error: {message} (see --help)").format(prog=self.prog, message=message)
            + "\n",
        )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(_("must be at least 1, got {value}").format(value=value))
    return value


def _language(text: str) -> str:
    from kubelab import i18n

    lang = i18n.normalise(text)
    if lang is None:
        raise argparse.ArgumentTypeError(
            _("choose one of {choices}, not {value}").format(
                choices=", ".join(i18n.LANGUAGES), value=repr(text)
            )
        )
    return lang


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(_("not a TCP port: {value}").format(value=value))
    return value


# argparse's own words (the help's headings, its usage errors) as argparse (Python >= 3.10) marks
# them for gettext: kubelab's catalogue translates them too, and `_argparse_speaks_kubelab` makes
# argparse read them from it, so a learner's --help and usage errors are in one language.
_ARGPARSE_WORDS = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("invalid %(type)s value: %(value)r"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("expected one argument"),
    N_("one of the arguments %s is required"),
    N_("not allowed with argument %s"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
)


def _argparse_speaks_kubelab() -> None:
    """Have argparse translate its own words with kubelab's catalogue (argparse looks its `_`
    up when it builds a parser or reports an error; English stays English)."""
    argparse._ = _  # type: ignore[attr-defined]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for every subcommand."""
    _argparse_speaks_kubelab()
    p = _Parser(prog="kubelab", description=_("Kubernetes from zero to production, by doing."))
    p.add_argument(
        "--version",
        action="version",
        version=f"kubelab {__version__}",
        help=_("show program's version number and exit"),
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    init = sub.add_parser(
        "init", help=_("make your workspace: the notebooks and labs to work in (no solutions)")
    )
    init.add_argument("dir", type=Path, help=_("the folder to make, e.g. ~/k8s-course"))
    init.add_argument(
        "--lang",
        type=_language,
        help=_("the course's language: en or zh-CN (default: KUBELAB_LANG, else your locale)"),
    )

    start = sub.add_parser("start", help=_("start a cluster and open your workspace in JupyterLab"))
    start.add_argument(
        "dir",
        nargs="?",
        type=Path,
        help=_("the workspace (default: the one around this folder, else the last `kubelab init`)"),
    )
    start.add_argument(
        "--instructor",
        action="store_true",
        help=_("open the course sources (answers, nbgrader's instructor tools) instead"),
    )
    _add_up_args(start)
    start.add_argument("--port", type=_port, default=8888, help=_("JupyterLab port (default 8888)"))
    start.add_argument("--no-browser", action="store_true", help=_("do not open a browser"))

    cluster = sub.add_parser("cluster", help=_("start, stop and inspect the course cluster"))
    cluster.add_argument("--name", default=default_cluster_name(), help=_("cluster name"))
    csub = cluster.add_subparsers(dest="action", required=True, parser_class=_Parser)
    _add_up_args(csub.add_parser("up", help=_("start the cluster (reuses a running one)")))
    csub.add_parser("down", help=_("stop the cluster and free its ports"))
    csub.add_parser("status", help=_("show whether the cluster runs"))
    csub.add_parser("kubeconfig", help=_("print the kubeconfig path"))
    csub.add_parser("env", help=_("print an `export KUBECONFIG=...` line for your shell"))
    # `use`, `check` (`doctor`), `prepare`: the course on a cluster kubelab did not start
    from kubelab.cluster import commands as existing_cluster

    existing_cluster.register(csub)

    sub.add_parser("labs", help=_("list the labs and your progress in each"))

    check = sub.add_parser("check", help=_("grade a lab against the cluster's state"))
    check.add_argument("lab", help=_("lab id or number, e.g. 02-deployment or 02"))
    _add_namespace_arg(check)
    check.add_argument(
        "--task", action="append", metavar="ID", help=_("only this task (repeatable)")
    )
    check.add_argument("--json", action="store_true", help=_("print the report as JSON"))
    check.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        help=_("seconds to wait for the cluster to converge (default: the lab's, 60 for most)"),
    )

    reset = sub.add_parser(
        "reset", help=_("return a lab's namespace to its start state (your files are kept)")
    )
    reset.add_argument("lab", help=_("lab id or number"))
    _add_namespace_arg(reset)

    apply = sub.add_parser(
        "apply", help=_("validate, then apply manifests (file, folder or Kustomize folder)")
    )
    apply.add_argument("path", help=_("a manifest file, a folder of them, or a Kustomize folder"))
    where = apply.add_mutually_exclusive_group(required=True)
    where.add_argument("--lab", help=_("apply into this lab's namespace"))
    where.add_argument("-n", "--namespace", help=_("apply into this namespace"))
    apply.add_argument(
        "--force",
        action="store_true",
        help=_("apply another lab's folder (labs/NN-*/) into --lab's namespace all the same"),
    )

    # Command groups of their own packages (each sets `handler`; both import nothing heavy).
    from kubelab.instructor import commands as grade
    from kubelab.workshop import commands as workshop

    workshop.register(sub)
    grade.register(sub)
    return p


def _add_namespace_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-n",
        "--namespace",
        default=None,
        help=_(
            "namespace to use (default: $KUBELAB_NAMESPACE, else a workshop participant's own"
            " copy of the lab's namespace, else the lab's own)"
        ),
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("not a number of seconds: {value}").format(value=repr(text))
        ) from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(
            _("must be between 0 and 3600 seconds, got {value}").format(value=f"{value:g}")
        )
    return value


def _add_up_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help=_("sim (no Docker), kind (Docker), or auto (kind if Docker answers)"),
    )
    p.add_argument(
        "--nodes", type=_positive, default=DEFAULT_NODES, help=_("node count (default 3)")
    )
    p.add_argument("--api-port", type=_port, default=None, help=_("fixed API server port (sim)"))
    p.add_argument(
        "--no-kubeconfig",
        action="store_true",
        help=_(
            "leave your kubeconfig alone: no `kubelab` context (or set $KUBELAB_NO_KUBECONFIG=1)"
        ),
    )


def _current(cluster: str) -> Backend:
    from kubelab.cluster.sim import SimBackend

    backend = recorded(cluster)
    if backend is None and SimBackend(cluster).exists():
        backend = SimBackend(cluster)
    if backend is None:
        raise KubelabError(
            _("no cluster {name} is up; start one with `kubelab cluster up`").format(
                name=repr(cluster)
            )
        )
    return backend


def _print_status(s: ClusterStatus) -> None:
    rows = [
        (_("cluster"), f"{s.name} ({s.backend})"),
        (
            _("state"),
            _("running") if s.running else _("not running: {detail}").format(detail=s.detail),
        ),
    ]
    if s.server:
        rows.append((_("server"), s.server))
    if s.running:
        rows.append(
            (
                _("nodes"),
                _("{ready}/{total} Ready").format(ready=s.nodes_ready, total=s.nodes_total),
            )
        )
    if s.kubeconfig:
        rows.append(("kubeconfig", str(s.kubeconfig)))
    for name, what in s.components.items():
        rows.append((name, what))
    columns = max(width(key) for key, _value in rows)
    for key, value in rows:
        print(f"{pad(key, columns)}  {value}")


def _up(cluster: str, args: argparse.Namespace) -> ClusterStatus:
    """Start (or reuse) the cluster, print its status, and point the learner's kubectl at it."""
    backend = backend_for(cluster, args.backend)
    status = backend.up(nodes=args.nodes, api_port=args.api_port)
    _print_status(status)
    if backend.name == "existing" or status.kubeconfig is None:
        return status  # a cluster the learner's kubeconfig already has
    if args.no_kubeconfig or user_kubeconfig.opted_out():
        print(f"\nexport KUBECONFIG={status.kubeconfig}  # " + _("points kubectl at the cluster"))
        return status
    added = user_kubeconfig.add(cluster, status.kubeconfig)
    if added is None:  # $KUBECONFIG is the cluster's own file already
        return status
    if added.current:
        print(
            "\n"
            + _("kubectl uses the cluster now: context {context} in {file}").format(
                context=repr(cluster), file=added.file
            )
        )
    else:
        print(
            "\n"
            + _(
                "added context {context} to {file}; your current context is unchanged:"
                " `kubectl config use-context {name}` switches to the course cluster"
            ).format(context=repr(cluster), file=added.file, name=cluster)
        )
    return status


def cmd_cluster(args: argparse.Namespace) -> int:
    """Run `kubelab cluster ACTION`."""
    cluster: str = args.name
    if hasattr(args, "handler"):  # use, check, prepare (kubelab.cluster.commands)
        code: int = args.handler(args)
        return code
    if args.action == "up":
        _up(cluster, args)
        return 0
    backend = _current(cluster)
    if args.action == "down":
        if not backend.exists():
            state.forget(cluster)  # a record of a cluster deleted behind kubelab's back
        removed = user_kubeconfig.remove(cluster)
        if removed is not None:
            print(
                _("removed context {context} from {file}").format(
                    context=repr(removed.name), file=removed.file
                )
            )
        backend.down()
        if backend.name == "existing":
            print(
                _("forgot cluster {name} (existing); the cluster itself was not touched").format(
                    name=repr(cluster)
                )
            )
            return 0
        print(
            _("cluster {name} ({backend}) is down").format(name=repr(cluster), backend=backend.name)
        )
        return 0
    if args.action == "status":
        status = backend.status()
        _print_status(status)
        return 0 if status.running else 1
    if args.action == "kubeconfig":
        print(backend.kubeconfig_path())
        return 0
    if args.action == "env":
        print(f"export KUBECONFIG={backend.kubeconfig_path()}")
        return 0
    raise AssertionError(args.action)


def cmd_init(args: argparse.Namespace) -> int:
    """Make a learner's workspace, or add what is new to one without touching their files."""
    from kubelab import i18n, workspace

    made = workspace.init(args.dir, args.lang)
    i18n.use(made.lang)
    if made.added and len(made.added) <= 10:
        print(_("added {files}").format(files=", ".join(made.added)))
    elif made.added:
        print(_("added {n} files").format(n=len(made.added)))
    if made.kept:
        print(
            _(
                "kept {n} files you changed (delete one and run init again for the course's"
                " copy): {files}"
            ).format(n=len(made.kept), files=", ".join(made.kept))
        )
    if made.untranslated:
        print(
            _("{n} files are not translated yet and are in English: {files}").format(
                n=len(made.untranslated), files=", ".join(made.untranslated)
            )
        )
    print(_("workspace {root} is ready; open it with `kubelab start`").format(root=made.root))
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    """Start the cluster, then JupyterLab on the learner's workspace (or, for an instructor, on
    the course sources)."""
    from kubelab import lab_server, workspace

    if args.instructor and args.dir:
        raise KubelabError(
            _("--instructor opens the course sources; leave out the workspace folder")
        )
    jupyter = tools.require("jupyter", N_("to open the course"))
    if not procs.port_free(args.port):
        raise KubelabError(
            _("port {port} is already in use; pass --port with a free one").format(port=args.port)
        )
    root = paths.COURSE_ROOT if args.instructor else workspace.find(args.dir)
    status = _up(default_cluster_name(), args)
    argv, env = lab_server.command(
        jupyter,
        root,
        port=args.port,
        kubeconfig=status.kubeconfig,
        learner=not args.instructor,
        browser=not args.no_browser,
    )
    print(
        "\n"
        + _(
            "Opening JupyterLab on {url} in {root} (Ctrl-C to stop it; the cluster keeps running"
            " until `kubelab cluster down`)"
        ).format(url=f"http://127.0.0.1:{args.port}/lab", root=root),
        flush=True,
    )
    try:
        return subprocess.call(argv, env=env, cwd=root)
    except KeyboardInterrupt:
        return 0


def _namespace(args: argparse.Namespace, default: str) -> str:
    from kubelab import lab_namespaces

    # -n, else $KUBELAB_NAMESPACE, else a workshop participant's copy, else the lab's own
    chosen: str = args.namespace or lab_namespaces.default_namespace(default)
    return chosen


def cmd_labs(args: argparse.Namespace) -> int:
    """List every lab with the learner's saved progress."""
    from kubelab import labs
    from kubelab.grading import saved_progress
    from kubelab.i18n import _

    rows = []
    for lab in labs.all_labs():
        p = saved_progress.of(lab)
        filled = round(10 * p.score / p.max_score) if p.max_score else 0
        bar = "█" * filled + "░" * (10 - filled)
        when = p.checked_at[:16].replace("T", " ") if p.checked_at else _("not checked yet")
        rows.append((lab.id, _(lab.title), f"{p.score:g}/{p.max_score:g}", bar, when))
    if not rows:
        print(_("no labs found"))
        return 0
    widths = [max(width(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        cells = (pad(cell, w) for cell, w in zip(r, widths, strict=False))
        print("  ".join(cells) + "  " + r[4])
    print(
        "\n"
        + _("Check one with `kubelab check <lab>`; progress is kept in {path}").format(
            path=paths.data_home()
        )
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Grade a lab; exit 0 when every check passes, 1 when any fails, 2 when any could not be
    judged (not converged: the cluster did not settle before the deadline)."""
    from kubelab import labs
    from kubelab.grading import render, runner, saved_progress

    lab = labs.find(args.lab)
    report = runner.run(
        lab, namespace=_namespace(args, lab.namespace), only=args.task, timeout=args.timeout
    )
    saved_progress.record(report)
    if args.json:
        print(report.to_json())
    else:
        print(render.text(report, color=sys.stdout.isatty()))
    if report.not_converged:
        return 2
    return 0 if report.passed else 1


def cmd_reset(args: argparse.Namespace) -> int:
    """Put a lab's namespace back to its start state."""
    from kubelab import api, lab_namespaces, labs

    lab = labs.find(args.lab)
    client = api.Api()
    ns = lab_namespaces.reset(client, lab, _namespace(args, lab.namespace))
    print(
        _("namespace {namespace} is ready for {lab} (your files were not touched)").format(
            namespace=ns, lab=lab.id
        )
    )
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    """Validate and apply manifests into a lab's namespace."""
    from kubelab import apply, labs

    if args.lab:
        lab = labs.find(args.lab)
        # Another lab's folder would silently replace this lab's objects (both use demo-web).
        theirs = apply.lab_folder(args.path, [other.id for other in labs.all_labs()])
        if theirs and theirs != lab.id and not args.force:
            raise KubelabError(
                _(
                    "{path} belongs to lab {theirs}, not {lab}: apply it with --lab {number}, or"
                    " add --force to put it in {lab}'s namespace"
                ).format(path=args.path, theirs=theirs, lab=lab.id, number=theirs.split("-")[0])
            )
    namespace = args.namespace or _namespace(args, labs.find(args.lab).namespace)
    for line in apply.apply(args.path, namespace=namespace):
        print(line)
    return 0


def _log_crash() -> str:
    log = paths.log_file("kubelab-error.log")
    with log.open("a") as fh:
        fh.write(traceback.format_exc() + "\n")
    return str(log)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `kubelab` console script."""
    try:
        try:
            return _main(argv)
        finally:
            # Buffered output meets a closed pipe here, not in the interpreter's exit (whose
            # "Exception ignored" would reach the learner); --help's SystemExit passes too.
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader left (`kubelab labs | head -3`): stop quietly, as a program killed by SIGPIPE
        # does (the shell shows 141), and point stdout at /dev/null so the exit's flush is silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13
    except KeyboardInterrupt:  # Ctrl-C while parsing or importing, before _main's own handler
        print(_("kubelab: interrupted"), file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    try:
        # Before the parser is built: its --help texts are translated as it is made.
        _read_in_workspace_language()
        args = build_parser().parse_args(argv)
        if args.command == "cluster":
            return cmd_cluster(args)
        if args.command == "start":
            return cmd_start(args)
        if args.command == "init":
            return cmd_init(args)
        commands = {"labs": cmd_labs, "check": cmd_check, "reset": cmd_reset, "apply": cmd_apply}
        if args.command in commands:
            return commands[args.command](args)
        if hasattr(args, "handler"):  # command groups registered by their own package
            code: int = args.handler(args)
            return code
        raise AssertionError(args.command)
    except KubelabError as err:
        print(_("kubelab: error: {error}").format(error=err), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(_("kubelab: interrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise  # not a bug: main() ends quietly
    except Exception as err:
        log = _log_crash()
        print(
            _(
                "kubelab: internal error ({error}); this is a kubelab bug, not yours."
                " Details: {log}"
            ).format(error=f"{err.__class__.__name__}: {err}", log=log),
            file=sys.stderr,
        )
        return 3


def _read_in_workspace_language() -> None:
    """Speak the language of the workspace around the current folder (KUBELAB_LANG wins)."""
    from kubelab import i18n, workspace

    i18n.use(workspace.language(workspace.around(Path.cwd())))


if __name__ == "__main__":
    raise SystemExit(main())
