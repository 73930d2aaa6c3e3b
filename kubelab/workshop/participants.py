"""Who takes part in a workshop: their names, checked once, and what each becomes in the cluster.

A name ends up in namespace names (`alice-lab-02`), object names and a certificate's subject, so
it must be a short DNS label; every problem is reported as one line naming where the name came
from (the line of a names file).
"""

from __future__ import annotations

import re
from pathlib import Path

from kubelab.errors import KubelabError
from kubelab.i18n import _
from kubelab.labs import Lab

MAX_NAME = 40  # leaves room for "-lab-NN" and prefixes within Kubernetes' 63-character names
GROUP = "kubelab:participants"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def user(name: str) -> str:
    """Return the user name in a participant's certificate (what RBAC bindings name)."""
    return f"kubelab:participant:{name}"


def grant(name: str) -> str:
    """Return the name of a participant's grant (`access.confine` / `access.release`)."""
    return f"participant:{name}"


def namespace(name: str, lab: Lab) -> str:
    """Return a participant's copy of a lab's namespace (`alice-lab-02`)."""
    return f"{name}-{lab.namespace}"


def problem(name: str) -> str | None:
    """Say what is wrong with a participant name, or None when it is fine."""
    if not name:
        return "a participant name is empty"
    if len(name) > MAX_NAME:
        return _("{name} is longer than {max} characters").format(name=repr(name), max=MAX_NAME)
    if not _NAME.match(name):
        return _(
            "{name} is not a valid participant name: use lowercase letters, digits and '-',"
            " starting and ending with a letter or digit"
        ).format(name=repr(name))
    if name == "kube" or name.startswith("kube-"):
        return _(
            "{name} would give namespaces starting with 'kube-', which Kubernetes reserves"
        ).format(name=repr(name))
    return None


def generated(count: int) -> list[str]:
    """Return `count` names p01, p02, ... (wider numbers past 99)."""
    if count < 1:
        raise KubelabError(_("--participants must be at least 1, got {n}").format(n=count))
    width = max(2, len(str(count)))
    return [f"p{i:0{width}d}" for i in range(1, count + 1)]


def parse(text: str, source: str) -> list[str]:
    """Read names, one a line; `#` starts a comment, blank lines are skipped."""
    names: list[str] = []
    first_seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        wrong = problem(name)
        if wrong:
            raise KubelabError(
                _("{source} line {number}: {problem}").format(
                    source=source, number=number, problem=wrong
                )
            )
        if name in first_seen:
            raise KubelabError(
                _("{source} line {number}: {name} is listed twice (first on line {first})").format(
                    source=source, number=number, name=repr(name), first=first_seen[name]
                )
            )
        first_seen[name] = number
        names.append(name)
    if not names:
        raise KubelabError(
            _("{source} lists no participants (one name a line)").format(source=source)
        )
    return names


def from_file(path: Path) -> list[str]:
    """Read a names file (see `parse`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else _("not UTF-8 text")
        raise KubelabError(
            _("cannot read names file {path}: {reason}").format(path=path, reason=reason)
        ) from err
    return parse(text, str(path))
