"""Checks for lab 07: an SLO's error budget and burn rate, a capacity plan, and demo-web sized
and protected by it.

The learner's numbers live in the ConfigMap `capacity-plan`. Three checks grade the arithmetic
(the grader computes the answers from the lab's measurements with kubelab.slo); three grade the
cluster against the learner's own plan: the Deployment's CPU request, the HPA's replica range
and target, and the PriorityClass its pods run at. So a wrong number costs one task, not four.
Nothing depends on the image's name.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from kubelab import slo
from kubelab.api import CONFIGMAPS, DEPLOYMENTS, HPAS, PRIORITYCLASSES, Json
from kubelab.grading import Checks, Context, Verdict
from kubelab.grading.quantity import parse
from kubelab.i18n import _
from kubelab.objects import dig

checks = Checks("07-slo-capacity")

NAME = "demo-web"
PLAN = "capacity-plan"
CONTAINER = "web"

# The lab's measurements (README and lab.ipynb state them; the plan is computed from them).
SLO = 0.999
WINDOW_DAYS = 30
REQUESTS_PER_DAY = 2_000_000
ERROR_RATIO = 0.0144  # failed share of requests over the last hour
POD_RPS = 200  # the load one pod is sized for
POD_CPU = "250m"  # one pod's P95 CPU usage at POD_RPS
P95_RPS = 910
BURST = 1.8  # bursts reach this multiple of the P95 load
TARGET = 70  # percent: the HPA's CPU target, the rest of a pod is burst headroom
MIN_PRIORITY = 1000  # "above the default": pods without a class run at 0

DOCS_SLO = "https://sre.google/sre-book/service-level-objectives/"
DOCS_BUDGET = "https://sre.google/workbook/alerting-on-slos/"
DOCS_RESOURCES = "https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/"
DOCS_HPA = "https://kubernetes.io/docs/concepts/workloads/autoscaling/horizontal-pod-autoscale/"
DOCS_PRIORITY = "https://kubernetes.io/docs/concepts/scheduling-eviction/pod-priority-preemption/"


def expected_plan() -> dict[str, float]:
    """Return the numbers a correct plan holds (cpu-request in cores)."""
    rate = slo.burn_rate(ERROR_RATIO, SLO)
    pod = POD_RPS * TARGET / 100
    return {
        "error-budget-minutes": slo.error_budget_minutes(SLO, WINDOW_DAYS),
        "error-budget-requests": slo.error_budget_requests(SLO, WINDOW_DAYS, REQUESTS_PER_DAY),
        "burn-rate": rate,
        "hours-to-exhaustion": slo.hours_to_exhaustion(rate, WINDOW_DAYS),
        "cpu-request": float(parse(POD_CPU) or 0),
        "target-utilization": float(TARGET),
        "min-replicas": float(slo.replicas_for(P95_RPS, pod, 1.0)),
        "max-replicas": float(slo.replicas_for(P95_RPS * BURST, pod, 1.0)),
    }


def plan_value(plan: Json, key: str) -> float | None:
    """Return the plan's number under `key` (cpu-request as cores), or None when it has none."""
    raw = (plan.get("data") or {}).get(key)
    if raw is None:
        return None
    value = parse(str(raw).strip())
    return float(value) if isinstance(value, Decimal) else None


def _plan(ctx: Context) -> Json:
    return ctx.need(
        CONFIGMAPS,
        PLAN,
        hint=_(
            "Apply your capacity plan (ConfigMap {plan}, in the lab's starter/) with "
            "`kubectl apply -k <folder> -n {namespace}`."
        ).format(plan=PLAN, namespace=ctx.namespace),
    )


def _shown(plan: Json, key: str) -> str:
    raw = (plan.get("data") or {}).get(key)
    return _("nothing") if raw is None else repr(raw)


def _expect_number(v: Verdict, plan: Json, key: str, hint: str) -> bool:
    want = expected_plan()[key]
    found = plan_value(plan, key)
    return v.expect(
        found is not None and slo.close(found, want),
        _("ConfigMap {plan} {key}: found {found}, which is not the right number").format(
            plan=PLAN, key=key, found=_shown(plan, key)
        )
        if found is not None or key in (plan.get("data") or {})
        else _("ConfigMap {plan} has no {key}").format(plan=PLAN, key=key),
        hint,
    )


@checks.check("error-budget", docs=DOCS_SLO)
def error_budget(ctx: Context) -> Verdict:
    """The plan's error budget of a 99.9% SLO over 30 days, in minutes and in requests."""
    v = Verdict()
    plan = _plan(ctx)
    _expect_number(
        v,
        plan,
        "error-budget-minutes",
        _(
            "The budget is the share the SLO allows to fail, (1 - SLO), times the window: "
            "turn 30 days into minutes first."
        ),
    )
    _expect_number(
        v,
        plan,
        "error-budget-requests",
        _(
            "A request-based SLO counts requests, not minutes: (1 - SLO) times every request in "
            "the window (requests a day times days)."
        ),
    )
    want = expected_plan()
    return v.ok(
        _("error budget: {minutes} minutes, {requests} failed requests in {days} days").format(
            minutes=f"{want['error-budget-minutes']:g}",
            requests=f"{want['error-budget-requests']:,.0f}",
            days=WINDOW_DAYS,
        )
    )


@checks.check("burn-rate", docs=DOCS_BUDGET)
def burn_rate(ctx: Context) -> Verdict:
    """The plan's burn rate of the last hour's error ratio, and the hours a budget lasts at it."""
    v = Verdict()
    plan = _plan(ctx)
    _expect_number(
        v,
        plan,
        "burn-rate",
        _(
            "The burn rate is the observed error ratio divided by the allowed one (1 - SLO); "
            "write ratios as fractions (1.44% is 0.0144)."
        ),
    )
    _expect_number(
        v,
        plan,
        "hours-to-exhaustion",
        _(
            "At burn rate 1 the budget lasts the whole window; at burn rate N it lasts the "
            "window divided by N. Answer in hours."
        ),
    )
    want = expected_plan()
    return v.ok(
        _("burn rate {rate}: a full budget lasts {hours} hours").format(
            rate=f"{want['burn-rate']:g}", hours=f"{want['hours-to-exhaustion']:g}"
        )
    )


@checks.check("capacity", docs=DOCS_HPA)
def capacity(ctx: Context) -> Verdict:
    """The plan's CPU request, target, and replicas for the P95 load and for bursts."""
    v = Verdict()
    plan = _plan(ctx)
    _expect_number(
        v,
        plan,
        "cpu-request",
        _(
            "Request what one pod uses (its P95) at the load it is sized for, {rps} rps: "
            "the scheduler reserves that much, and the HPA measures utilisation against it."
        ).format(rps=POD_RPS),
    )
    _expect_number(
        v,
        plan,
        "target-utilization",
        _(
            "Keep target-utilization at {target}: the plan sizes pods to run at {target}% so "
            "each has headroom for a burst while the HPA reacts."
        ).format(target=TARGET),
    )
    _expect_number(
        v,
        plan,
        "min-replicas",
        _(
            "Divide the P95 load by what one pod serves at the target utilisation (its sized "
            "load times the target), and round up: a fraction of a pod is a whole pod."
        ),
    )
    _expect_number(
        v,
        plan,
        "max-replicas",
        _("Do the same for the burst load (the P95 load times the burst factor), rounding up."),
    )
    want = expected_plan()
    return v.ok(
        _(
            "capacity plan: {cpu} per pod at {target}%, {low} pods for {rps} rps, {high} for bursts"
        ).format(
            cpu=POD_CPU,
            target=TARGET,
            low=f"{want['min-replicas']:g}",
            rps=P95_RPS,
            high=f"{want['max-replicas']:g}",
        )
    )


def _container(dep: Json) -> Json:
    containers = dig(dep, "spec", "template", "spec", "containers", default=[]) or []
    return next((c for c in containers if c.get("name") == CONTAINER), {})


def _stale_pods(
    ctx: Context, dep: Json, matches: Callable[[Json], bool]
) -> Callable[[], list[str]]:
    """Return a probe listing the Deployment's pods for which `matches` is false (or, when it
    has no pods, one line saying so)."""

    def stale() -> list[str]:
        current = ctx.get(DEPLOYMENTS, NAME) or dep
        pods = ctx.pods_of(current)
        if not pods:
            return [_("Deployment {name} has no pods").format(name=NAME)]
        return [_("pod {name}").format(name=p["metadata"]["name"]) for p in pods if not matches(p)]

    return stale


def _cpu_request(obj_spec: Json) -> float | None:
    for c in obj_spec.get("containers") or []:
        if c.get("name") == CONTAINER:
            value = parse(dig(c, "resources", "requests", "cpu", default=""))
            return float(value) if value is not None else None
    return None


@checks.check("requests", docs=DOCS_RESOURCES)
def requests(ctx: Context) -> Verdict:
    """Container web requests the plan's CPU and some memory; every pod carries the request."""
    v = Verdict()
    plan = _plan(ctx)
    dep = ctx.need(DEPLOYMENTS, NAME)
    res = dig(_container(dep), "resources", "requests", default={}) or {}
    planned = plan_value(plan, "cpu-request")
    found = _cpu_request(dig(dep, "spec", "template", "spec", default={}) or {})
    right = v.expect(
        planned is not None and found is not None and slo.close(found, planned),
        _(
            "Deployment {name} container {container} requests.cpu: expected the plan's "
            "cpu-request {planned}, found {found}"
        ).format(
            name=NAME,
            container=CONTAINER,
            planned=_shown(plan, "cpu-request"),
            found=res.get("cpu") or _("none"),
        ),
        _(
            "Set resources.requests.cpu to the cpu-request of ConfigMap {plan}: the request is "
            "the capacity the plan counted on, and what the HPA's utilisation is measured against."
        ).format(plan=PLAN),
    )
    memory = parse(res.get("memory", ""))
    v.expect(
        memory is not None and memory > 0,
        _(
            "Deployment {name} container {container} requests.memory: expected a request, "
            "found {found}"
        ).format(name=NAME, container=CONTAINER, found=res.get("memory") or _("none")),
        _(
            "Request memory too (e.g. 128Mi): without a request the scheduler counts the pod as "
            "needing none, and it is among the first evicted when the node runs short."
        ),
    )
    left = _stale_pods(
        ctx, dep, lambda p: _cpu_request(p.get("spec") or {}) == found and found is not None
    )
    stale = (
        ctx.wait(
            left,
            lambda s: not s,
            what=_("pods of {name} to roll out").format(name=NAME),
            stuck=ctx.stuck_in(NAME),
        )
        if right
        else []
    )
    v.expect(
        right and not stale,
        _("pods of {name} without the {cpu} CPU request: {pods}").format(
            name=NAME, cpu=res.get("cpu"), pods=", ".join(stale[:3])
        )
        if stale
        else _("pods are compared once the Deployment requests the plan's CPU"),
        _(
            "Apply the change and wait for `kubectl rollout status deployment/{name} -n "
            "{namespace}`."
        ).format(name=NAME, namespace=ctx.namespace),
    )
    return v.ok(
        _("Deployment {name}: every pod requests {cpu} CPU, {memory}").format(
            name=NAME, cpu=res.get("cpu"), memory=res.get("memory")
        )
    )


def _cpu_target(hpa: Json) -> int | None:
    for metric in dig(hpa, "spec", "metrics", default=[]) or []:
        res = metric.get("resource") or {}
        target = res.get("target") or {}
        if metric.get("type") == "Resource" and res.get("name") == "cpu":
            value = target.get("averageUtilization")
            return value if isinstance(value, int) else None
    return None


@checks.check("autoscaling", docs=DOCS_HPA)
def autoscaling(ctx: Context) -> Verdict:
    """HPA demo-web targets Deployment demo-web with the plan's replica range and CPU target."""
    v = Verdict()
    plan = _plan(ctx)
    hpa = ctx.need(HPAS, NAME)
    ref = dig(hpa, "spec", "scaleTargetRef", default={}) or {}
    v.expect(
        ref.get("kind") == "Deployment"
        and ref.get("name") == NAME
        and str(ref.get("apiVersion", "")).startswith("apps/"),
        _(
            "HPA {name} spec.scaleTargetRef: expected apps/v1 Deployment {name}, found "
            "{api_version} {kind} {target}"
        ).format(
            name=NAME,
            api_version=ref.get("apiVersion"),
            kind=ref.get("kind"),
            target=ref.get("name"),
        ),
        _("Point scaleTargetRef at apiVersion apps/v1, kind Deployment, name {name}.").format(
            name=NAME
        ),
    )
    for field, key, why in (
        ("minReplicas", "min-replicas", _("with fewer pods, a normal (P95) peak")),
        ("maxReplicas", "max-replicas", _("with fewer pods, a burst")),
    ):
        found = dig(hpa, "spec", field, default=1 if field == "minReplicas" else None)
        planned = plan_value(plan, key)
        v.expect(
            planned is not None and found == planned,
            _("HPA {name} spec.{field}: expected the plan's {key} {planned}, found {found}").format(
                name=NAME, field=field, key=key, planned=_shown(plan, key), found=found
            ),
            _(
                "Set spec.{field} to {key} from ConfigMap {plan}: {why} runs them past the "
                "utilisation the plan allowed; more pods cost money the plan did not ask for."
            ).format(field=field, key=key, plan=PLAN, why=why),
        )
    target = _cpu_target(hpa)
    planned_target = plan_value(plan, "target-utilization")
    v.expect(
        target is not None and planned_target is not None and target == planned_target,
        _(
            "HPA {name} CPU target: expected averageUtilization of the plan's "
            "target-utilization {planned}, found {found}"
        ).format(
            name=NAME,
            planned=_shown(plan, "target-utilization"),
            found=f"{target}%" if target is not None else _("no CPU utilisation target"),
        ),
        _(
            "Scale on a Resource metric cpu with a Utilization target equal to the plan's: a "
            "higher target eats the burst headroom, a lower one pays for idle pods."
        ),
    )
    low, high = dig(hpa, "spec", "minReplicas"), dig(hpa, "spec", "maxReplicas")
    return v.ok(
        _("HPA {name}: {low}-{high} replicas at {target}% CPU, as planned").format(
            name=NAME, low=low, high=high, target=target
        )
    )


@checks.check("priority", docs=DOCS_PRIORITY)
def priority(ctx: Context) -> Verdict:
    """demo-web's pods name a PriorityClass above the default, not a system one, and run at it."""
    v = Verdict()
    dep = ctx.need(DEPLOYMENTS, NAME)
    name = dig(dep, "spec", "template", "spec", "priorityClassName")
    pc = ctx.get(PRIORITYCLASSES, str(name)) if name else None
    v.expect(
        pc is not None,
        _(
            "Deployment {name} spec.template.spec.priorityClassName: expected an existing "
            "PriorityClass, found {found}"
        ).format(
            name=NAME,
            found=_("{name} (no such class)").format(name=repr(name)) if name else _("none"),
        ),
        _(
            "Name a PriorityClass in the pod template; `kubectl get priorityclasses` lists them "
            "(they are cluster-wide: the lab installed two)."
        ),
    )
    value = dig(pc, "value") if pc else None
    v.expect(
        isinstance(value, int) and value >= MIN_PRIORITY and not str(name).startswith("system-"),
        _(
            "PriorityClass {name}: expected a value of at least {minimum} and not a system "
            "class, found {value}"
        ).format(name=name, minimum=MIN_PRIORITY, value=value)
        if pc
        else _("priority: with no PriorityClass the pods run at the default, 0"),
        _(
            "Pick the class meant for services with an SLO: under pressure the scheduler "
            "preempts lower-priority pods to place these. system-* classes are for cluster "
            "components."
        ),
    )

    def at_priority(pod: Json) -> bool:
        return bool(dig(pod, "spec", "priority") == value)

    left = _stale_pods(ctx, dep, at_priority)
    stale = (
        ctx.wait(
            left,
            lambda s: not s,
            what=_("pods of {name} to roll out").format(name=NAME),
            stuck=ctx.stuck_in(NAME),
        )
        if pc
        else []
    )
    v.expect(
        pc is not None and not stale,
        _("pods of {name} not at priority {value}: {pods}").format(
            name=NAME, value=value, pods=", ".join(stale[:3])
        )
        if stale
        else _("pods are compared once the Deployment names an existing PriorityClass"),
        _(
            "Apply the change and wait for `kubectl rollout status deployment/{name} -n "
            "{namespace}`: priority is set when a pod is created."
        ).format(name=NAME, namespace=ctx.namespace),
    )
    return v.ok(
        _("pods of {name} run at PriorityClass {cls} ({value})").format(
            name=NAME, cls=name, value=value
        )
    )
