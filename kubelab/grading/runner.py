"""Run a lab's checks against a namespace and produce a `Report`, never an exception a learner sees.

The runner owns the policy around checks: the deadline they share, how a missing object or an API
refusal becomes a failed result with a hint, how a state that did not settle before the deadline
(`wait.Timeout` from `Context.converge`) becomes "not converged" (scored nothing, graded again),
how a wait stopped at a pod that will not start (`Stuck`) names that pod and its cause, how a
missing object found in another namespace is pointed out, and how a bug in a grader becomes
"grader error (not your fault)" with its traceback in a log file. Only "there is no cluster"
stops a run: then no score would be true, so it is raised as one line (`ClusterUnreachable`).
"""

from __future__ import annotations

import importlib
import math
import sys
import time
import traceback
from collections.abc import Sequence
from typing import TextIO

from kubelab import api, i18n, paths, wait
from kubelab.errors import KubelabError
from kubelab.grading.checks import Check, Checks, Missing, Verdict
from kubelab.grading.context import Context
from kubelab.grading.result import CheckResult, Report
from kubelab.grading.stuck import Stuck
from kubelab.i18n import _
from kubelab.labs import Lab, Task
from kubelab.progress import Status


def load_checks(lab: Lab) -> Checks:
    """Import the lab's grader module and return its checks, which must match lab.yaml's tasks."""
    module = importlib.import_module(lab.grader_module)
    checks = getattr(module, "checks", None)
    if not isinstance(checks, Checks) or checks.lab_id != lab.id:
        raise RuntimeError(f"{lab.grader_module} must define checks = Checks({lab.id!r})")
    declared, defined = [t.id for t in lab.tasks], set(checks.by_task)
    if set(declared) != defined:
        raise RuntimeError(
            f"{lab.grader_module}: checks {sorted(defined)} differ from lab.yaml tasks {declared}"
        )
    return checks


def points_for(verdict: Verdict, max_points: int) -> float:
    """Return the points a verdict earns: all when every requirement is met, else a whole share."""
    if not verdict.problems:
        return float(max_points)
    return float(math.floor(max_points * verdict.met / verdict.total))


def _with_docs(hint: str, docs: str) -> str:
    return _("{hint} Docs: {url}").format(hint=hint, url=i18n.docs(docs))


def found_elsewhere(ctx: Context, err: Missing) -> tuple[str, str] | None:
    """Return a note and a hint when the missing object exists in other namespaces (applied
    without -n, it lands in `default`), or None; credentials that cannot look there get None.

    Lab namespaces are not "elsewhere": several labs have a demo-web of their own."""
    from kubelab.lab_namespaces import LAB_LABEL

    res = err.resource
    if res is None or not res.namespaced:
        return None
    key = (res.kind, err.name)
    if key not in ctx.elsewhere:  # several checks need the same object: look once a run
        try:
            items = ctx.api.list(res, None, fields=f"metadata.name={err.name}")
            other = {
                str(n["metadata"]["name"])
                for n in ctx.api.list(api.NAMESPACES)
                if LAB_LABEL not in (n["metadata"].get("labels") or {})
                and (n.get("status") or {}).get("phase") != "Terminating"
            }
        except api.ApiError:
            items, other = [], set()
        ctx.elsewhere[key] = sorted(
            {
                str(o["metadata"].get("namespace"))
                for o in items
                if o["metadata"].get("namespace") in other - {ctx.namespace}
                and not o["metadata"].get("deletionTimestamp")
            }
        )
    others = ctx.elsewhere[key]
    if not others:
        return None
    where = ", ".join(others[:3])
    if len(others) > 3:
        where = _("{names} and {n} more").format(names=where, n=len(others) - 3)
    return (
        "; "
        + _("{kind} {name} was found in namespace {where} instead").format(
            kind=res.kind, name=err.name, where=where
        ),
        _(
            "It was applied to the wrong namespace: apply it with `-n {namespace}` (or "
            "`kubelab apply <folder> -n {namespace}`), and remove the stray copy with "
            "`kubectl delete {plural} {name} -n {stray}`."
        ).format(namespace=ctx.namespace, plural=res.plural, name=err.name, stray=others[0]),
    )


def _log_grader_error(lab: Lab, task: Task) -> str:
    log = paths.log_file("grader-error.log")
    with log.open("a") as fh:
        fh.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {lab.id} {task.id}\n")
        fh.write(traceback.format_exc() + "\n")
    return str(log)


def not_converged(lab: Lab, task: Task, err: wait.Timeout, ctx: Context) -> CheckResult:
    """Return the result of a check whose state did not settle in time: judged nothing."""
    what = err.what or _("the cluster to settle")
    budget = (
        _("the {seconds} s grading deadline").format(seconds=f"{ctx.timeout:g}")
        if ctx.timeout
        else _("the grading deadline")
    )
    return CheckResult(
        task.id,
        task.title,
        False,
        0.0,
        task.points,
        _(
            "not converged: waited for {what} until {budget}; this task was not judged "
            "(a grading error, not a failed requirement)"
        ).format(what=what, budget=budget),
        _(
            "The cluster was still settling: grade again (`kubelab check {lab} --task "
            "{task}`), with a longer --timeout if it is busy; if it never settles, look at what "
            "it waited for."
        ).format(lab=lab.id, task=task.id),
        not_converged=True,
    )


def run_check(lab: Lab, task: Task, check: Check, ctx: Context) -> CheckResult:
    """Run one check and turn whatever happens into a result (ClusterUnreachable excepted)."""

    def failed(message: str, hint: str | None) -> CheckResult:
        return CheckResult(task.id, task.title, False, 0.0, task.points, message, hint)

    ctx.stuck = None
    try:
        verdict = check.fn(ctx)
        if verdict.total == 0:
            raise RuntimeError(f"check {task.id} tested no requirement")
    except Missing as err:
        message, hint = str(err), err.hint
        elsewhere = found_elsewhere(ctx, err)
        if elsewhere:
            message, hint = message + elsewhere[0], elsewhere[1]  # creating it is not the fix
        return failed(message, _with_docs(hint, check.docs))
    except Stuck as err:
        return failed(str(err), _with_docs(err.hint, check.docs))
    except wait.Timeout as err:
        return not_converged(lab, task, err, ctx)
    except api.ClusterUnreachable:
        raise
    except api.ApiError as err:
        hint = (
            _("Your credentials cannot read this namespace: is KUBECONFIG the one for this lab?")
            if err.status in (401, 403)
            else _("Check that the cluster is healthy (`kubelab cluster status`) and try again.")
        )
        return failed(_("could not read the cluster: {error}").format(error=err), hint)
    except Exception:
        log = _log_grader_error(lab, task)
        return failed(
            _("grader error (not your fault): this check crashed; it was logged to {log}").format(
                log=log
            ),
            None,
        )
    earned = points_for(verdict, task.points)
    if not verdict.problems:
        return CheckResult(task.id, task.title, True, earned, task.points, verdict.success, None)
    problems = list(verdict.problems)
    if ctx.stuck is not None:  # why a wait stopped early comes first: it is the cause
        problems.insert(0, (_("stopped waiting: {why}").format(why=ctx.stuck), ctx.stuck.hint))
    message = "; ".join(p for p, _ in problems)  # all of them: "and 1 more" hid some
    hint = _with_docs(problems[0][1], check.docs)
    return CheckResult(
        task.id, task.title, False, earned, task.points, message, hint, problems=tuple(problems)
    )


def run(
    lab: Lab,
    *,
    namespace: str | None = None,
    only: Sequence[str] | None = None,
    timeout: float | None = None,
    client: api.Api | None = None,
    kubeconfig: str | None = None,
    stream: TextIO | None = None,
) -> Report:
    """Grade `lab` in `namespace` (default: the lab's) and return the report.

    `timeout` bounds the whole run's waits; None takes the lab's (lab.yaml, else 60 s)."""
    ns = namespace or lab.namespace
    timeout = timeout or lab.timeout
    tasks = [lab.task(t) for t in only] if only else list(lab.tasks)
    try:
        checks = load_checks(lab)
    except Exception as err:
        log = paths.log_file("grader-error.log")
        with log.open("a") as fh:
            fh.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {lab.id} (loading)\n")
            fh.write(traceback.format_exc() + "\n")
        raise KubelabError(
            _(
                "grader error (not your fault): the grader of {lab} could not be loaded "
                "({error}); details in {log}"
            ).format(lab=lab.id, error=err.__class__.__name__, log=log)
        ) from err
    conn = client or api.Api(kubeconfig)
    out = stream or sys.stderr
    status: Status | None = None

    def on_wait(what: str) -> None:
        nonlocal status
        if status is None:
            status = Status(_("grading {lab}").format(lab=lab.id), stream=out)
            status.start()
        status.update(what)

    results: list[CheckResult] = []
    try:
        if conn.namespace_exists(ns) is False:
            reset = f"kubelab reset {lab.id}" + (
                f" --namespace {ns}" if ns != lab.namespace else ""
            )
            hint = _("Create it with `{command}`, then apply your manifests into it.").format(
                command=reset
            )
            for task in tasks:
                message = _("namespace {namespace} does not exist").format(namespace=ns)
                results.append(
                    CheckResult(task.id, task.title, False, 0.0, task.points, message, hint)
                )
            return Report(lab.id, lab.title, ns, tuple(results))
        ctx = Context(
            conn, ns, deadline=time.monotonic() + timeout, on_wait=on_wait, timeout=timeout
        )
        for task in tasks:
            results.append(run_check(lab, task, checks.by_task[task.id], ctx))
    except KeyboardInterrupt:
        # Ctrl-C: no summary ("2/5 checks passed" would be a score that is not true)
        if status is not None:
            status.stop()
            status = None
        raise
    finally:
        if status is not None:
            unsettled = sum(r.not_converged for r in results)
            passed = _("{passed}/{checks} checks passed").format(
                passed=sum(r.passed for r in results), checks=len(tasks)
            )
            if unsettled:
                passed = _("{passed}, {count} not converged").format(passed=passed, count=unsettled)
            status.finish(passed)
        if client is None:
            conn.close()
    return Report(lab.id, lab.title, ns, tuple(results))
