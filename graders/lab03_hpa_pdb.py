"""Checks for lab 03: demo-web scales on CPU with an HPA and survives node drains with a PDB.

Most checks read cluster state. Two must provoke behaviour to observe it, and say so:
`scales-under-load` puts CPU load on the pods (simulated usage on sim, a load Job on kind) and
removes it; `eviction` asks the server for dry-run evictions of the learner's pods and rehearses a
drain on stand-in pods of its own, under a copy of the learner's budget, because a dry-run
eviction never spends the budget and the learner's pods must never really be evicted. Nothing
depends on the image's name.

`pdb`, `eviction` and `graceful-shutdown` converge, then judge: they wait until demo-web's pods
are Ready, counted by the budget, and rolled out, so the same state gets the same grade however
busy the cluster; a state that does not settle in time is "not converged", never a lower score.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from kubelab import load
from kubelab.api import DEPLOYMENTS, HPAS, PDBS, PODS, REPLICASETS, ApiError, Json
from kubelab.cluster.kind_pins import PAUSE_VERSION
from kubelab.grading import Checks, Context, Missing, Verdict
from kubelab.i18n import _
from kubelab.objects import dig, prestop_delay, selector_query

checks = Checks("03-hpa-pdb")

NAME = "demo-web"
PDB_NAME = "demo-web-pdb"
CONTAINER = "web"
MIN_REPLICAS, MAX_REPLICAS, TARGET = 3, 10, 60
FLOOR = 2  # pods that must stay available during voluntary disruptions
STAND_INS = 3
# kubeadm 1.36's pause, which every node has (kind's node image carries no other): a stand-in
# must start with no registry in reach. The sim runs nothing.
STAND_IN_IMAGE = f"registry.k8s.io/pause:{PAUSE_VERSION}"
DRILL_LABEL = "kubelab.dev/drill"

DOCS_HPA = "https://kubernetes.io/docs/concepts/workloads/autoscaling/horizontal-pod-autoscale/"
DOCS_LOAD = "https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale-walkthrough/"
DOCS_PDB = "https://kubernetes.io/docs/tasks/run-application/configure-pdb/"
DOCS_UNHEALTHY = (
    "https://kubernetes.io/docs/tasks/run-application/configure-pdb/#unhealthy-pod-eviction-policy"
)
UNHEALTHY_POLICY = "AlwaysAllow"
DOCS_EVICTION = "https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/"
DOCS_SHUTDOWN = "https://kubernetes.io/docs/concepts/containers/container-lifecycle-hooks/#hook-handler-execution"


def _deployment(ctx: Context) -> Json:
    return ctx.need(DEPLOYMENTS, NAME)


def _ready(pod: Json) -> bool:
    conditions = dig(pod, "status", "conditions", default=[]) or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def cpu_target(hpa: Json) -> int | None:
    """Return the HPA's CPU averageUtilization target, or None when it has none."""
    for metric in dig(hpa, "spec", "metrics", default=[]) or []:
        res = metric.get("resource") or {}
        target = res.get("target") or {}
        if (
            metric.get("type") == "Resource"
            and res.get("name") == "cpu"
            and target.get("type") == "Utilization"
        ):
            value = target.get("averageUtilization")
            return value if isinstance(value, int) else None
    return None


def cpu_utilization(hpa: Json) -> int | None:
    """Return the CPU utilisation the HPA last observed, or None when it has not."""
    for metric in dig(hpa, "status", "currentMetrics", default=[]) or []:
        res = metric.get("resource") or {}
        if metric.get("type") == "Resource" and res.get("name") == "cpu":
            value = (res.get("current") or {}).get("averageUtilization")
            return value if isinstance(value, int) else None
    return None


def _targets_deployment(hpa: Json) -> bool:
    ref = dig(hpa, "spec", "scaleTargetRef", default={}) or {}
    return bool(
        ref.get("kind") == "Deployment"
        and ref.get("name") == NAME
        and str(ref.get("apiVersion", "")).startswith("apps/")
    )


def _without_cpu_request(dep: Json) -> list[str]:
    containers = dig(dep, "spec", "template", "spec", "containers", default=[]) or []
    return [
        str(c.get("name", "?"))
        for c in containers
        if load.millicores(dig(c, "resources", "requests", "cpu")) <= 0
    ]


@checks.check("hpa", docs=DOCS_HPA)
def hpa(ctx: Context) -> Verdict:
    """HPA demo-web targets Deployment demo-web: 3 to 10 replicas at 60% CPU; pods request CPU."""
    v = Verdict()
    h = ctx.need(HPAS, NAME)
    ref = dig(h, "spec", "scaleTargetRef", default={}) or {}
    v.expect(
        _targets_deployment(h),
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
    low, high = dig(h, "spec", "minReplicas", default=1), dig(h, "spec", "maxReplicas")
    v.expect(
        (low, high) == (MIN_REPLICAS, MAX_REPLICAS),
        _(
            "HPA {name} replicas: expected minReplicas {min} and maxReplicas "
            "{max}, found {low} and {high}"
        ).format(name=NAME, min=MIN_REPLICAS, max=MAX_REPLICAS, low=low, high=high),
        _(
            "Keep at least {min} replicas (the PDB needs spares to allow a drain) and cap "
            "the cost at {max}."
        ).format(min=MIN_REPLICAS, max=MAX_REPLICAS),
    )
    target = cpu_target(h)
    v.expect(
        target == TARGET,
        _(
            "HPA {name} metrics: expected a Resource metric cpu with Utilization target "
            "{target}%, found {found}"
        ).format(
            name=NAME,
            target=TARGET,
            found=f"{target}%" if target is not None else _("no CPU utilisation target"),
        ),
        _(
            "Add spec.metrics: type Resource, resource.name cpu, target type Utilization, "
            "averageUtilization {target} (a percentage of the pods' CPU request)."
        ).format(target=TARGET),
    )
    dep = ctx.get(DEPLOYMENTS, NAME)
    missing = _without_cpu_request(dep) if dep else []
    v.expect(
        dep is not None and not missing,
        _("Deployment {name} not found").format(name=NAME)
        if dep is None
        else _("Deployment {name}: container(s) {containers} request no CPU").format(
            name=NAME, containers=", ".join(missing)
        ),
        _(
            "Give every container resources.requests.cpu: utilisation is usage divided by the "
            "request, so without one the HPA cannot compute it."
        ),
    )
    return v.ok(
        _("HPA {name}: Deployment {name}, {min}-{max} replicas at {target}% CPU").format(
            name=NAME, min=MIN_REPLICAS, max=MAX_REPLICAS, target=TARGET
        )
    )


def rolled_out(dep: Json, pods: list[Json]) -> bool:
    """Tell whether a Deployment has settled: every replica updated and Ready, and no pod of an
    older revision left, as its controller last saw it and as the pods themselves say."""
    st = dep.get("status") or {}
    want = dig(dep, "spec", "replicas", default=1)
    return bool(
        st.get("observedGeneration", 0) >= dig(dep, "metadata", "generation", default=0)
        and st.get("replicas", 0) == st.get("updatedReplicas", 0) == want
        and st.get("readyReplicas", 0) == want
        and len(pods) == want
        and all(_ready(p) for p in pods)
    )


def pdb_counted(pdb: Json, replicas: int) -> bool:
    """Tell whether the disruption controller has counted `replicas` healthy pods under `pdb`."""
    st = pdb.get("status") or {}
    return bool(
        st.get("observedGeneration", 0) >= dig(pdb, "metadata", "generation", default=0)
        and st.get("expectedPods") == replicas
        and st.get("currentHealthy") == replicas
    )


def _as_pods(value: object, count: int) -> int:
    """Return a budget number as pods: an int, or a percentage of `count` rounded up (as the
    disruption controller does)."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%") and text[:-1].isdigit():
        return -(-int(text[:-1]) * count // 100)
    return 0


def required_healthy(spec: Json, expected: int) -> int:
    """Return how many of `expected` pods a budget requires to stay healthy."""
    if "minAvailable" in spec:
        return _as_pods(spec["minAvailable"], expected)
    if "maxUnavailable" in spec:
        return max(expected - _as_pods(spec["maxUnavailable"], expected), 0)
    return 0


@dataclass(frozen=True)
class BudgetView:
    """The budget, the Deployment and the pods, read together."""

    budget: Json
    dep: Json
    pods: tuple[Json, ...]  # the Deployment's pods
    picked: frozenset[str]  # the pods the budget's selector picks (none being deleted)
    ready: frozenset[str]  # the picked pods that are Ready
    budgets_over_pods: int  # how many budgets pick some of the Deployment's pods
    hpa_floor: int = 0  # the highest minReplicas of an HPA over the Deployment (0: none)

    @property
    def theirs(self) -> frozenset[str]:
        """Return the names of the Deployment's pods."""
        return frozenset(p["metadata"]["name"] for p in self.pods)

    @property
    def settled(self) -> bool:
        """Tell whether there is nothing left to wait for before judging: the Deployment rolled
        out, at least at the minimum of an HPA over it (a Deployment whose manifest leaves
        spec.replicas to the HPA starts at 1 until the HPA's first sync; at 0 the HPA is off), and,
        for a budget alone over exactly its pods, counted by the disruption controller.
        With two budgets over a pod the controller updates one of them, chosen at random, per pod
        event, so the other's status may never catch up: nothing to wait for there."""
        if not rolled_out(self.dep, list(self.pods)):
            return False
        replicas = dig(self.dep, "spec", "replicas", default=1)
        if 0 < replicas < self.hpa_floor:
            return False  # a manifest without replicas starts at 1; the HPA's next sync lifts it
        if self.picked != self.theirs or self.budgets_over_pods > 1:
            return True
        return pdb_counted(self.budget, dig(self.dep, "spec", "replicas", default=1))


def _picks(ctx: Context, budget: Json) -> list[Json]:
    """Return the pods a budget's selector picks, none being deleted."""
    selector = dig(budget, "spec", "selector")
    query = selector_query(selector)
    everything = selector == {}  # in policy/v1 an empty selector picks every pod
    picked = ctx.list(PODS, labels=query) if query or everything else []
    return [p for p in picked if not dig(p, "metadata", "deletionTimestamp")]


def _view(ctx: Context) -> BudgetView:
    dep = _deployment(ctx)
    pods = tuple(ctx.pods_of(dep))
    names = {p["metadata"]["name"] for p in pods}
    budget: Json | None = None
    over = 0
    for each in ctx.list(PDBS):
        picked = _picks(ctx, each)
        if each["metadata"]["name"] == PDB_NAME:
            budget, mine = each, picked
        over += any(p["metadata"]["name"] in names for p in picked)
    if budget is None:
        budget = ctx.need(PDBS, PDB_NAME)  # gone: says so, with its hint
        mine = _picks(ctx, budget)
    floors = [
        dig(h, "spec", "minReplicas", default=1) for h in ctx.list(HPAS) if _targets_deployment(h)
    ]
    return BudgetView(
        budget,
        dep,
        pods,
        frozenset(p["metadata"]["name"] for p in mine),
        frozenset(p["metadata"]["name"] for p in mine if _ready(p)),
        over,
        max(floors, default=0),
    )


def _settled(ctx: Context) -> BudgetView:
    """Wait until there is nothing left to settle (`BudgetView.settled`); at the deadline the
    check is "not converged"."""
    return ctx.converge(
        lambda: _view(ctx),
        lambda seen: seen.settled,
        what=_(
            "the pods of Deployment {name} to be Ready (at least its HPA's minReplicas) and "
            "PDB {pdb} to count them"
        ).format(name=NAME, pdb=PDB_NAME),
        stuck=ctx.stuck_in(NAME),
    )


def _budget(pdb: Json) -> str:
    spec = pdb.get("spec") or {}
    parts = [f"{k} {spec[k]!r}" for k in ("minAvailable", "maxUnavailable") if k in spec]
    return ", ".join(parts) or _("no minAvailable or maxUnavailable")


@checks.check("pdb", docs=DOCS_PDB)
def pdb(ctx: Context) -> Verdict:
    """PDB demo-web-pdb: minAvailable 2 (or maxUnavailable 1) over exactly demo-web's pods.

    Converges, then judges: it waits until demo-web's pods are all Ready, at least as many as
    the HPA's minReplicas (and a budget alone over them is counted), then works out what the
    budget allows from its spec and those pods, as the disruption controller does, rather than
    reading a status that controller may leave stale when a second budget covers the same pods.
    A state that does not settle in time is "not converged" (nothing judged), never a lower
    score.
    """
    v = Verdict()
    view = _settled(ctx)
    budget, dep, theirs, picked = view.budget, view.dep, view.theirs, view.picked
    spec = budget.get("spec") or {}
    floor, spare = spec.get("minAvailable"), spec.get("maxUnavailable")
    v.expect(
        (floor == FLOOR and spare is None) or (spare == 1 and floor is None),
        _("PDB {pdb}: expected minAvailable {floor} (or maxUnavailable 1), found {found}").format(
            pdb=PDB_NAME, floor=FLOOR, found=_budget(budget)
        ),
        _(
            "Set spec.minAvailable: {floor} as a whole number: at least {floor} pods keep serving "
            "while nodes are drained (a percentage rounds with the replica count)."
        ).format(floor=FLOOR),
    )
    selects = v.expect(
        bool(theirs) and picked == theirs,
        _(
            "PDB {pdb} selector {selector} picks {picked} pods, "
            "{common} of Deployment {name}'s {theirs}"
        ).format(
            pdb=PDB_NAME,
            selector=spec.get("selector") or "{}",
            picked=len(picked),
            common=len(picked & theirs),
            name=NAME,
            theirs=len(theirs),
        ),
        _(
            "Make spec.selector match the pod template's labels (app: {name}), no more, no less."
        ).format(name=NAME),
    )
    replicas = dig(dep, "spec", "replicas", default=1)
    v.expect(
        selects and len(picked) == replicas,
        _("PDB {pdb} counts {picked} pods: expected {replicas} (the Deployment's replicas)").format(
            pdb=PDB_NAME, picked=len(picked), replicas=replicas
        ),
        _(
            "`kubectl describe pdb {pdb} -n {namespace}`: the disruption controller "
            "counts the pods the selector picks."
        ).format(pdb=PDB_NAME, namespace=ctx.namespace),
    )
    healthy, required = len(view.ready), required_healthy(spec, len(picked))
    allowed = max(healthy - required, 0)
    v.expect(
        allowed >= 1,
        _(
            "PDB {pdb} allows {allowed} disruption(s): expected at least 1 ({healthy} healthy, "
            "{required} required)"
        ).format(pdb=PDB_NAME, allowed=allowed, healthy=healthy, required=required),
        _(
            "A budget that allows no disruption blocks every drain: keep fewer pods required than "
            "there are replicas."
        ),
    )
    return v.ok(
        _("PDB {pdb}: {budget} over {replicas} pods, {allowed} disruption(s) allowed").format(
            pdb=PDB_NAME, budget=_budget(budget), replicas=replicas, allowed=allowed
        )
    )


@checks.check("unhealthy-eviction", docs=DOCS_UNHEALTHY)
def unhealthy_eviction(ctx: Context) -> Verdict:
    """PDB demo-web-pdb lets a drain evict pods that are not Ready: unhealthyPodEvictionPolicy
    AlwaysAllow (the default, IfHealthyBudget, keeps a crash-looping pod until the budget allows).
    """
    v = Verdict()
    budget = ctx.need(PDBS, PDB_NAME)
    policy = dig(budget, "spec", "unhealthyPodEvictionPolicy")
    v.expect(
        policy == UNHEALTHY_POLICY,
        _("PDB {pdb} spec.unhealthyPodEvictionPolicy: expected {wanted}, found {found}").format(
            pdb=PDB_NAME,
            wanted=UNHEALTHY_POLICY,
            found=policy or _("nothing (the default, IfHealthyBudget)"),
        ),
        _(
            "With IfHealthyBudget a pod that is Running but not Ready may be evicted only while "
            "the budget allows a disruption, so one crash-looping pod can stall a drain; set the "
            "policy that lets a drain evict pods that are not Ready at any time."
        ),
    )
    return v.ok(
        _(
            "PDB {pdb}: unhealthyPodEvictionPolicy {policy}: pods that are not Ready "
            "never hold up a drain"
        ).format(pdb=PDB_NAME, policy=policy)
    )


@dataclass
class Drill:
    """What the server answered in a rehearsed drain over stand-in pods."""

    ready: bool = False
    first: str = ""  # "allowed", or the server's refusal
    second: str = ""  # "allowed" (dry run), or the server's refusal
    second_status: int = 0


def _answer(err: ApiError) -> str:
    return f"{err.status} {str(err).split(': ', 1)[-1]}"


def drill_manifests(name: str, budget: Json) -> tuple[Json, Json]:
    """Return the stand-in ReplicaSet and a PDB over it that copies `budget`'s numbers."""
    labels = {DRILL_LABEL: name}
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": STAND_INS,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65535,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "stand-in",
                            "image": STAND_IN_IMAGE,
                            "resources": {
                                "requests": {"cpu": "1m", "memory": "8Mi"},
                                "limits": {"cpu": "10m", "memory": "16Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }
    spec = budget.get("spec") or {}
    copied = {
        k: spec[k]
        for k in ("minAvailable", "maxUnavailable", "unhealthyPodEvictionPolicy")
        if k in spec
    }
    pdb_copy = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "labels": labels},
        "spec": {**copied, "selector": {"matchLabels": labels}},
    }
    return rs, pdb_copy


def _drill(ctx: Context, budget: Json) -> Drill:
    """Rehearse a drain: evict one of 3 stand-ins for real, then dry-run a second eviction."""
    name = f"kubelab-drill-{uuid.uuid4().hex[:6]}"
    rs, pdb_copy = drill_manifests(name, budget)
    found = Drill()
    ctx.api.create(REPLICASETS, rs, ctx.namespace)
    try:
        ctx.api.create(PDBS, pdb_copy, ctx.namespace)

        def standing() -> Json | None:
            return ctx.get(PDBS, name)

        def counted(copy: Json | None) -> bool:
            st = (copy or {}).get("status") or {}
            return st.get("expectedPods") == STAND_INS and st.get("currentHealthy") == STAND_INS

        what = _("{count} stand-in pods").format(count=STAND_INS)
        if not counted(ctx.wait(standing, counted, what=what)):
            return found
        found.ready = True
        # Evicted stand-ins must not come back: their replacements find no node.
        nowhere = {"spec": {"template": {"spec": {"nodeSelector": {DRILL_LABEL: "nowhere"}}}}}
        ctx.api.patch(REPLICASETS, name, nowhere, ctx.namespace)
        pods = [p["metadata"]["name"] for p in ctx.list(PODS, labels=f"{DRILL_LABEL}={name}")]
        if len(pods) < 2:
            found.first = _("nothing: only {count} stand-in pod(s) found").format(count=len(pods))
            return found
        try:
            ctx.api.evict(pods[0], ctx.namespace)  # a stand-in: the only real eviction
            found.first = "allowed"
        except ApiError as err:
            found.first = _answer(err)
            return found  # the state "one pod gone" was never reached
        try:
            ctx.api.evict(pods[1], ctx.namespace, dry_run=True)
            found.second = "allowed"
        except ApiError as err:
            found.second, found.second_status = _answer(err), err.status
        return found
    finally:
        for res in (PDBS, REPLICASETS):
            try:
                ctx.api.request(
                    "DELETE",
                    res.path(ctx.namespace, name),
                    query={"propagationPolicy": "Background"},
                )
            except ApiError as err:
                if err.status != 404:
                    raise


@checks.check("eviction", docs=DOCS_EVICTION)
def eviction(ctx: Context) -> Verdict:
    """Acts: dry-run evicts a pod of demo-web (nothing is evicted), and rehearses a drain on 3
    stand-in pods of its own under a copy of demo-web-pdb's budget (removed afterwards)."""
    v = Verdict()
    view = _settled(ctx)  # whether a drain may start depends on Ready pods, counted
    budget = view.budget
    ready = sorted(p["metadata"]["name"] for p in view.pods if _ready(p))
    answer = _("no Ready pod to try")
    if ready:
        try:
            ctx.api.evict(ready[0], ctx.namespace, dry_run=True)
            answer = "allowed"
        except ApiError as err:
            answer = _answer(err)
    hint = (
        _(
            "More than one PodDisruptionBudget selects these pods: the Eviction API answers 500 "
            "rather than choose, and `kubectl drain` fails at once (it retries only 429): keep "
            "only {pdb}."
        ).format(pdb=PDB_NAME)
        if answer.startswith("500")
        else _(
            "`kubectl get pdb -n {namespace}`: a drain can only start when some budget "
            "over the pods allows a disruption."
        ).format(namespace=ctx.namespace)
    )
    v.expect(
        answer == "allowed",
        _(
            "dry-run eviction of a pod of {name}: expected the server to allow it (a drain can "
            "start), it answered {answer}"
        ).format(name=NAME, answer=answer),
        hint,
    )
    drill = _drill(ctx, budget)
    rehearsal = _("a drain rehearsed on {count} stand-in pods under {pdb}'s budget").format(
        count=STAND_INS, pdb=PDB_NAME
    )
    v.expect(
        drill.ready and drill.first == "allowed",
        (
            _(
                "{rehearsal}: expected the server to allow the first eviction (leaving {floor}), "
                "it answered {answer}"
            )
            if drill.ready
            else _(
                "{rehearsal}: expected the server to allow the first eviction (leaving {floor}), "
                "it could not start the stand-ins in time"
            )
        ).format(rehearsal=rehearsal, floor=FLOOR, answer=drill.first),
        _(
            "With {count} pods the budget must let one go: require at most {floor} available."
        ).format(count=STAND_INS, floor=FLOOR),
    )
    v.expect(
        drill.second_status == 429,
        _(
            "{rehearsal}: expected the server to refuse (429) the eviction that would leave "
            "{left}, it answered {answer}"
        ).format(
            rehearsal=rehearsal,
            left=FLOOR - 1,
            answer=_("allowed")
            if drill.second == "allowed"
            else drill.second or _("nothing (not reached)"),
        ),
        _(
            "Require at least {floor} available pods (minAvailable {floor}), so the eviction that "
            "would leave fewer than {floor} is refused until a replacement is Ready."
        ).format(floor=FLOOR),
    )
    return v.ok(
        _(
            "a dry-run eviction of {pod} is allowed; in a rehearsed drain the "
            "server allowed 1 eviction and refused the one that would leave {left} (429)"
        ).format(pod=ready[0] if ready else "?", left=FLOOR - 1)
    )


def _shutdown(pod_spec: Json) -> tuple[Json | None, int]:
    web = next((c for c in pod_spec.get("containers") or [] if c.get("name") == CONTAINER), None)
    if web is None:
        raise Missing(
            _("Deployment {name} has no container named {container}").format(
                name=NAME, container=CONTAINER
            ),
            _("Name the application container `{container}`.").format(container=CONTAINER),
        )
    hook = dig(web, "lifecycle", "preStop")
    return hook, int(pod_spec.get("terminationGracePeriodSeconds", 30))


@checks.check("graceful-shutdown", docs=DOCS_SHUTDOWN)
def graceful_shutdown(ctx: Context) -> Verdict:
    """Container web has a preStop hook; the grace period outlasts it; every pod runs it."""
    v = Verdict()
    dep = _deployment(ctx)
    template = dig(dep, "spec", "template", "spec", default={}) or {}
    hook, grace = _shutdown(template)
    delay = prestop_delay(hook)
    v.expect(
        hook is not None,
        _(
            "container {container} lifecycle.preStop: expected a hook (e.g. sleep 5), found none"
        ).format(container=CONTAINER),
        _(
            "Add lifecycle.preStop with a short sleep (the `sleep` action: the demo-web image has "
            "no shell), so endpoints drop the pod before it gets SIGTERM."
        ),
    )
    v.expect(
        hook is not None and grace > (delay or 0),
        _(
            "terminationGracePeriodSeconds {grace} must be longer than the preStop delay "
            "({delay} s)"
        ).format(grace=grace, delay=delay if delay is not None else _("unknown"))
        if hook
        else _("terminationGracePeriodSeconds: nothing to compare without a preStop hook"),
        _(
            "The grace period counts from the start of preStop: make it longer than the sleep "
            "plus the time the app needs to finish its requests, or the kubelet kills it "
            "mid-drain."
        ),
    )

    def stale() -> list[str]:
        current = ctx.get(DEPLOYMENTS, NAME) or dep
        wanted = _shutdown(dig(current, "spec", "template", "spec", default={}) or {})
        return [
            p["metadata"]["name"]
            for p in ctx.pods_of(current)
            if _shutdown(p.get("spec") or {}) != wanted
        ]

    # A rollout still under way is not an answer: judge the pods once it is over.
    left = (
        ctx.converge(
            stale,
            lambda s: not s,
            what=_("pods of {name} to roll out").format(name=NAME),
            stuck=ctx.stuck_in(NAME),
        )
        if hook
        else []
    )
    v.expect(
        hook is not None and not left,
        _("{count} pod(s) of {name} still run without this hook, e.g. {pod}").format(
            count=len(left), name=NAME, pod=left[0]
        )
        if left
        else _("no pod can carry a hook the Deployment does not have"),
        _(
            "Apply the change and wait for `kubectl rollout status deployment/{name} -n "
            "{namespace}`."
        ).format(name=NAME, namespace=ctx.namespace),
    )
    return v.ok(
        (
            _("preStop waits {delay} s, grace period {grace} s, on every pod")
            if delay is not None
            else _("preStop is set, grace period {grace} s, on every pod")
        ).format(delay=delay, grace=grace)
    )


def _scaled(pair: tuple[Json | None, Json | None]) -> bool:
    h, dep = pair
    if h is None or dep is None:
        return True  # gone: nothing to wait for
    util, target = cpu_utilization(h), cpu_target(h) or TARGET
    return bool(
        util is not None
        and util > target
        and dig(h, "status", "desiredReplicas", default=0) > MIN_REPLICAS
        and dig(dep, "spec", "replicas", default=0) > MIN_REPLICAS
    )


@checks.check("scales-under-load", docs=DOCS_LOAD)
def scales_under_load(ctx: Context) -> Verdict:
    """Acts: puts CPU load on demo-web's pods (sim: usage at 3x the request; kind: a load Job
    calling /burn), waits for the HPA to scale above 3 replicas, then removes the load."""
    v = Verdict()
    h = ctx.need(HPAS, NAME)
    dep = _deployment(ctx)
    target = cpu_target(h) or 0
    loadable = _targets_deployment(h) and target > 0 and not _without_cpu_request(dep)
    v.expect(
        loadable,
        _(
            "HPA {name} cannot react to CPU load: it needs a CPU utilisation target on Deployment "
            "{name}, whose containers request CPU"
        ).format(name=NAME),
        _("Finish task hpa first; this check then loads the pods itself."),
    )
    if not loadable:
        return v
    if ctx.substrate == "unknown":
        v.expect(
            False,
            _("cannot tell how to load this cluster (no kube-public/kubelab-cluster ConfigMap)"),
            _("Run this check on a course cluster (`kubelab cluster up`)."),
        )
        return v
    pods = ctx.pods_of(dep)
    applied = load.start(ctx.api, ctx.namespace, pods, substrate=ctx.substrate)
    try:
        h2, dep2 = ctx.wait(
            lambda: (ctx.get(HPAS, NAME), ctx.get(DEPLOYMENTS, NAME)),
            _scaled,
            what=_("HPA {name} to scale above {min} under load ({load})").format(
                name=NAME, min=MIN_REPLICAS, load=applied.description
            ),
        )
    finally:
        applied.stop()
    h, dep = h2 or h, dep2 or dep
    util = cpu_utilization(h)
    v.expect(
        util is not None and util > target,
        _(
            "HPA {name} under load: expected CPU utilisation above {target}%, observed {found}"
        ).format(name=NAME, target=target, found=f"{util}%" if util is not None else _("none")),
        _(
            "`kubectl describe hpa {name} -n {namespace}`: its conditions say whether it can "
            "read metrics."
        ).format(name=NAME, namespace=ctx.namespace),
    )
    desired = dig(h, "status", "desiredReplicas", default=0)
    replicas = dig(dep, "spec", "replicas", default=0)
    v.expect(
        desired > MIN_REPLICAS and replicas > MIN_REPLICAS,
        _(
            "under load: expected more than {min} replicas, the HPA wanted {desired} and "
            "Deployment {name} has {replicas}"
        ).format(min=MIN_REPLICAS, desired=desired, name=NAME, replicas=replicas),
        _(
            "`kubectl describe hpa {name} -n {namespace}`: look at spec.behavior.scaleUp (a "
            "Disabled policy never scales up) and at the ScalingLimited condition."
        ).format(name=NAME, namespace=ctx.namespace),
    )
    return v.ok(
        _(
            "under load ({load}) the HPA saw {util}% CPU and scaled {name} to "
            "{replicas} replicas; load removed"
        ).format(load=applied.description, util=util, name=NAME, replicas=replicas)
    )
