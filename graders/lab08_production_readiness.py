"""Checks for lab 08: a production-readiness review of a seeded namespace, one check per
anti-pattern the article lists.

kubelab seeds the namespace (the lab's setup/) with a shop that carries the anti-patterns; each
check reads every workload in the namespace (Deployments and StatefulSets), so a fix in one
object never hides a fault in another, and each failure names the object, the container and the
fix. Image checks read only the tag, never the image's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from kubelab.api import DEPLOYMENTS, HPAS, PDBS, PODS, STATEFULSETS, Json
from kubelab.grading import Checks, Context, Missing, Verdict
from kubelab.grading.quantity import parse
from kubelab.i18n import _
from kubelab.objects import dig, image_tag, prestop_delay, selector_query

checks = Checks("08-production-readiness")

WEB, DB = "shop-web", "shop-db"
WEB_CONTAINER = "web"
BACKUP_ANNOTATION = "backup.velero.io/backup-volumes"
MIN_REPLICAS = 2
# Images that start as root unless runAsUser names the unprivileged user they were built for:
# postgres (the Docker library image, and the course's kind image, kubelab/cluster/kind_build.py
# POSTGRES_UID) drops to its postgres user, uid 999. Under runAsNonRoot with no runAsUser the
# kubelet refuses to start it (the image's user is root); under another uid initdb finds no
# user. The sim cluster runs no container, so the check says what kind would.
IMAGE_USERS = {"postgres": 999}

DOCS_RESOURCES = "https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/"
DOCS_PROBES = (
    "https://kubernetes.io/docs/tasks/configure-pod-container/"
    "configure-liveness-readiness-startup-probes/"
)
DOCS_IMAGES = "https://kubernetes.io/docs/concepts/containers/images/#image-names"
DOCS_SECURITY = "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/"
DOCS_READ_ONLY = (
    "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/"
    "#set-the-security-context-for-a-container"
)
DOCS_PDB = "https://kubernetes.io/docs/tasks/run-application/configure-pdb/"
DOCS_SHUTDOWN = "https://kubernetes.io/docs/concepts/containers/container-lifecycle-hooks/#hook-handler-execution"
DOCS_BACKUP = "https://kubernetes.io/docs/concepts/storage/volume-snapshots/"
DOCS_REPLICAS = "https://kubernetes.io/docs/concepts/workloads/controllers/deployment/"


def _workloads(ctx: Context) -> list[tuple[str, Json]]:
    """Return every Deployment and StatefulSet in the namespace as ("Kind name", object)."""
    found = [(f"Deployment {d['metadata']['name']}", d) for d in ctx.list(DEPLOYMENTS)]
    found += [(f"StatefulSet {s['metadata']['name']}", s) for s in ctx.list(STATEFULSETS)]
    if not found:
        raise Missing(
            _("no Deployment or StatefulSet in namespace {namespace}").format(
                namespace=ctx.namespace
            ),
            _(
                "`kubelab reset 08-production-readiness` seeds the shop again, then apply your "
                "fixed folder with `kubectl apply -k <folder> -n {namespace}`."
            ).format(namespace=ctx.namespace),
        )
    return found


def _containers(pod_spec: Json) -> Iterator[Json]:
    yield from pod_spec.get("initContainers") or []
    yield from pod_spec.get("containers") or []


def _each_container(ctx: Context) -> Iterator[tuple[str, Json, Json]]:
    """Yield ("Kind name container c", container, pod spec) for every workload's container."""
    for where, obj in _workloads(ctx):
        spec = dig(obj, "spec", "template", "spec", default={}) or {}
        for c in _containers(spec):
            shown = _("{workload} container {container}").format(
                workload=where, container=c.get("name", "?")
            )
            yield shown, c, spec


def _need(ctx: Context, res_kind: str, name: str) -> Json:
    res = DEPLOYMENTS if res_kind == "Deployment" else STATEFULSETS
    return ctx.need(
        res,
        name,
        hint=_(
            "`kubelab reset 08-production-readiness` seeds {kind} {name} again; keep it "
            "and fix it rather than deleting it."
        ).format(kind=res_kind, name=name),
    )


def _web_container(dep: Json) -> Json:
    for c in dig(dep, "spec", "template", "spec", "containers", default=[]) or []:
        if c.get("name") == WEB_CONTAINER:
            return dict(c)
    raise Missing(
        _("Deployment {name} has no container named {container}").format(
            name=WEB, container=WEB_CONTAINER
        ),
        _("Keep the application container's name, `{container}`.").format(container=WEB_CONTAINER),
    )


def _pods(ctx: Context, obj: Json) -> list[Json]:
    """Return the live pods a workload's selector picks (not being deleted)."""
    query = selector_query(dig(obj, "spec", "selector"))
    if query is None:
        return []
    return [p for p in ctx.list(PODS, labels=query) if not dig(p, "metadata", "deletionTimestamp")]


def _stale(
    ctx: Context, res_kind: str, name: str, matches: Callable[[Json, Json], bool]
) -> Callable[[], list[str]]:
    """Return a probe listing the workload's pods that do not match its template yet."""

    def probe() -> list[str]:
        obj = _need(ctx, res_kind, name)
        template = dig(obj, "spec", "template", default={}) or {}
        pods = _pods(ctx, obj)
        if not pods:
            return [_("{kind} {name} has no pods").format(kind=res_kind, name=name)]
        return [
            _("pod {name}").format(name=p["metadata"]["name"])
            for p in pods
            if not matches(template, p)
        ]

    return probe


def _rolled_out(
    ctx: Context,
    v: Verdict,
    res_kind: str,
    name: str,
    ready: bool,
    probe: Callable[[], list[str]],
    what: str,
) -> None:
    """Add the requirement that every pod of the workload carries the fix (once it is right)."""
    stuck = ctx.stuck_in(name) if res_kind == "Deployment" else ctx.stuck_in_set(name)
    waiting = _("pods of {name} to roll out").format(name=name)
    left = ctx.wait(probe, lambda s: not s, what=waiting, stuck=stuck) if ready else []
    v.expect(
        ready and not left,
        _("pods of {kind} {name} without {what}: {pods}").format(
            kind=res_kind, name=name, what=what, pods=", ".join(left[:3])
        )
        if left
        else _("pods are compared once {kind} {name} has {what}").format(
            kind=res_kind, name=name, what=what
        ),
        _(
            "Apply the change and wait for `kubectl rollout status {resource}/{name} -n "
            "{namespace}`."
        ).format(resource=res_kind.lower(), name=name, namespace=ctx.namespace),
    )


@checks.check("requests-limits", docs=DOCS_RESOURCES)
def requests_limits(ctx: Context) -> Verdict:
    """Every container requests CPU and memory, and has limits for both at or above them."""
    v = Verdict()
    no_requests, no_limits = [], []
    for where, c, _spec in _each_container(ctx):
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        if any(parse(requests.get(r, "")) is None for r in ("cpu", "memory")):
            no_requests.append(where)
        if any(
            parse(limits.get(r, "")) is None
            or (parse(requests.get(r, "")) or 0) > (parse(limits.get(r, "")) or 0)
            for r in ("cpu", "memory")
        ):
            no_limits.append(where)
    v.expect(
        not no_requests,
        _(
            "{containers}: expected resources.requests for cpu and memory, found none or only one"
        ).format(containers=", ".join(no_requests)),
        _(
            "Set resources.requests.cpu and .memory on {container}: without requests the "
            "scheduler packs nodes blind, and under node pressure the kubelet evicts first the "
            "pods using more than they request (then by priority): with no request, that is "
            "always this one."
        ).format(container=no_requests[0] if no_requests else _("it")),
    )
    v.expect(
        not no_limits,
        _(
            "{containers}: expected resources.limits for cpu and memory, at or above the requests"
        ).format(containers=", ".join(no_limits)),
        _(
            "Set resources.limits.cpu and .memory on {container}: one leaking or spinning "
            "container must not take the whole node with it."
        ).format(container=no_limits[0] if no_limits else _("it")),
    )
    return v.ok(_("every container requests CPU and memory, within limits"))


def _endpoint(probe: Json | None) -> object:
    """Return what a probe asks: its handler without the timing fields."""
    if not probe:
        return None
    return {k: probe[k] for k in ("httpGet", "tcpSocket", "exec", "grpc") if k in probe}


def describe(probe: Json | None) -> str:
    """Return a probe's handler in a few words ("httpGet /livez on http")."""
    if not probe:
        return _("no probe")
    if "httpGet" in probe:
        get = probe["httpGet"]
        return _("httpGet {path} on {port}").format(path=get.get("path", "/"), port=get.get("port"))
    kind = next((k for k in ("tcpSocket", "exec", "grpc") if k in probe), "unknown")
    return f"{kind} {probe[kind]}" if kind != "unknown" else _("a probe with no handler")


@checks.check("liveness-probe", docs=DOCS_PROBES)
def liveness_probe(ctx: Context) -> Verdict:
    """shop-web's liveness probe is its own (not a copy of readiness) and asks another endpoint."""
    v = Verdict()
    c = _web_container(_need(ctx, "Deployment", WEB))
    ready, live = c.get("readinessProbe"), c.get("livenessProbe")
    where = _("Deployment {name} container {container}").format(name=WEB, container=WEB_CONTAINER)
    v.expect(
        live is not None and live != ready,
        (
            _("{where} livenessProbe: missing")
            if live is None
            else _("{where} livenessProbe: a copy of readinessProbe, field for field")
        ).format(where=where),
        _(
            "Give {where} its own livenessProbe: it answers 'is the process stuck?' and "
            "restarts the container, readiness answers 'can it serve now?' and only takes it out "
            "of the Service. A copy restarts pods that are merely busy."
        ).format(where=where),
    )
    v.expect(
        live is not None and _endpoint(live) != _endpoint(ready),
        _("{where} livenessProbe asks the same endpoint as readinessProbe: {probe}").format(
            where=where, probe=describe(live)
        )
        if live
        else _("{where} has no livenessProbe to compare").format(where=where),
        _(
            "Point liveness at the endpoint that only says the process is alive (demo-web: "
            "httpGet /livez), and let it give up more slowly than readiness."
        ),
    )
    return v.ok(
        _("{where}: liveness {live}, readiness {ready}").format(
            where=where, live=describe(live), ready=describe(ready)
        )
    )


@checks.check("image-tags", docs=DOCS_IMAGES)
def image_tags(ctx: Context) -> Verdict:
    """Every container's image names a version tag or a digest, never latest or nothing."""
    v = Verdict()
    floating = [
        f"{where} ({c.get('image', '')})"
        for where, c, _spec in _each_container(ctx)
        if image_tag(str(c.get("image", ""))) == "latest"
    ]
    v.expect(
        not floating,
        _("{containers}: expected a version tag, found :latest or no tag").format(
            containers=", ".join(floating)
        ),
        _(
            "Pin {image} to a version (name:1.2.3, or a digest): with :latest a restart or a new "
            "node silently runs different code, and a rollback has nothing to go back to."
        ).format(image=floating[0] if floating else _("the image")),
    )
    return v.ok(_("every image is pinned to a version"))


def image_repository(image: str) -> str:
    """Return an image reference's last path component without tag or digest (postgres)."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


@checks.check("non-root", docs=DOCS_SECURITY)
def non_root(ctx: Context) -> Verdict:
    """Every container runs with runAsNonRoot (and not as uid 0), as a user its image supports,
    without privilege escalation."""
    v = Verdict()
    root, unsupported, escalates = [], [], []
    for where, c, spec in _each_container(ctx):
        pod_sc, sc = spec.get("securityContext") or {}, c.get("securityContext") or {}
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        repo = image_repository(str(c.get("image", "")))
        if non_root is not True or uid == 0:
            root.append(where)
        elif repo in IMAGE_USERS and uid != IMAGE_USERS[repo]:
            unsupported.append(
                _("{where} ({image}: runAsUser {uid}, its image's user is {user})").format(
                    where=where,
                    image=repo,
                    uid=uid if uid is not None else _("unset"),
                    user=IMAGE_USERS[repo],
                )
            )
        if sc.get("allowPrivilegeEscalation") is not False:
            escalates.append(where)
    if root:
        v.expect(
            False,
            _(
                "{containers}: expected runAsNonRoot true and a non-zero runAsUser, found root "
                "allowed"
            ).format(containers=", ".join(root)),
            _(
                "Set securityContext.runAsNonRoot: true on {container} (and runAsUser to the "
                "image's unprivileged user): root in a container is one escape away from root on "
                "the node."
            ).format(container=root[0]),
        )
    else:
        v.expect(
            not unsupported,
            _(
                "{containers}: runAsNonRoot, but not as the user the image runs as, so the "
                "container would not start on a real node"
            ).format(containers=", ".join(unsupported)),
            _(
                "An image that starts as root needs runAsUser set to the unprivileged user it was "
                "built for (its Dockerfile's user; for postgres, its postgres user): with no "
                "runAsUser the kubelet refuses to start a runAsNonRoot container whose image runs "
                "as root, and under an unknown uid the database cannot initialise."
            ),
        )
    v.expect(
        not escalates,
        _("{containers}: expected allowPrivilegeEscalation false, found it unset or true").format(
            containers=", ".join(escalates)
        ),
        _(
            "Set allowPrivilegeEscalation: false in the container securityContext of "
            "{container} (it exists only at container level)."
        ).format(container=escalates[0] if escalates else _("it")),
    )
    return v.ok(_("every container runs as a non-root user its image supports, without escalation"))


@checks.check("read-only-root", docs=DOCS_READ_ONLY)
def read_only_root(ctx: Context) -> Verdict:
    """shop-web's container runs with a read-only root filesystem, on every pod."""
    v = Verdict()
    dep = _need(ctx, "Deployment", WEB)
    found = dig(_web_container(dep), "securityContext", "readOnlyRootFilesystem")
    where = _("Deployment {name} container {container}").format(name=WEB, container=WEB_CONTAINER)
    v.expect(
        found is True,
        _("{where} securityContext.readOnlyRootFilesystem: expected true, found {found}").format(
            where=where, found=_("unset") if found is None else str(found).lower()
        ),
        _(
            "Set securityContext.readOnlyRootFilesystem: true on {where}: nothing that gets into "
            "the container can then change its binaries or drop files into it. demo-web writes "
            "no file; an app that needs scratch space gets an emptyDir mounted where it writes "
            "(/tmp)."
        ).format(where=where),
    )

    def read_only(template: Json, pod: Json) -> bool:
        def flags(spec: Json) -> list[object]:
            return [
                dig(c, "securityContext", "readOnlyRootFilesystem")
                for c in spec.get("containers") or []
            ]

        return flags(pod.get("spec") or {}) == flags(template.get("spec") or {})

    probe = _stale(ctx, "Deployment", WEB, read_only)
    _rolled_out(ctx, v, "Deployment", WEB, found is True, probe, _("a read-only root filesystem"))
    return v.ok(_("{where}: read-only root filesystem on every pod").format(where=where))


@checks.check("pdb", docs=DOCS_PDB)
def pdb(ctx: Context) -> Verdict:
    """A PodDisruptionBudget selects exactly shop-web's pods and allows at least one eviction."""
    v = Verdict()
    dep = _need(ctx, "Deployment", WEB)
    theirs = {p["metadata"]["name"] for p in _pods(ctx, dep)}

    def picks(budget: Json) -> set[str]:
        selector = dig(budget, "spec", "selector")
        query = selector_query(selector)
        if query is None and selector != {}:
            return set()
        # Pods still terminating after a rollout (shop-web's grace period is long) are not
        # shop-web's any more: `theirs` leaves them out, and so must this.
        live = ctx.list(PODS, labels=query)
        return {p["metadata"]["name"] for p in live if not dig(p, "metadata", "deletionTimestamp")}

    budgets = [b for b in ctx.list(PDBS) if theirs and picks(b) == theirs]
    names = ", ".join(b["metadata"]["name"] for b in ctx.list(PDBS)) or _("none")
    v.expect(
        bool(budgets),
        _(
            "PodDisruptionBudget over Deployment {name}'s {count} pods: found none "
            "(budgets in the namespace: {names})"
        ).format(name=WEB, count=len(theirs), names=names),
        _(
            "Add a PodDisruptionBudget whose selector matches {name}'s pod labels (app: {name}), "
            "with maxUnavailable: 1: a node drain then evicts one pod at a time instead of all."
        ).format(name=WEB),
    )
    if not budgets:
        v.expect(False, _("no budget, so no disruption is guarded"), _("See the hint above."))
        return v.ok("")
    name = budgets[0]["metadata"]["name"]

    def settled(budget: Json | None) -> bool:
        st = (budget or {}).get("status") or {}
        return bool(
            st.get("observedGeneration", 0) >= dig(budget, "metadata", "generation", default=0)
            and st.get("expectedPods") == len(theirs)
        )

    budget = ctx.wait(
        lambda: ctx.get(PDBS, name), settled, what=_("PDB {name} to count pods").format(name=name)
    )
    st = (budget or {}).get("status") or {}
    allowed = st.get("disruptionsAllowed", 0)
    v.expect(
        allowed >= 1,
        _(
            "PodDisruptionBudget {name} status.disruptionsAllowed: expected at least 1, found "
            "{allowed} ({healthy} healthy, {required} required)"
        ).format(
            name=name,
            allowed=allowed,
            healthy=st.get("currentHealthy", 0),
            required=st.get("desiredHealthy", 0),
        ),
        _(
            "A budget that allows no eviction blocks every drain: use maxUnavailable: 1 on "
            "{name}, or keep minAvailable below the replicas."
        ).format(name=name),
    )
    return v.ok(
        _("PodDisruptionBudget {name} over {count} pods, {allowed} eviction(s) allowed").format(
            name=name, count=len(theirs), allowed=allowed
        )
    )


@checks.check("prestop", docs=DOCS_SHUTDOWN)
def prestop(ctx: Context) -> Verdict:
    """shop-web's container has a preStop hook, a grace period that outlasts it, on every pod."""
    v = Verdict()
    dep = _need(ctx, "Deployment", WEB)
    hook = dig(_web_container(dep), "lifecycle", "preStop")
    where = _("Deployment {name} container {container}").format(name=WEB, container=WEB_CONTAINER)
    v.expect(
        hook is not None,
        _("{where} lifecycle.preStop: expected a hook (e.g. sleep 5), found none").format(
            where=where
        ),
        _(
            "Add lifecycle.preStop to {where} with a short sleep (the `sleep` action: the image "
            "has no shell), so the endpoints drop the pod before it gets SIGTERM."
        ).format(where=where),
    )
    grace = dig(dep, "spec", "template", "spec", "terminationGracePeriodSeconds", default=30)
    delay = prestop_delay(hook)  # the sleep action or an exec sleep, as every lab reads it
    v.expect(
        hook is not None and grace > (delay or 0),
        _(
            "Deployment {name} terminationGracePeriodSeconds {grace} must be longer than the "
            "preStop pause ({delay} s)"
        ).format(name=WEB, grace=grace, delay=delay if delay is not None else _("unknown"))
        if hook
        else _(
            "Deployment {name} terminationGracePeriodSeconds: nothing to compare without a hook"
        ).format(name=WEB),
        _(
            "The grace period counts from the start of preStop: make it longer than the pause "
            "plus the time the app needs to finish its requests."
        ),
    )

    def has_hook(template: Json, pod: Json) -> bool:
        def hooks(spec: Json) -> list[object]:
            return [dig(c, "lifecycle", "preStop") for c in spec.get("containers") or []]

        return hooks(pod.get("spec") or {}) == hooks(template.get("spec") or {})

    probe = _stale(ctx, "Deployment", WEB, has_hook)
    _rolled_out(ctx, v, "Deployment", WEB, hook is not None, probe, _("the preStop hook"))
    return v.ok(
        _("{where}: preStop pause {delay} s, grace {grace} s").format(
            where=where, delay=delay if delay is not None else "?", grace=grace
        )
    )


@checks.check("backup-policy", docs=DOCS_BACKUP)
def backup_policy(ctx: Context) -> Verdict:
    """shop-db's pod template names every claim template for backup; every pod carries it."""
    v = Verdict()
    sts = _need(ctx, "StatefulSet", DB)
    annotations = dig(sts, "spec", "template", "metadata", "annotations", default={}) or {}
    value = annotations.get(BACKUP_ANNOTATION)
    v.expect(
        bool(value),
        _("StatefulSet {name} pod template: expected annotation {annotation}, found none").format(
            name=DB, annotation=BACKUP_ANNOTATION
        ),
        _(
            "Annotate {name}'s pod template (spec.template.metadata.annotations) with "
            "{annotation}: the volumes to back up, comma-separated. Upgrading a database "
            "with no backup leaves no way back."
        ).format(name=DB, annotation=BACKUP_ANNOTATION),
    )
    claims = {
        str(dig(t, "metadata", "name"))
        for t in dig(sts, "spec", "volumeClaimTemplates", default=[]) or []
    }
    named = {n.strip() for n in str(value or "").split(",") if n.strip()}
    v.expect(
        bool(value) and claims <= named and named <= claims,
        _(
            "StatefulSet {name} {annotation}: expected the claim templates {claims}, found {found}"
        ).format(
            name=DB,
            annotation=BACKUP_ANNOTATION,
            claims=", ".join(sorted(claims)) or _("none"),
            found=repr(value),
        ),
        _("Name exactly the volumes that hold data: {name}'s volumeClaimTemplates.").format(
            name=DB
        ),
    )

    def annotated(template: Json, pod: Json) -> bool:
        theirs = dig(pod, "metadata", "annotations", BACKUP_ANNOTATION)
        return bool(theirs == dig(template, "metadata", "annotations", BACKUP_ANNOTATION))

    probe = _stale(ctx, "StatefulSet", DB, annotated)
    _rolled_out(ctx, v, "StatefulSet", DB, bool(value), probe, _("the backup annotation"))
    return v.ok(
        _("StatefulSet {name}: {annotation}={value} on every pod").format(
            name=DB, annotation=BACKUP_ANNOTATION, value=value
        )
    )


@checks.check("replicas", docs=DOCS_REPLICAS)
def replicas(ctx: Context) -> Verdict:
    """shop-web asks for at least 2 replicas (or an HPA keeps at least 2), and they are up."""
    v = Verdict()
    dep = _need(ctx, "Deployment", WEB)
    raw = dig(dep, "spec", "replicas", default=1)
    want = raw if isinstance(raw, int) else 1
    hpa_min = max(
        (
            dig(h, "spec", "minReplicas", default=1)
            for h in ctx.list(HPAS)
            if dig(h, "spec", "scaleTargetRef", "name") == WEB
            and dig(h, "spec", "scaleTargetRef", "kind") == "Deployment"
        ),
        default=0,
    )
    enough = v.expect(
        want >= MIN_REPLICAS and (hpa_min == 0 or hpa_min >= MIN_REPLICAS),
        (
            _(
                "Deployment {name} spec.replicas: expected at least {minimum}, found {want} "
                "(an HPA keeps at least {hpa_min})"
            )
            if hpa_min
            else _("Deployment {name} spec.replicas: expected at least {minimum}, found {want}")
        ).format(name=WEB, minimum=MIN_REPLICAS, want=want, hpa_min=hpa_min),
        _(
            "Run {name} with spec.replicas 3 (and an HPA's minReplicas, if any, at least "
            "{minimum}): one replica means every crash, node drain and rollout is an outage."
        ).format(name=WEB, minimum=MIN_REPLICAS),
    )

    def available(obj: Json) -> bool:
        return int(dig(obj, "status", "availableReplicas", default=0) or 0) >= want

    if enough:
        dep = ctx.wait(
            lambda: _need(ctx, "Deployment", WEB),
            available,
            what=_("{name} pods").format(name=WEB),
            stuck=ctx.stuck_in(WEB),
        )
    up = int(dig(dep, "status", "availableReplicas", default=0) or 0)
    v.expect(
        enough and up >= max(want, MIN_REPLICAS),
        _("Deployment {name} status.availableReplicas: expected {want}, found {up}").format(
            name=WEB, want=max(want, MIN_REPLICAS), up=up
        ),
        _(
            "`kubectl rollout status deployment/{name} -n {namespace}`; `kubectl describe` a "
            "pod that is not Ready to see why."
        ).format(name=WEB, namespace=ctx.namespace),
    )
    return v.ok(
        _("Deployment {name}: {up} of {want} replicas available").format(name=WEB, up=up, want=want)
    )
