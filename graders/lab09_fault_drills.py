"""Checks for lab 09: fault drills, one per planted fault, each passing once its cause is fixed.

kubelab seeds the namespace (the lab's setup/) with four Deployments, each broken in one place
(sim/stages/faults.yaml makes the sim cluster show what a kubelet would). A check passes only
when the cause is gone from the Deployment's spec and every replica is available with it, so
hiding the symptom (deleting the Deployment, scaling to zero, dropping the probe) does not pass.
The checks read the namespace only (pods, Deployments, EndpointSlices), never nodes, so they
work with a learner's namespace-confined credentials.
"""

from __future__ import annotations

from kubelab.api import DEPLOYMENTS, ENDPOINTSLICES, PODS, Json
from kubelab.grading import Checks, Context, Missing, Verdict
from kubelab.i18n import _
from kubelab.objects import dig, selector_query

checks = Checks("09-fault-drills")

# The demo-web tags that exist (the images kubelab builds and loads into kind).
PUBLISHED = ("kubelab/demo-web:v1", "kubelab/demo-web:v2")
APP_PORT = "8080"  # demo-web's port when PORT is not set
HEALTH_PATHS = ("/healthz",)  # what a readiness probe of demo-web should ask
DRILL_LABEL = "kubelab.dev/drill"
DRILL_NODE = "kubelab-drill-node"

DOCS_DEBUG_PODS = "https://kubernetes.io/docs/tasks/debug/debug-application/debug-pods/"
DOCS_IMAGES = "https://kubernetes.io/docs/concepts/containers/images/#image-pull-backoff"
DOCS_CRASH = (
    "https://kubernetes.io/docs/tasks/debug/debug-application/debug-running-pod/#examine-pod-logs"
)
DOCS_PROBES = (
    "https://kubernetes.io/docs/tasks/configure-pod-container/"
    "configure-liveness-readiness-startup-probes/#define-readiness-probes"
)
DOCS_NODES = "https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/#taint-based-evictions"


def _deployment(ctx: Context, name: str) -> Json:
    return ctx.need(
        DEPLOYMENTS,
        name,
        hint=_(
            "`kubelab reset 09-fault-drills` seeds Deployment {name} again; fix it rather "
            "than deleting it: the users still need it."
        ).format(name=name),
    )


def _container(dep: Json) -> Json:
    containers = dig(dep, "spec", "template", "spec", "containers", default=[]) or []
    if not containers:
        raise Missing(
            _("Deployment {name} has no container").format(name=dep["metadata"]["name"]),
            _("`kubelab reset 09-fault-drills` seeds it again."),
        )
    return dict(containers[0])


def _pods(ctx: Context, dep: Json) -> list[Json]:
    """The live pods the Deployment's selector picks (not being deleted)."""
    query = selector_query(dig(dep, "spec", "selector"))
    if query is None:
        return []
    return [p for p in ctx.list(PODS, labels=query) if not dig(p, "metadata", "deletionTimestamp")]


def _ready(pod: Json) -> bool:
    conditions = dig(pod, "status", "conditions", default=[]) or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _waiting(pods: list[Json]) -> str:
    """What keeps the pods from Ready, as `kubectl get pods` says ("ErrImagePull on 2 pod(s)")."""
    reasons: dict[str, int] = {}
    for pod in pods:
        waiting = [
            reason
            for status in dig(pod, "status", "containerStatuses", default=[]) or []
            if (reason := dig(status, "state", "waiting", "reason"))
        ]
        state = None
        if not dig(pod, "spec", "nodeName"):
            state = _("Pending (not scheduled)")
        elif dig(pod, "status", "phase") == "Running" and not _ready(pod) and not waiting:
            state = _("Running but not Ready")  # a waiting container already says why it is not
        for reason in [*waiting, *([state] if state else [])]:
            reasons[reason] = reasons.get(reason, 0) + 1
    return ", ".join(
        _("{reason} on {count} pod(s)").format(reason=r, count=n)
        for r, n in sorted(reasons.items())
    ) or _("nothing")


def _available(ctx: Context, name: str, fixed: bool) -> tuple[Json, list[Json]]:
    """Wait (when the spec is fixed) until every replica runs the current template and is Ready.

    Returns the Deployment and its live pods as last seen.
    """

    def probe() -> tuple[Json, list[Json]]:
        dep = _deployment(ctx, name)
        return dep, _pods(ctx, dep)

    def done(seen: tuple[Json, list[Json]]) -> bool:
        dep, pods = seen
        want = dig(dep, "spec", "replicas", default=1)
        st = dep.get("status") or {}
        return bool(
            want
            and st.get("observedGeneration", 0) >= dig(dep, "metadata", "generation", default=0)
            and st.get("updatedReplicas", 0) == want
            and st.get("availableReplicas", 0) == want
            and len(pods) == want
            and all(_ready(p) for p in pods)
        )

    if fixed:
        return ctx.wait(
            probe,
            done,
            what=_("Deployment {name} to roll out").format(name=name),
            stuck=ctx.stuck_in(name),
        )
    return probe()


def _expect_available(v: Verdict, name: str, seen: tuple[Json, list[Json]], hint: str) -> None:
    dep, pods = seen
    want = dig(dep, "spec", "replicas", default=1)
    ready = sum(1 for p in pods if _ready(p))
    v.expect(
        bool(want) and ready == want == len(pods),
        _(
            "Deployment {name}: expected {want} Ready pod(s), found {ready} of {count} "
            "(waiting: {waiting})"
        ).format(
            name=name,
            want=want or _("at least 1"),
            ready=ready,
            count=len(pods),
            waiting=_waiting(pods),
        ),
        hint,
    )


@checks.check("image-pull", docs=DOCS_IMAGES)
def image_pull(ctx: Context) -> Verdict:
    """shop-web runs an image tag that exists, every replica available."""
    v = Verdict()
    name = "shop-web"
    image = str(_container(_deployment(ctx, name)).get("image", ""))
    fixed = v.expect(
        image in PUBLISHED,
        _("Deployment {name} image: expected a published tag ({published}), found {image}").format(
            name=name, published=", ".join(PUBLISHED), image=repr(image)
        ),
        _(
            "`kubectl describe pod -l app={name}` shows the kubelet's pull error: the tag does "
            "not exist in the registry. Set a tag that does (`kubectl set image` or the "
            "manifest)."
        ).format(name=name),
    )
    seen = _available(ctx, name, fixed)
    _expect_available(
        v,
        name,
        seen,
        _("Wait for the rollout (`kubectl rollout status deploy/{name}`).").format(name=name),
    )
    return v.ok(
        _("Deployment {name} runs {image}, every replica available").format(name=name, image=image)
    )


def _bad_setting(container: Json) -> str | None:
    """The demo-web setting that makes it exit at start, as "NAME=value", or None."""
    for env in container.get("env") or []:
        value = env.get("value")
        if not isinstance(value, str) or not value:
            continue
        if env.get("name") == "PORT" and not (value.isdigit() and 1 <= int(value) <= 65535):
            return f"PORT={value}"
        if env.get("name") == "READY_AFTER_SECONDS":
            try:
                if float(value) >= 0:
                    continue
            except ValueError:
                pass
            return f"READY_AFTER_SECONDS={value}"
    return None


@checks.check("crash-loop", docs=DOCS_CRASH)
def crash_loop(ctx: Context) -> Verdict:
    """shop-api starts instead of crash-looping, every replica available."""
    v = Verdict()
    name = "shop-api"
    bad = _bad_setting(_container(_deployment(ctx, name)))
    fixed = v.expect(
        bad is None,
        _(
            "Deployment {name}: the container exits at start (exit code 2) because {bad} is not "
            "valid"
        ).format(name=name, bad=bad),
        _(
            "`kubectl logs deploy/{name} --previous` shows what the last container said as it "
            "exited; fix that setting in the Deployment."
        ).format(name=name),
    )
    seen = _available(ctx, name, fixed)
    if fixed:
        _expect_available(
            v,
            name,
            seen,
            _("Wait for the rollout (`kubectl rollout status deploy/{name}`).").format(name=name),
        )
    else:
        # A real kubelet may report a container Ready for a moment between two crashes: with
        # the setting still there, no replica counts as available, whatever a snapshot shows.
        v.expect(
            False,
            _(
                "Deployment {name}: no replica stays available while {bad} is set (waiting: "
                "{waiting})"
            ).format(name=name, bad=bad, waiting=_waiting(seen[1])),
            _("Fix that setting; the replicas then start and stay Ready."),
        )
    return v.ok(_("Deployment {name} starts, every replica available").format(name=name))


def _probe_target(container: Json) -> tuple[str, str] | None:
    """(port, path) the container's readiness probe asks, named ports resolved; None if none."""
    probe = container.get("readinessProbe") or {}
    action = probe.get("httpGet") or probe.get("tcpSocket")
    if not action:
        return None
    port = action.get("port")
    if isinstance(port, str) and not port.isdigit():
        named = [p for p in container.get("ports") or [] if p.get("name") == port]
        port = named[0].get("containerPort") if named else port
    path = str(action.get("path") or "/") if "httpGet" in probe else ""
    return str(port), path


def _app_port(container: Json) -> str:
    for env in container.get("env") or []:
        if env.get("name") == "PORT" and env.get("value"):
            return str(env["value"])
    return APP_PORT


def _ready_endpoints(ctx: Context, service: str) -> int:
    slices = ctx.list(ENDPOINTSLICES, labels=f"kubernetes.io/service-name={service}")
    return sum(
        1
        for s in slices
        for e in s.get("endpoints") or []
        if dig(e, "conditions", "ready", default=False)
    )


@checks.check("readiness", docs=DOCS_PROBES)
def readiness(ctx: Context) -> Verdict:
    """shop-search's readiness probe asks the app's port and path; the Service has endpoints."""
    v = Verdict()
    name = "shop-search"
    container = _container(_deployment(ctx, name))
    target = _probe_target(container)
    port = _app_port(container)
    has_probe = v.expect(
        target is not None,
        _("Deployment {name} has no readiness probe (httpGet) any more").format(name=name),
        _(
            "Without one, pods get traffic before they can serve it: keep the probe, and point "
            "it where the app answers."
        ),
    )
    right = has_probe and v.expect(
        target is not None and target[0] == port and target[1] in HEALTH_PATHS,
        _(
            "Deployment {name} readiness probe: expected port {port} path {paths}, found port "
            "{found_port} path {found_path}"
        ).format(
            name=name,
            port=port,
            paths=_(" or ").join(HEALTH_PATHS),
            found_port=target[0] if target else "-",
            found_path=(target[1] if target else "") or "-",
        ),
        _(
            "`kubectl describe pod -l app={name}` shows why the probe fails (404, connection "
            "refused); demo-web answers readiness on /healthz at its PORT (8080 by default)."
        ).format(name=name),
    )
    seen = _available(ctx, name, right)
    _expect_available(
        v,
        name,
        seen,
        _("Wait for the rollout (`kubectl rollout status deploy/{name}`).").format(name=name),
    )
    endpoints = _ready_endpoints(ctx, name) if right else 0
    v.expect(
        endpoints >= 1,
        _("Service {name}: expected ready endpoints, found {endpoints}").format(
            name=name, endpoints=endpoints
        ),
        _(
            "`kubectl get endpointslices -l kubernetes.io/service-name={name}` lists who gets "
            "traffic: only Ready pods do. Keep the Service and fix the pods' readiness."
        ).format(name=name),
    )
    return v.ok(
        _("Deployment {name} Ready behind Service {name} ({endpoints} endpoints)").format(
            name=name, endpoints=endpoints
        )
    )


@checks.check("node-not-ready", docs=DOCS_NODES)
def node_not_ready(ctx: Context) -> Verdict:
    """shop-worker no longer depends on the NotReady node, every replica running elsewhere."""
    v = Verdict()
    name = "shop-worker"
    spec = dig(_deployment(ctx, name), "spec", "template", "spec", default={}) or {}
    selector = spec.get("nodeSelector") or {}
    affinity = str(dig(spec, "affinity", "nodeAffinity", default="") or "")
    by_name = spec.get("nodeName") == DRILL_NODE  # a healthy node by name is fine
    pinned = DRILL_LABEL in selector or DRILL_LABEL in affinity or by_name
    free = v.expect(
        not pinned,
        _("Deployment {name} is pinned to the drill node ({label}), which is NotReady").format(
            name=name, label=DRILL_LABEL
        ),
        _(
            "`kubectl get pods -l app={name}` shows them Pending; `kubectl describe pod` says no "
            "node fits, and `kubectl get nodes` shows the node they must run on is NotReady. Let "
            "them run on any healthy node (remove the pin and the toleration that goes with it)."
        ).format(name=name),
    )
    seen = _available(ctx, name, free)
    _expect_available(
        v,
        name,
        seen,
        _("Wait for the rollout (`kubectl rollout status deploy/{name}`).").format(name=name),
    )
    on_drill = [p["metadata"]["name"] for p in seen[1] if dig(p, "spec", "nodeName") == DRILL_NODE]
    v.expect(
        not on_drill,
        _("pods on the NotReady node {node}: {pods}").format(
            node=DRILL_NODE, pods=", ".join(on_drill)
        ),
        _("They can never run there; once the Deployment no longer pins them they are replaced."),
    )
    return v.ok(_("Deployment {name} runs every replica on healthy nodes").format(name=name))
