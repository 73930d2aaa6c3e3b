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
from kubelab.i18n import _
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
    names = ", ".join(c.get("name", "?") for c in containers) or _("none")
    raise Missing(
        _("Deployment {name} has no container named {container} (containers: {names})").format(
            name=NAME, container=CONTAINER, names=names
        ),
        _("Name the application container `{container}` in spec.template.spec.containers.").format(
            container=CONTAINER
        ),
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
        _(
            "Deployment {name}: expected {wanted} replicas of pods labelled app: {name}, found "
            "{replicas} of pods labelled app: {app}"
        ).format(name=NAME, wanted=REPLICAS, replicas=replicas, app=app),
        _(
            "Set spec.replicas to {wanted} (one pod can fail while two still serve) and label the "
            "pod template with app: {name}."
        ).format(wanted=REPLICAS, name=NAME),
    )
    strategy = dig(dep, "spec", "strategy", default={})
    rolling = strategy.get("rollingUpdate") or {}
    surge, unavailable = rolling.get("maxSurge"), rolling.get("maxUnavailable")
    v.expect(
        strategy.get("type") == "RollingUpdate" and surge == 1 and unavailable == 1,
        _(
            "spec.strategy: expected RollingUpdate with maxSurge 1 and maxUnavailable 1, found "
            "{type} with maxSurge {surge} and maxUnavailable {unavailable}"
        ).format(type=strategy.get("type"), surge=surge, unavailable=unavailable),
        _(
            "Set spec.strategy.rollingUpdate.maxSurge and maxUnavailable to 1 (whole numbers): "
            "the defaults are 25%, which round differently for 3 replicas."
        ),
    )
    if replicas == REPLICAS:  # only a right spec is worth waiting for
        dep = ctx.wait(
            lambda: _deployment(ctx),
            _rolled_out,
            what=_("Deployment {name} to converge").format(name=NAME),
            stuck=ctx.stuck_in(NAME),
        )
    st = dep.get("status", {})
    want = dig(dep, "spec", "replicas", default=1)
    v.expect(
        want == REPLICAS and _rolled_out(dep),
        _(
            "Deployment {name} status: {updated}/{want} updated, "
            "{available}/{want} available, {total} in total"
        ).format(
            name=NAME,
            updated=st.get("updatedReplicas", 0),
            want=want,
            available=st.get("availableReplicas", 0),
            total=st.get("replicas", 0),
        ),
        _(
            "Watch `kubectl rollout status deployment/{name} -n {namespace}`; "
            "`kubectl describe` a pod that is not Ready to see why."
        ).format(name=NAME, namespace=ctx.namespace),
    )
    return v.ok(
        _(
            "Deployment {name}: {want}/{want} replicas updated and available, rolling update 1/1"
        ).format(name=NAME, want=want)
    )


@checks.check("resources", docs=DOCS_RESOURCES)
def resources(ctx: Context) -> Verdict:
    """Container web: port 8080, CPU and memory requests and limits, requests <= limits."""
    v = Verdict()
    c = _container(_deployment(ctx))
    ports = [p.get("containerPort") for p in c.get("ports") or []]
    v.expect(
        8080 in ports,
        _("container {container} ports: expected containerPort 8080, found {ports}").format(
            container=CONTAINER, ports=ports or _("none")
        ),
        _("Declare containerPort 8080 on the container: the app listens there."),
    )
    res = c.get("resources") or {}
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    for r in ("cpu", "memory"):
        req, lim = requests.get(r), limits.get(r)
        ordered = req is not None and lim is not None and (parse(req) or 0) <= (parse(lim) or 0)
        v.expect(
            ordered,
            _(
                "container {container} {resource}: expected a request at or below a limit, found "
                "request {request} and limit {limit}"
            ).format(
                container=CONTAINER,
                resource=r,
                request=req or _("none"),
                limit=lim or _("none"),
            ),
            _(
                "Set resources.requests.{resource} and resources.limits.{resource} (request <= "
                "limit): requests let the scheduler place the pod, limits cap what it may use."
            ).format(resource=r),
        )
    summary = ", ".join(
        f"{r} {requests.get(r)}→{limits.get(r)}" for r in ("cpu", "memory") if r in requests
    )
    return v.ok(
        _("container {container}: port 8080, requests→limits {summary}").format(
            container=CONTAINER, summary=summary
        )
    )


def _what(probe: Json | None) -> str:
    if not probe:
        return _("no probe")
    return _("a {kind} probe").format(
        kind=next((k for k in ("exec", "tcpSocket", "grpc") if k in probe), "probe")
    )


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
        _("readinessProbe: expected httpGet /healthz on 8080, found {found}").format(
            found=_("httpGet {path} on {port}").format(path=r_path, port=r_port)
            if ready and ready.get("httpGet")
            else _what(ready)
        ),
        _(
            "Add a readinessProbe with httpGet path /healthz, port 8080: until it passes, the pod "
            "gets no traffic from the Service."
        ),
    )
    v.expect(
        (l_path, l_port) == ("/livez", 8080),
        _("livenessProbe: expected httpGet /livez on 8080, found {found}").format(
            found=_("httpGet {path} on {port}").format(path=l_path, port=l_port)
            if live and live.get("httpGet")
            else _what(live)
        ),
        _(
            "Add a livenessProbe with httpGet path /livez, port 8080: when it fails the kubelet "
            "restarts the container."
        ),
    )
    r_delay = (ready or {}).get("initialDelaySeconds", 0)
    l_delay = (live or {}).get("initialDelaySeconds", 0)
    v.expect(
        live is not None and ready is not None and l_delay >= r_delay,
        _(
            "livenessProbe.initialDelaySeconds ({liveness}) is below "
            "readinessProbe.initialDelaySeconds ({readiness})"
        ).format(liveness=l_delay, readiness=r_delay)
        if live and ready
        else _("initialDelaySeconds: cannot compare without both probes"),
        _("Give liveness at least the readiness delay, so a slow start is not killed."),
    )
    v.expect(
        live is not None and ready is not None and live != ready,
        _("livenessProbe is a copy of readinessProbe") if live else _("livenessProbe is missing"),
        _(
            "Liveness answers 'is the process stuck?' (/livez), readiness 'can it serve now?' "
            "(/healthz): a copy restarts pods that are merely busy or waiting on a dependency."
        ),
    )
    return v.ok(
        _(
            "readiness /healthz:8080 (delay {readiness}s), liveness /livez:8080 (delay {liveness}s)"
        ).format(readiness=r_delay, liveness=l_delay)
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
        _("runAsNonRoot: expected true (pod or container securityContext), found {found}").format(
            found=_("unset") if non_root is None else non_root
        ),
        _(
            "Set securityContext.runAsNonRoot: true; the kubelet then refuses to start a container "
            "whose image would run as root."
        ),
    )
    escalation = c_sc.get("allowPrivilegeEscalation")
    v.expect(
        escalation is False,
        _(
            "container {container} securityContext.allowPrivilegeEscalation: expected false, "
            "found {found}"
        ).format(container=CONTAINER, found=_("unset") if escalation is None else escalation),
        _(
            "Set allowPrivilegeEscalation: false in the container's securityContext "
            "(it exists only at container level)."
        ),
    )
    return v.ok(_("runs as non-root, no privilege escalation"))


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
    unnamed = _("(unnamed)")
    seen = ", ".join(
        f"{p.get('name') or unnamed}:{p.get('port')}→{p.get('targetPort')}" for p in ports
    )
    v.expect(
        bool(good),
        _("Service {name} ports: expected http:80→8080, found {found}").format(
            name=NAME, found=seen or _("none")
        ),
        _("Give the Service a port 80 named http whose targetPort is the container's 8080."),
    )
    selector = dig(svc, "spec", "selector", default={}) or {}
    selects_all = False
    if dep is None:
        v.expect(
            False,
            _("Deployment {name} not found, so the Service's selector cannot be compared").format(
                name=NAME
            ),
            _("Create Deployment {name} first (task deployment).").format(name=NAME),
        )
    else:
        theirs = {p["metadata"]["name"] for p in _pods(ctx, dep, _replicasets(ctx, dep))}
        query = ",".join(f"{k}={val}" for k, val in sorted(selector.items()))
        picked = {p["metadata"]["name"] for p in ctx.list(PODS, labels=query)} if query else set()
        selects_all = v.expect(
            bool(selector) and picked == theirs,
            _(
                "Service {name} selector {selector} picks {picked} pods, "
                "{common} of the Deployment's {theirs}"
            ).format(
                name=NAME,
                selector=selector or "{}",
                picked=len(picked),
                common=len(picked & theirs),
                theirs=len(theirs),
            ),
            _(
                "Make spec.selector match the pod template's labels (app: demo-web), no more, "
                "no less."
            ),
        )

    def slices() -> list[Json]:
        return ctx.list(ENDPOINTSLICES, labels=f"kubernetes.io/service-name={NAME}")

    found = slices()
    if selects_all:  # endpoints can only converge when the selector is right
        found = ctx.wait(
            slices,
            lambda s: len(ready_endpoints(s)) == REPLICAS,
            what=_("EndpointSlices of Service {service}").format(service=NAME),
        )
    ready = len(ready_endpoints(found))
    v.expect(
        ready == REPLICAS,
        _(
            "EndpointSlices of Service {name}: expected {wanted} ready endpoints, found {ready}"
        ).format(name=NAME, wanted=REPLICAS, ready=ready),
        _(
            "`kubectl get endpointslices -l kubernetes.io/service-name={name} -n {namespace}`:"
            " endpoints appear when the selector matches Ready pods."
        ).format(name=NAME, namespace=ctx.namespace),
    )
    return v.ok(
        _("Service {name}: http 80→8080, {wanted} ready endpoints").format(
            name=NAME, wanted=REPLICAS
        )
    )


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
        what=_("the controller to see Deployment {name}'s change").format(name=NAME),
    )
    revision = _revision(dep)
    image = _web_image(dep)
    older = {image_tag(_web_image(rs)) for rs in _replicasets(ctx, dep) if _revision(rs) < revision}
    older.discard(image_tag(image))
    new_tag = _(
        "Roll out a new image tag (e.g. with `kubectl set image deployment/{name} "
        "{container}=<image>:<new tag> -n {namespace}`), then watch `kubectl rollout "
        "status`; keep spec.revisionHistoryLimit above 0 so the earlier ReplicaSet remains."
    ).format(name=NAME, container=CONTAINER, namespace=ctx.namespace)
    if revision < 2:
        v.expect(
            False,
            _("Deployment {name} revision: expected 2 or later, found {revision}").format(
                name=NAME, revision=revision
            ),
            new_tag,
        )
        return v
    if not v.expect(
        bool(older),
        _(
            "image tag: the current tag {tag} is the same as every earlier revision's "
            "(or no earlier ReplicaSet is kept)"
        ).format(tag=repr(image_tag(image))),
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
        what=_("pods of Deployment {name} to update").format(name=NAME),
        stuck=ctx.stuck_in(NAME),
    )
    v.expect(
        not left,
        _("{count} pod(s) still run an old image, e.g. {pod}").format(
            count=len(left), pod=left[0]["metadata"]["name"]
        )
        if left
        else "",
        _("Wait for `kubectl rollout status deployment/{name} -n {namespace}` to finish.").format(
            name=NAME, namespace=ctx.namespace
        ),
    )
    return v.ok(
        _(
            "Deployment {name} at revision {revision}, every pod on tag {tag} (earlier: {earlier})"
        ).format(
            name=NAME,
            revision=revision,
            tag=repr(image_tag(image)),
            earlier=", ".join(sorted(older)),
        )
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
        hint=_(
            "Apply the dev overlay beside prod (`kubelab apply starter/overlays/dev --lab 02`), "
            "once its objects have names of their own (TODO(dev-overlay)): as handed out it "
            "replaces prod's {name}."
        ).format(name=NAME),
    )
    replicas = dig(dep, "spec", "replicas")
    env = dig(dep, "spec", "template", "metadata", "labels", "env")
    if replicas == 1:
        dep = ctx.wait(
            lambda: ctx.get(DEPLOYMENTS, DEV) or dep,
            _rolled_out,
            what=_("Deployment {name} to converge").format(name=DEV),
            stuck=ctx.stuck_in(DEV),
        )
    v.expect(
        replicas == 1 and env == "dev" and _rolled_out(dep),
        _(
            "Deployment {name}: expected 1 replica of pods labelled env: dev, available; found "
            "{replicas} of pods labelled env: {env}, {available} available"
        ).format(
            name=DEV,
            replicas=replicas,
            env=env,
            available=dig(dep, "status", "availableReplicas", default=0),
        ),
        _(
            "The dev overlay sets one replica and the label env: dev on the pods; apply it and "
            "watch `kubectl rollout status deployment/{name} -n {namespace}`."
        ).format(name=DEV, namespace=ctx.namespace),
    )
    dev_pods = _pods(ctx, dep, _replicasets(ctx, dep))
    prod = ctx.get(DEPLOYMENTS, NAME)
    prod_pods = _pods(ctx, prod, _replicasets(ctx, prod)) if prod else []
    svc, prod_svc = ctx.get(SERVICES, DEV), ctx.get(SERVICES, NAME)
    problems = []
    if svc is None:
        problems.append(_("no Service {name}").format(name=DEV))
    else:
        selector = dig(svc, "spec", "selector")
        mine = set(_picks(selector, dev_pods))
        theirs = _picks(selector, prod_pods)
        if not dev_pods or mine != {p["metadata"]["name"] for p in dev_pods}:
            problems.append(
                _("Service {name} selector {selector} misses {name}'s pods").format(
                    name=DEV, selector=selector or "{}"
                )
            )
        if theirs:
            problems.append(
                _("Service {name} also picks prod's pods {pods}").format(
                    name=DEV, pods=", ".join(theirs[:3])
                )
            )
    for what, selector in (
        (f"Service {NAME}", dig(prod_svc, "spec", "selector")),
        (f"Deployment {NAME}", dig(prod, "spec", "selector", "matchLabels")),
    ):
        picked = _picks(selector, dev_pods)
        if picked:
            problems.append(
                _("prod's {object} selector {selector} picks dev's {pods}").format(
                    object=what, selector=selector, pods=", ".join(picked)
                )
            )
    v.expect(
        not problems,
        _("dev beside prod in {namespace}: {problems}").format(
            namespace=ctx.namespace, problems="; ".join(problems)
        ),
        _(
            "Give dev's pods an app label of their own, in the selectors too (Kustomize `labels` "
            "with includeSelectors), and dev's objects names of their own (nameSuffix): two "
            "environments in one namespace must not share a selector."
        ),
    )
    return v.ok(
        _(
            "dev beside prod: Deployment {dev} (1 replica, env: dev) and Service {dev} select only "
            "dev's pods, prod's {name} only its own"
        ).format(dev=DEV, name=NAME)
    )
