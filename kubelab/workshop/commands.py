"""`kubelab workshop up|status|down`: the command line of a workshop leader.

Every command uses the leader's kubeconfig (as any kubelab command: $KUBECONFIG, else the course
cluster's). This module only parses and prints; `lifecycle` and `board` do the work. It is imported
whenever `kubelab` builds its parser, so it imports nothing heavy at the top.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kubelab.errors import KubelabError
from kubelab.i18n import _


def register(sub: Any) -> None:
    """Add the `workshop` command group to the `kubelab` subparsers `sub`."""
    workshop = sub.add_parser(
        "workshop", help=_("run a workshop on one cluster: participants, live board, clean-up")
    )
    actions = workshop.add_subparsers(dest="action", required=True, parser_class=type(workshop))

    up = actions.add_parser(
        "up",
        help=_("make each participant's lab namespaces and a kubeconfig that reaches only them"),
    )
    who = up.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--participants", type=int, metavar="N", help=_("N participants named p01, p02, ...")
    )
    who.add_argument(
        "--participants-file",
        type=Path,
        metavar="FILE",
        help=_("participant names, one a line (# starts a comment)"),
    )
    up.add_argument("--labs", help=_("lab numbers or ids, comma-separated (default: every lab)"))
    _add_out(up, _("folder for the kubeconfigs (default: ./workshop-kubeconfigs)"))
    up.add_argument(
        "--server",
        help=_("API server URL written into the kubeconfigs (default: the one in your kubeconfig)"),
    )
    up.set_defaults(handler=cmd_up)

    status = actions.add_parser("status", help=_("live board: participants x labs, scores"))
    status.add_argument("--once", action="store_true", help=_("print the board once and exit"))
    status.add_argument("--json", action="store_true", help=_("print the board as JSON and exit"))
    status.add_argument(
        "--interval", type=float, default=5.0, help=_("seconds between refreshes (default 5)")
    )
    status.set_defaults(handler=cmd_status)

    down = actions.add_parser(
        "down", help=_("remove the participants' namespaces, grants and certificate requests")
    )
    _add_out(
        down, _("also delete the kubeconfigs `up` wrote in this folder (and it, if then empty)")
    )
    down.set_defaults(handler=cmd_down)


def _add_out(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--out", metavar="DIR", help=help_text)


def _leader_client() -> Any:
    """Return an API client with the leader's credentials (refusing a participant's)."""
    from kubelab import api, lab_namespaces

    who = lab_namespaces.participant()
    if who:
        raise KubelabError(
            _(
                "KUBECONFIG is participant {name}'s; workshop commands need the cluster admin's"
                " kubeconfig (unset KUBECONFIG, or `kubelab cluster env`)"
            ).format(name=who)
        )
    return api.Api()


def _chosen_labs(text: str | None) -> list[Any]:
    from kubelab import labs

    if not text:
        return labs.all_labs()
    chosen = []
    for part in text.split(","):
        if part.strip():
            lab = labs.find(part)
            if lab not in chosen:
                chosen.append(lab)
    if not chosen:
        raise KubelabError(_("--labs names no lab; e.g. --labs 02,03"))
    return chosen


def cmd_up(args: argparse.Namespace) -> int:
    """Set the workshop up (again: adds missing participants, keeps the rest)."""
    from kubelab.workshop import lifecycle, participants

    if args.participants_file is not None:
        names = participants.from_file(args.participants_file)
    else:
        names = participants.generated(args.participants)
    chosen = _chosen_labs(args.labs)
    out = lifecycle.resolve_out(args.out)
    client = _leader_client()
    try:
        result = lifecycle.up(client, names, chosen, out, server=args.server)
    finally:
        client.close()
    print(
        _(
            "{n} participants ready ({new} new kubeconfigs, {kept} kept;"
            " {namespaces} namespaces created) for {labs}"
        ).format(
            n=len(names),
            new=len(result.new),
            kept=len(result.kept),
            namespaces=result.namespaces,
            labs=", ".join(lab.id for lab in chosen),
        )
    )
    print(
        _(
            "kubeconfigs: {out}/NAME.kubeconfig; hand each person only their own ({out}/README.txt)"
        ).format(out=out)
    )
    print(
        _("board: `kubelab workshop status`; clean-up: `kubelab workshop down --out {out}`").format(
            out=out
        )
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Show the board once (--once, --json) or live until Ctrl-C."""
    from datetime import datetime, timezone

    from kubelab.workshop import board

    if args.interval < 1:
        raise KubelabError(
            _("--interval must be at least 1 second, got {value}").format(
                value=f"{args.interval:g}"
            )
        )
    client = _leader_client()
    try:
        current = board.read(client)  # a dead cluster is one line here, not a board of errors
        if args.json:
            print(json.dumps(board.to_json(current), indent=2))
        elif args.once:
            print(board.render(current, datetime.now(timezone.utc), color=sys.stdout.isatty()))
        else:
            try:
                board.watch(client, interval=args.interval)
            except KeyboardInterrupt:
                print()
        return 0
    finally:
        client.close()


def cmd_down(args: argparse.Namespace) -> int:
    """Remove everything `up` made (the kubeconfig folder only with --out)."""
    from kubelab.workshop import lifecycle

    out = lifecycle.resolve_out(args.out) if args.out else None
    client = _leader_client()
    try:
        result = lifecycle.down(client, out=out)
    finally:
        client.close()
    if result.participants:
        print(
            _(
                "removed {n} participants: {namespaces} namespaces, {requests} certificate"
                " requests, and their cluster-wide grants"
            ).format(
                n=len(result.participants),
                namespaces=result.namespaces,
                requests=result.requests,
            )
        )
    else:
        print(_("no workshop participants on this cluster: nothing to remove there"))
    if out is not None:
        where = (
            _("kept {folder}: it holds other files")
            if result.kept_folder
            else _("removed {folder}")
        ).format(folder=out)
        print(
            _("deleted {n} files written by `workshop up`; {where}").format(
                n=result.files, where=where
            )
        )
    else:
        print(_("kubeconfig files were left alone (pass --out DIR to delete them)"))
    return 0
