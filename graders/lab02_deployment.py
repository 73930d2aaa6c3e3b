"""Checks for lab 02: a production-shaped Deployment and Service for demo-web, and its dev
overlay running beside it in the same namespace without touching it.

Every check reads cluster state (the objects the API server holds and their status), never the
learner's YAML, and none depends on the image's name: only its tag, for the rolling update.
"""

from __future__ import annotations

from typing import Any

from kubelab.api import DEPLOYMENTS, ENDPOINTSLICES, PODS, REPLICASETS, SERVICES, Json
from kubelab.grading import Checks, Context, Missing, Verdict
from kubelab.grading.quantity import parse
from kubelab.objects import (
    REVISION_ANNOTATION,
    dig,
    image_tag,
    owned_by,
    port_number,
    ready_endpoints,
)

checks = Checks("02-deployment")

NAME = "demo-web"
DEV = "demo-web-dev"  # the dev overlay's Deployment and Service, beside prod's
CONTAINER = "web"
REPLICAS = 3
DOCS = "https://kubernetes.io/docs/concepts/workloads/controllers/deployment/"
DOCS_RESOURCES = "https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/"
DOCS_PROBES = (
    "https://kubernetes.io/docs/tasks/configure-pod-container/"
    "configure-liveness-readiness-startup-probes/"
)
DOCS_SECURITY = "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/"
DOCS_SERVICE = "https://kubernetes.io/docs/concepts/services-networking/service/"
DOCS_KUSTOMIZE = "https://kubernetes.io/docs/tasks/manage-kubernetes-objects/kustomization/"
DOCS_ROLLOUT = (
    "https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#updating-a-deployment"
)


def _deployment(ctx: Context) -> Json:
    return ctx.need(DEPLOYMENTS, NAME)


def _container(dep: Json) -> Json:
    containers = dig(dep, "spec", "template", "spec", "containers", default=[])
    for c in containers:
        if c.get("name") == CONTAINER:
            return dict(c)
    names = ", ".join(c.get("name", "?") for c in containers) or "none"
    raise Missing(
        f"Deployment {NAME} has no container named {CONTAINER} (containers: {names})",
        f"Name the application container `{CONTAINER}` in spec.template.spec.containers.",
    )


def _selector(dep: Json) -> str:
    labels = dig(dep, "spec", "selector", "matchLabels", default={}) or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _replicasets(ctx: Context, dep: Json) -> list[Json]:
    uid = dep["metadata"]["uid"]
    return [rs for rs in ctx.list(REPLICASETS, labels=_selector(dep)) if owned_by(rs, uid)]


def _pods(ctx: Context, dep: Json, replicasets: list[Json]) -> list[Json]:
    uids = {rs["metadata"]["uid"] for rs in replicasets}
    return [
        p
        for p in ctx.list(PODS, labels=_selector(dep))
        if any(owned_by(p, u) for u in uids) and not dig(p, "metadata", "deletionTimestamp")
    ]


def _rolled_out(dep: Json) -> bool:
    spec, st = dep.get("spec", {}), dep.get("status", {})
    want = spec.get("replicas", 1)
    return bool(
        st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)
        and st.get("updatedReplicas", 0) == want
        and st.get("availableReplicas", 0) == want
        and st.get("replicas", 0) == want
    )


@checks.check("deployment", docs=DOCS)
def deployment(ctx: Context) -> Verdict:
    """Deployment demo-web: 3 replicas labelled app: demo-web, rolling update 1/1, converged."""
    v = Verdict()
    dep = _deployment(ctx)
    replicas = dig(dep, "spec", "replicas")
    app = dig(dep, "spec", "template", "metadata", "labels", "app")
    v.expect(
        replicas == REPLICAS and app == NAME,
        f"Deployment {NAME}: expected {REPLICAS} replicas of pods labelled app: {NAME}, found "
        f"{replicas} of pods labelled app: {app}",
        f"Set spec.replicas to {REPLICAS} (one pod can fail while two still serve) and label the "
        f"pod template with app: {NAME}.",
    )
    strategy = dig(dep, "spec", "strategy", default={})
    rolling = strategy.get("rollingUpdate") or {}
    surge, unavailable = rolling.get("maxSurge"), rolling.get("maxUnavailable")
    v.expect(
        strategy.get("type") == "RollingUpdate" and surge == 1 and unavailable == 1,
        f"spec.strategy: expected RollingUpdate with maxSurge 1 and maxUnavailable 1, found "
        f"{strategy.get('type')} with maxSurge {surge} and maxUnavailable {unavailable}",
        "Set spec.strategy.rollingUpdate.maxSurge and maxUnavailable to 1 (whole numbers): "
        "the defaults are 25%, which round differently for 3 replicas.",
    )
    if replicas == REPLICAS:  # only a right spec is worth waiting for
        dep = ctx.wait(
            lambda: _deployment(ctx),
            _rolled_out,
            what=f"Deployment {NAME} to converge",
            stuck=ctx.stuck_in(NAME),
        )
    st = dep.get("status", {})
    want = dig(dep, "spec", "replicas", default=1)
    v.expect(
        want == REPLICAS and _rolled_out(dep),
        f"Deployment {NAME} status: {st.get('updatedReplicas', 0)}/{want} updated, "
        f"{st.get('availableReplicas', 0)}/{want} available, {st.get('replicas', 0)} in total",
        f"Watch `kubectl rollout status deployment/{NAME} -n {ctx.namespace}`; "
        "`kubectl describe` a pod that is not Ready to see why.",
    )
    return v.ok(
        f"Deployment {NAME}: {want}/{want} replicas updated and available, rolling update 1/1"
    )


@checks.check("resources", docs=DOCS_RESOURCES)
def resources(ctx: Context) -> Verdict:
    """Container web: port 8080, CPU and memory requests and limits, requests <= limits."""
    v = Verdict()
    c = _container(_deployment(ctx))
    ports = [p.get("containerPort") for p in c.get("ports") or []]
    v.expect(
        8080 in ports,
        f"container {CONTAINER} ports: expected containerPort 8080, found {ports or 'none'}",
        "Declare containerPort 8080 on the container: the app listens there.",
    )
    res = c.get("resources") or {}
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    for r in ("cpu", "memory"):
        req, lim = requests.get(r), limits.get(r)
        ordered = req is not None and lim is not None and (parse(req) or 0) <= (parse(lim) or 0)
        v.expect(
            ordered,
            f"container {CONTAINER} {r}: expected a request at or below a limit, found request "
            f"{req or 'none'} and limit {lim or 'none'}",
            f"Set resources.requests.{r} and resources.limits.{r} (request <= limit): requests let "
            "the scheduler place the pod, limits cap what it may use.",
        )
    summary = ", ".join(
        f"{r} {requests.get(r)}→{limits.get(r)}" for r in ("cpu", "memory") if r in requests
    )
    return v.ok(f"container {CONTAINER}: port 8080, requests→limits {summary}")


def _what(probe: Json | None) -> str:
    if not probe:
        return "no probe"
    return "a " + next((k for k in ("exec", "tcpSocket", "grpc") if k in probe), "probe") + " probe"


def _http_get(probe: Json | None, container: Json) -> tuple[Any, Any]:
    get = (probe or {}).get("httpGet") or {}
    return get.get("path"), port_number(get.get("port"), [container])


@checks.check("probes", docs=DOCS_PROBES)
def probes(ctx: Context) -> Verdict:
    """Readiness httpGet /healthz:8080; liveness httpGet /livez:8080, not sooner, not a copy."""
    v = Verdict()
    c = _container(_deployment(ctx))
    ready, live = c.get("readinessProbe"), c.get("livenessProbe")
    r_path, r_port = _http_get(ready, c)
    l_path, l_port = _http_get(live, c)
    v.expect(
        (r_path, r_port) == ("/healthz", 8080),
        "readinessProbe: expected httpGet /healthz on 8080, found "
        + (f"httpGet {r_path} on {r_port}" if ready and ready.get("httpGet") else _what(ready)),
        "Add a readinessProbe with httpGet path /healthz, port 8080: until it passes, the pod "
        "gets no traffic from the Service.",
    )
    v.expect(
        (l_path, l_port) == ("/livez", 8080),
        "livenessProbe: expected httpGet /livez on 8080, found "
        + (f"httpGet {l_path} on {l_port}" if live and live.get("httpGet") else _what(live)),
        "Add a livenessProbe with httpGet path /livez, port 8080: when it fails the kubelet "
        "restarts the container.",
    )
    r_delay = (ready or {}).get("initialDelaySeconds", 0)
    l_delay = (live or {}).get("initialDelaySeconds", 0)
    v.expect(
        live is not None and ready is not None and l_delay >= r_delay,
        f"livenessProbe.initialDelaySeconds ({l_delay}) is below "
        f"readinessProbe.initialDelaySeconds ({r_delay})"
        if live and ready
        else "initialDelaySeconds: cannot compare without both probes",
        "Give liveness at least the readiness delay, so a slow start is not killed.",
    )
    v.expect(
        live is not None and ready is not None and live != ready,
        "livenessProbe is a copy of readinessProbe" if live else "livenessProbe is missing",
        "Liveness answers 'is the process stuck?' (/livez), readiness 'can it serve now?' "
        "(/healthz): a copy restarts pods that are merely busy or waiting on a dependency.",
    )
    return v.ok(
        f"readiness /healthz:8080 (delay {r_delay}s), liveness /livez:8080 (delay {l_delay}s)"
    )


@checks.check("security", docs=DOCS_SECURITY)
def security(ctx: Context) -> Verdict:
    """runAsNonRoot true and allowPrivilegeEscalation false."""
    v = Verdict()
    dep = _deployment(ctx)
    c = _container(dep)
    pod_sc = dig(dep, "spec", "template", "spec", "securityContext", default={}) or {}
    c_sc = c.get("securityContext") or {}
    non_root = c_sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
    v.expect(
        non_root is True,
        f"runAsNonRoot: expected true (pod or container securityContext), found "
        f"{'unset' if non_root is None else non_root}",
        "Set securityContext.runAsNonRoot: true; the kubelet then refuses to start a container "
        "whose image would run as root.",
    )
    escalation = c_sc.get("allowPrivilegeEscalation")
    v.expect(
        escalation is False,
        f"container {CONTAINER} securityContext.allowPrivilegeEscalation: expected false, "
        f"found {'unset' if escalation is None else escalation}",
        "Set allowPrivilegeEscalation: false in the container's securityContext "
        "(it exists only at container level).",
    )
    return v.ok("runs as non-root, no privilege escalation")


@checks.check("service", docs=DOCS_SERVICE)
def service(ctx: Context) -> Verdict:
    """Service demo-web: port 80 named http to 8080, selects exactly the pods, 3 ready endpoints."""
    v = Verdict()
    svc = ctx.need(SERVICES, NAME)
    dep = ctx.get(DEPLOYMENTS, NAME)
    try:
        container = _container(dep) if dep else {}
    except Missing:
        container = {}
    ports = dig(svc, "spec", "ports", default=[]) or []
    good = [
        p
        for p in ports
        if p.get("port") == 80
        and port_number(p.get("targetPort"), [container]) == 8080
        and p.get("name") == "http"
    ]
    seen = ", ".join(
        f"{p.get('name') or '(unnamed)'}:{p.get('port')}→{p.get('targetPort')}" for p in ports
    )
    v.expect(
        bool(good),
        f"Service {NAME} ports: expected http:80→8080, found {seen or 'none'}",
        "Give the Service a port 80 named http whose targetPort is the container's 8080.",
    )
    selector = dig(svc, "spec", "selector", default={}) or {}
    selects_all = False
    if dep is None:
        v.expect(
            False,
            f"Deployment {NAME} not found, so the Service's selector cannot be compared",
            f"Create Deployment {NAME} first (task deployment).",
        )
    else:
        theirs = {p["metadata"]["name"] for p in _pods(ctx, dep, _replicasets(ctx, dep))}
        query = ",".join(f"{k}={val}" for k, val in sorted(selector.items()))
        picked = {p["metadata"]["name"] for p in ctx.list(PODS, labels=query)} if query else set()
        selects_all = v.expect(
            bool(selector) and picked == theirs,
            f"Service {NAME} selector {selector or '{}'} picks {len(picked)} pods, "
            f"{len(picked & theirs)} of the Deployment's {len(theirs)}",
            "Make spec.selector match the pod template's labels (app: demo-web), no more, no less.",
        )

    def slices() -> list[Json]:
        return ctx.list(ENDPOINTSLICES, labels=f"kubernetes.io/service-name={NAME}")

    found = slices()
    if selects_all:  # endpoints can only converge when the selector is right
        found = ctx.wait(
            slices,
            lambda s: len(ready_endpoints(s)) == REPLICAS,
            what=f"EndpointSlices of Service {NAME}",
        )
    ready = len(ready_endpoints(found))
    v.expect(
        ready == REPLICAS,
        f"EndpointSlices of Service {NAME}: expected {REPLICAS} ready endpoints, found {ready}",
        f"`kubectl get endpointslices -l kubernetes.io/service-name={NAME} -n {ctx.namespace}`:"
        " endpoints appear when the selector matches Ready pods.",
    )
    return v.ok(f"Service {NAME}: http 80→8080, {REPLICAS} ready endpoints")


def _web_image(obj: Json) -> str:
    for c in dig(obj, "spec", "template", "spec", "containers", default=[]) or dig(
        obj, "spec", "containers", default=[]
    ):
        if c.get("name") == CONTAINER:
            return str(c.get("image", ""))
    return ""


def _revision(obj: Json) -> int:
    value = dig(obj, "metadata", "annotations", REVISION_ANNOTATION, default="0")
    return int(value) if str(value).isdigit() else 0


@checks.check("rolling-update", docs=DOCS_ROLLOUT)
def rolling_update(ctx: Context) -> Verdict:
    """The Deployment is at revision 2 or later, on a new image tag, and every pod runs it.

    Nothing counts before a rollout to a new tag: partial credit is for a rollout the learner
    made that has not finished, never for a Deployment that was only applied (or re-applied)."""
    v = Verdict()
    # Right after `kubectl set image` the revision is the old one until the controller sees it.
    dep = ctx.converge(
        lambda: _deployment(ctx),
        lambda d: (
            dig(d, "status", "observedGeneration", default=0)
            >= dig(d, "metadata", "generation", default=0)
        ),
        what=f"the controller to see Deployment {NAME}'s change",
    )
    revision = _revision(dep)
    image = _web_image(dep)
    older = {image_tag(_web_image(rs)) for rs in _replicasets(ctx, dep) if _revision(rs) < revision}
    older.discard(image_tag(image))
    new_tag = (
        f"Roll out a new image tag (e.g. with `kubectl set image deployment/{NAME} "
        f"{CONTAINER}=<image>:<new tag> -n {ctx.namespace}`), then watch `kubectl rollout "
        "status`; keep spec.revisionHistoryLimit above 0 so the earlier ReplicaSet remains."
    )
    if revision < 2:
        v.expect(
            False, f"Deployment {NAME} revision: expected 2 or later, found {revision}", new_tag
        )
        return v
    if not v.expect(
        bool(older),
        f"image tag: the current tag {image_tag(image)!r} is the same as every earlier revision's "
        "(or no earlier ReplicaSet is kept)",
        new_tag,
    ):
        return v

    def stale_pods() -> list[Json]:
        current = ctx.get(DEPLOYMENTS, NAME) or dep
        pods = _pods(ctx, current, _replicasets(ctx, current))
        return [p for p in pods if _web_image(p) != _web_image(current)]

    left = ctx.wait(
        stale_pods,
        lambda s: not s,
        what=f"pods of Deployment {NAME} to update",
        stuck=ctx.stuck_in(NAME),
    )
    v.expect(
        not left,
        f"{len(left)} pod(s) still run an old image, e.g. {left[0]['metadata']['name']}"
        if left
        else "",
        f"Wait for `kubectl rollout status deployment/{NAME} -n {ctx.namespace}` to finish.",
    )
    return v.ok(
        f"Deployment {NAME} at revision {revision}, every pod on tag {image_tag(image)!r} "
        f"(earlier: {', '.join(sorted(older))})"
    )


def _picks(selector: dict[str, str] | None, pods: list[Json]) -> list[str]:
    """Return the names among `pods` whose labels `selector` matches (none for no selector)."""
    if not selector:
        return []
    return [
        p["metadata"]["name"]
        for p in pods
        if all((p["metadata"].get("labels") or {}).get(k) == val for k, val in selector.items())
    ]


@checks.check("dev-overlay", docs=DOCS_KUSTOMIZE)
def dev_overlay(ctx: Context) -> Verdict:
    """The dev overlay runs beside prod: Deployment demo-web-dev, 1 replica labelled env: dev,
    available, with a Service of its own; neither Service nor Deployment picks the other's pods."""
    v = Verdict()
    dep = ctx.need(
        DEPLOYMENTS,
        DEV,
        hint="Apply the dev overlay beside prod (`kubelab apply starter/overlays/dev --lab 02`), "
        "once its objects have names of their own (TODO(dev-overlay)): as handed out it "
        f"replaces prod's {NAME}.",
    )
    replicas = dig(dep, "spec", "replicas")
    env = dig(dep, "spec", "template", "metadata", "labels", "env")
    if replicas == 1:
        dep = ctx.wait(
            lambda: ctx.get(DEPLOYMENTS, DEV) or dep,
            _rolled_out,
            what=f"Deployment {DEV} to converge",
            stuck=ctx.stuck_in(DEV),
        )
    v.expect(
        replicas == 1 and env == "dev" and _rolled_out(dep),
        f"Deployment {DEV}: expected 1 replica of pods labelled env: dev, available; found "
        f"{replicas} of pods labelled env: {env}, "
        f"{dig(dep, 'status', 'availableReplicas', default=0)} available",
        "The dev overlay sets one replica and the label env: dev on the pods; apply it and "
        f"watch `kubectl rollout status deployment/{DEV} -n {ctx.namespace}`.",
    )
    dev_pods = _pods(ctx, dep, _replicasets(ctx, dep))
    prod = ctx.get(DEPLOYMENTS, NAME)
    prod_pods = _pods(ctx, prod, _replicasets(ctx, prod)) if prod else []
    svc, prod_svc = ctx.get(SERVICES, DEV), ctx.get(SERVICES, NAME)
    problems = []
    if svc is None:
        problems.append(f"no Service {DEV}")
    else:
        selector = dig(svc, "spec", "selector")
        mine = set(_picks(selector, dev_pods))
        theirs = _picks(selector, prod_pods)
        if not dev_pods or mine != {p["metadata"]["name"] for p in dev_pods}:
            problems.append(f"Service {DEV} selector {selector or '{}'} misses {DEV}'s pods")
        if theirs:
            problems.append(f"Service {DEV} also picks prod's pods {', '.join(theirs[:3])}")
    for what, selector in (
        (f"Service {NAME}", dig(prod_svc, "spec", "selector")),
        (f"Deployment {NAME}", dig(prod, "spec", "selector", "matchLabels")),
    ):
        picked = _picks(selector, dev_pods)
        if picked:
            problems.append(f"prod's {what} selector {selector} picks dev's {', '.join(picked)}")
    v.expect(
        not problems,
        f"dev beside prod in {ctx.namespace}: " + "; ".join(problems),
        "Give dev's pods an app label of their own, in the selectors too (Kustomize `labels` "
        "with includeSelectors), and dev's objects names of their own (nameSuffix): two "
        "environments in one namespace must not share a selector.",
    )
    return v.ok(
        f"dev beside prod: Deployment {DEV} (1 replica, env: dev) and Service {DEV} select only "
        f"dev's pods, prod's {NAME} only its own"
    )
