"""Run a learner's controller once, in a child process, and report what it wrote.

Lab 01's grader must call code the learner wrote: a `reconcile(core, custom, namespace, name)`
function that may crash, never return, or print. So it never imports that code itself. It starts

    python -m kubelab.controller_harness --file F --namespace NS --name N

with a time limit. This module imports F, builds the official client's APIs from $KUBECONFIG,
records every request that is not a read (method and path), calls `reconcile` once, and prints
one JSON line: ``{"ok": bool, "writes": [[method, path], ...], "error": str, "stage": str,
"where": str}``. `stage` says what failed (``import``, ``reconcile``, ``connect``); `error` is the
last line of the learner's traceback and `where` its last frame in the learner's file.

`drive` is the grader's side: it runs the child with a deadline and turns whatever happens
(a timeout, a crash, garbage on stdout) into an `Outcome`, never an exception.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any
from urllib.parse import urlparse

from kubelab.i18n import _

READS = frozenset({"GET", "HEAD", "OPTIONS"})
FUNCTION = "reconcile"


@dataclass(frozen=True)
class Outcome:
    """What one call of the learner's reconcile did, as the grader sees it."""

    ok: bool
    writes: tuple[tuple[str, str], ...] = ()
    error: str = ""
    stage: str = ""  # import | reconcile | connect | timeout | harness
    where: str = ""  # file:line of the learner's code where it failed
    seconds: float = 0.0
    output: tuple[str, ...] = field(default=(), compare=False)  # the child's last stderr lines

    def describe(self) -> str:
        """Return one line saying what went wrong (empty when ok)."""
        if self.ok:
            return ""
        at = _(" (at {where})").format(where=self.where) if self.where else ""
        if self.stage == "timeout":
            return _("reconcile did not return within {seconds}s").format(
                seconds=f"{self.seconds:.0f}"
            )
        if self.stage == "import":
            return _("could not import your controller: {error}{at}").format(
                error=self.error, at=at
            )
        if self.stage == "reconcile":
            return _("reconcile raised {error}{at}").format(error=self.error, at=at)
        return _("could not run your controller: {error}").format(error=self.error)


def _last_line(err: BaseException) -> str:
    lines = traceback.format_exception_only(type(err), err)
    return " ".join(lines[-1].split()) if lines else type(err).__name__


def _where(err: BaseException, file: Path) -> str:
    """Return file:line of the deepest frame of the traceback inside the learner's file."""
    if isinstance(err, SyntaxError) and err.lineno:
        return f"{file.name}:{err.lineno}"
    found = ""
    tb: TracebackType | None = err.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == file.resolve():
            found = f"{file.name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def _failure(stage: str, err: BaseException, file: Path) -> dict[str, Any]:
    traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    return {
        "ok": False,
        "writes": [],
        "error": _last_line(err),
        "stage": stage,
        "where": _where(err, file),
    }


def _import(file: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("learner_controller", file)
    if spec is None or spec.loader is None:
        raise ImportError(f"{file.name} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent))  # so the learner's file may import its neighbours
    spec.loader.exec_module(module)
    return module


def record_writes(writes: list[list[str]]) -> Callable[[], None]:
    """Record every non-read request any ApiClient makes into `writes`; return the undo."""
    from kubernetes.client import ApiClient

    original = ApiClient.call_api

    def call_api(self: ApiClient, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if method.upper() not in READS:
            writes.append([method.upper(), urlparse(url).path])
        return original(self, method, url, *args, **kwargs)

    ApiClient.call_api = call_api  # type: ignore[method-assign]

    def undo() -> None:
        ApiClient.call_api = original  # type: ignore[method-assign]

    return undo


def run_once(file: Path, namespace: str, name: str) -> dict[str, Any]:
    """Import `file`, call its reconcile once, and return the report (never raises)."""
    with contextlib.redirect_stdout(sys.stderr):  # the learner's prints must not hide our line
        try:
            module = _import(file)
        except BaseException as err:  # a SyntaxError, an ImportError, a sys.exit: all theirs
            return _failure("import", err, file)
        fn = getattr(module, FUNCTION, None)
        if not callable(fn):
            return {
                "ok": False,
                "writes": [],
                "error": f"{file.name} defines no function {FUNCTION}"
                "(core, custom, namespace, name)",
                "stage": "import",
                "where": "",
            }
        try:
            from kubernetes import client

            from kubelab.api import default_kubeconfig
            from kubelab.kube import api_client

            conn = api_client(Path(default_kubeconfig()).expanduser())
        except Exception as err:
            return _failure("connect", err, file)
        writes: list[list[str]] = []
        undo = record_writes(writes)
        try:
            fn(client.CoreV1Api(conn), client.CustomObjectsApi(conn), namespace, name)
        except BaseException as err:
            return {**_failure("reconcile", err, file), "writes": writes}
        finally:
            undo()
            with contextlib.suppress(Exception):
                conn.close()  # type: ignore[no-untyped-call]
    return {"ok": True, "writes": writes, "error": "", "stage": "", "where": ""}


def _parse(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict) and "ok" in found:
            return found
    return None


def drive(
    file: Path,
    namespace: str,
    name: str,
    *,
    kubeconfig: str | None,
    timeout: float,
) -> Outcome:
    """Run the learner's reconcile once in a child process, within `timeout` seconds."""
    env = dict(os.environ)
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    env["PYTHONUNBUFFERED"] = "1"
    command = [
        sys.executable,
        "-m",
        "kubelab.controller_harness",
        "--file",
        str(file),
        "--namespace",
        namespace,
        "--name",
        name,
    ]
    limit = max(timeout, 0.1)
    try:
        proc = subprocess.run(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=limit,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raw = err.stderr or b""
        tail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return Outcome(
            ok=False,
            stage="timeout",
            error=_("no answer within {seconds}s").format(seconds=f"{limit:.0f}"),
            seconds=limit,
            output=tuple(tail.splitlines()[-20:]),
        )
    output = tuple(proc.stderr.splitlines()[-20:])
    report = _parse(proc.stdout)
    if report is None:
        last = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "")
        return Outcome(
            ok=False,
            stage="harness",
            error=_("the controller process exited with code {code}").format(code=proc.returncode)
            + (f": {last.strip()}" if last else ""),
            output=output,
        )
    writes = tuple(
        (str(w[0]), str(w[1]))
        for w in report.get("writes") or []
        if isinstance(w, (list, tuple)) and len(w) == 2
    )
    return Outcome(
        ok=bool(report.get("ok")),
        writes=writes,
        error=str(report.get("error") or ""),
        stage=str(report.get("stage") or ""),
        where=str(report.get("where") or ""),
        output=output,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the learner's reconcile once and print the JSON report as the last stdout line."""
    parser = argparse.ArgumentParser(
        prog="python -m kubelab.controller_harness",
        description="Call reconcile(core, custom, namespace, name) from FILE once; print JSON.",
    )
    parser.add_argument("--file", required=True, type=Path)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    file: Path = args.file.expanduser().resolve()
    if not file.is_file():
        report: dict[str, Any] = {
            "ok": False,
            "writes": [],
            "error": f"no file {file}",
            "stage": "import",
            "where": "",
        }
    else:
        report = run_once(file, args.namespace, args.name)
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # do not wait for threads the learner's code may have left running
