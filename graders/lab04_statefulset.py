"""Checks for lab 04: StatefulSet demo-db, its headless Service, its storage and a staged update.

Every check reads cluster state, never the learner's YAML. Which pod runs which version is read
from revisions, not images: each pod's `controller-revision-hash` label against the set's
status.currentRevision and status.updateRevision. Image names never matter; only the tags the
two revisions carry, to tell an image change from another template change. `retention` acts:
it rehearses a scale-down on a stand-in StatefulSet of its own that copies demo-db's policy, and
removes it afterwards; demo-db itself is never scaled.
"""

from __future__ import annotations

import uuid

from kubelab.api import ENDPOINTSLICES, PODS, PVCS, SERVICES, STATEFULSETS, Json, Resource
from kubelab.cluster.kind_pins import PAUSE_VERSION
from kubelab.grading import Checks, Context, Verdict
from kubelab.grading.quantity import parse
from kubelab.i18n import _
from kubelab.objects import dig, image_tag, owned_by, port_number, ready_endpoints

checks = Checks("04-statefulset")

CONTROLLERREVISIONS = Resource("apps/v1", "controllerrevisions", "ControllerRevision")

NAME = "demo-db"
REPLICAS = 3
PORT = 5432
PORT_NAME = "tcp"
CLAIM = "data"
STORAGE_CLASS = "fast-ssd"
MIN_STORAGE = "1Gi"
PARTITION = 2
REVISION_LABEL = "controller-revision-hash"
PODS_OF_SET = [f"{NAME}-{i}" for i in range(REPLICAS)]
CLAIMS = [f"{CLAIM}-{pod}" for pod in PODS_OF_SET]
PROBE_LABEL = "kubelab.dev/drill"
PROBE_KIND = "kubelab-retention"  # the rehearsal's stand-in set and claims carry this label
STAND_IN_IMAGE = f"registry.k8s.io/pause:{PAUSE_VERSION}"  # never runs: never scheduled

DOCS = "https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/"
DOCS_HEADLESS = "https://kubernetes.io/docs/concepts/services-networking/service/#headless-services"
DOCS_STORAGE = (
    "https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#volume-claim-templates"
)
DOCS_PARTITION = "https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#partitions"
DOCS_RETENTION = (
    "https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/"
    "#persistentvolumeclaim-retention"
)


def _statefulset(ctx: Context) -> Json:
    return ctx.need(STATEFULSETS, NAME)


def _pods(ctx: Context, sts: Json) -> dict[str, Json]:
    """Return the set's live pods by name (owned by it, not being deleted)."""
    uid = sts["metadata"]["uid"]
    return {
        p["metadata"]["name"]: p
        for p in ctx.list(PODS)
        if owned_by(p, uid) and not dig(p, "metadata", "deletionTimestamp")
    }


def _ready(pod: Json | None) -> bool:
    conditions = dig(pod, "status", "conditions", default=[]) or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _revision(pod: Json | None) -> str:
    return str(dig(pod, "metadata", "labels", REVISION_LABEL, default="") or "")


def _containers(sts: Json) -> list[Json]:
    return list(dig(sts, "spec", "template", "spec", "containers", default=[]) or [])


@checks.check("headless-service", docs=DOCS_HEADLESS)
def headless_service(ctx: Context) -> Verdict:
    """Service demo-db: headless, port 5432 named tcp, selecting exactly the set's pods."""
    v = Verdict()
    svc = ctx.need(SERVICES, NAME)
    cluster_ip = dig(svc, "spec", "clusterIP")
    v.expect(
        cluster_ip == "None",
        _("Service {name} spec.clusterIP: expected None (headless), found {found}").format(
            name=NAME, found=cluster_ip
        ),
        _(
            "Set spec.clusterIP: None when you create the Service (it cannot change afterwards: "
            "delete the Service and apply again). DNS then answers with each pod's own address."
        ),
    )
    sts = ctx.get(STATEFULSETS, NAME)
    containers = _containers(sts) if sts else []
    ports = dig(svc, "spec", "ports", default=[]) or []
    good = [
        p
        for p in ports
        if p.get("port") == PORT
        and p.get("name") == PORT_NAME
        and port_number(p.get("targetPort", PORT), containers) == PORT
    ]
    unnamed = _("(unnamed)")
    seen = ", ".join(
        f"{p.get('name') or unnamed}:{p.get('port')}→{p.get('targetPort')}" for p in ports
    )
    v.expect(
        bool(good),
        _("Service {name} ports: expected {port_name}:{port}→{port}, found {found}").format(
            name=NAME, port_name=PORT_NAME, port=PORT, found=seen or _("none")
        ),
        _(
            "Give the Service a port {port} named {port_name}, sent to the container's port {port}."
        ).format(port=PORT, port_name=PORT_NAME),
    )
    selector = dig(svc, "spec", "selector", default={}) or {}
    selects_all = False
    if sts is None:
        v.expect(
            False,
            _("StatefulSet {name} not found, so the Service's selector cannot be compared").format(
                name=NAME
            ),
            _("Create StatefulSet {name} too (task statefulset).").format(name=NAME),
        )
    else:
        # Compare with the set's pods once they are all there: ordered creation takes a while.
        sts = ctx.wait(
            lambda: ctx.get(STATEFULSETS, NAME) or sts,
            lambda s: _all_ready(ctx, s),
            what=_("the pods of StatefulSet {name}").format(name=NAME),
            stuck=ctx.stuck_in_set(NAME),
        )
        theirs = set(_pods(ctx, sts))
        query = ",".join(f"{k}={val}" for k, val in sorted(selector.items()))
        picked = {p["metadata"]["name"] for p in ctx.list(PODS, labels=query)} if query else set()
        selects_all = v.expect(
            bool(selector) and bool(theirs) and picked == theirs,
            _(
                "Service {name} selector {selector} picks {picked} pods, "
                "{common} of the StatefulSet's {theirs}"
            ).format(
                name=NAME,
                selector=selector or "{}",
                picked=len(picked),
                common=len(picked & theirs),
                theirs=len(theirs),
            ),
            _(
                "Make spec.selector match the pod template's labels (app: {name}), no more, no "
                "less."
            ).format(name=NAME),
        )

    def slices() -> list[Json]:
        return ctx.list(ENDPOINTSLICES, labels=f"kubernetes.io/service-name={NAME}")

    def listed(found: list[Json]) -> bool:
        current = ctx.get(STATEFULSETS, NAME)
        return bool(current) and set(_pods(ctx, current or {})) <= ready_endpoints(found)

    found = slices()
    if selects_all:  # endpoints can only converge when the selector is right
        found = ctx.wait(
            slices, listed, what=_("EndpointSlices of Service {service}").format(service=NAME)
        )
    ready = ready_endpoints(found)
    want = set(_pods(ctx, sts)) if sts else set()
    v.expect(
        bool(want) and want <= ready,
        _(
            "EndpointSlices of Service {name}: expected the set's pods "
            "{pods} as ready endpoints, found {found}"
        ).format(
            name=NAME,
            pods=", ".join(sorted(want)) or _("(none yet)"),
            found=", ".join(sorted(ready)) or _("none"),
        ),
        _(
            "`kubectl get endpointslices -l kubernetes.io/service-name={name} -n {namespace}`:"
            " endpoints appear when the selector matches Ready pods."
        ).format(name=NAME, namespace=ctx.namespace),
    )
    return v.ok(
        _("headless Service {name}: {port_name} {port}, endpoints {endpoints}").format(
            name=NAME, port_name=PORT_NAME, port=PORT, endpoints=", ".join(sorted(ready))
        )
    )


def _observed(sts: Json) -> bool:
    status = sts.get("status") or {}
    return bool(status.get("observedGeneration", 0) >= sts["metadata"].get("generation", 0))


def _all_ready(ctx: Context, sts: Json) -> bool:
    """Tell whether the set has as many Ready pods as it asks for (whatever that number is)."""
    pods = _pods(ctx, sts)
    want = dig(sts, "spec", "replicas", default=1)
    return _observed(sts) and len(pods) == want and all(_ready(p) for p in pods.values())


def _converged(ctx: Context, sts: Json) -> bool:
    pods = _pods(ctx, sts)
    status = sts.get("status") or {}
    return (
        _observed(sts)
        and status.get("readyReplicas", 0) == REPLICAS
        and all(_ready(pods.get(name)) for name in PODS_OF_SET)
    )


@checks.check("statefulset", docs=DOCS)
def statefulset(ctx: Context) -> Verdict:
    """StatefulSet demo-db: serviceName demo-db, 3 replicas of app: demo-db, pods 0-2 Ready."""
    v = Verdict()
    sts = _statefulset(ctx)
    service_name = dig(sts, "spec", "serviceName") or ""
    v.expect(
        service_name == NAME,
        _("StatefulSet {name} spec.serviceName: expected {name}, found {found}").format(
            name=NAME, found=service_name or _("unset")
        ),
        _(
            "Set spec.serviceName: {name}, the headless Service that gives each pod its DNS name "
            "(it cannot change later: delete the StatefulSet, its claims stay, and apply again)."
        ).format(name=NAME),
    )
    replicas = dig(sts, "spec", "replicas")
    app = dig(sts, "spec", "template", "metadata", "labels", "app")
    v.expect(
        replicas == REPLICAS and app == NAME,
        _(
            "StatefulSet {name}: expected {wanted} replicas of pods labelled app: {name}, found "
            "{replicas} of pods labelled app: {app}"
        ).format(name=NAME, wanted=REPLICAS, replicas=replicas, app=app),
        _("Set spec.replicas to {wanted} and label the pod template with app: {name}.").format(
            wanted=REPLICAS, name=NAME
        ),
    )
    if replicas == REPLICAS:  # only a right spec is worth waiting for
        sts = ctx.wait(
            lambda: _statefulset(ctx),
            lambda s: _converged(ctx, s),
            what=_("pods {pods} to be Ready").format(pods=", ".join(PODS_OF_SET)),
            stuck=ctx.stuck_in_set(NAME),
        )
    pods = _pods(ctx, sts)
    missing = [n for n in PODS_OF_SET if n not in pods]
    unready = [n for n in PODS_OF_SET if n in pods and not _ready(pods[n])]
    v.expect(
        replicas == REPLICAS and _converged(ctx, sts),
        _(
            "StatefulSet {name} pods: expected {pods} Ready; "
            "missing: {missing}, not Ready: {unready}"
        ).format(
            name=NAME,
            pods=", ".join(PODS_OF_SET),
            missing=", ".join(missing) or _("none"),
            unready=", ".join(unready) or _("none"),
        ),
        _(
            "Watch `kubectl get pods -l app={name} -n {namespace} -w`: pods start one at a "
            "time, in order; `kubectl describe` the first one that is not Ready to see why."
        ).format(name=NAME, namespace=ctx.namespace),
    )
    return v.ok(
        _("StatefulSet {name}: {pods} Ready, named in DNS as <pod>.{name}.{namespace}.svc").format(
            name=NAME, pods=", ".join(PODS_OF_SET), namespace=ctx.namespace
        )
    )


def _claim_problems(pvc: Json) -> list[str]:
    """Return what differs in a claim from RWO / fast-ssd / at least 1Gi."""
    spec = pvc.get("spec") or {}
    problems = []
    modes = spec.get("accessModes") or []
    if "ReadWriteOnce" not in modes:
        problems.append(_("access modes {modes}").format(modes=modes or _("none")))
    if spec.get("storageClassName") != STORAGE_CLASS:
        problems.append(
            _("storageClassName {found}").format(found=spec.get("storageClassName") or _("unset"))
        )
    size = dig(spec, "resources", "requests", "storage")
    if size is None or (parse(size) or 0) < (parse(MIN_STORAGE) or 0):
        problems.append(_("storage request {size}").format(size=size or _("none")))
    return problems


def _bound(ctx: Context) -> dict[str, Json]:
    """Return the set's claims that exist, by name."""
    found = {}
    for name in CLAIMS:
        pvc = ctx.get(PVCS, name)
        if pvc is not None:
            found[name] = pvc
    return found


@checks.check("storage", docs=DOCS_STORAGE)
def storage(ctx: Context) -> Verdict:
    """Claim template data (RWO, fast-ssd, >= 1Gi) mounted; data-demo-db-0..2 Bound, same spec."""
    v = Verdict()
    sts = _statefulset(ctx)
    templates = dig(sts, "spec", "volumeClaimTemplates", default=[]) or []
    template = next((t for t in templates if dig(t, "metadata", "name") == CLAIM), None)
    names = ", ".join(str(dig(t, "metadata", "name")) for t in templates) or _("none")
    wrong = (
        _claim_problems(template)
        if template
        else [_("no template named {claim}").format(claim=CLAIM)]
    )
    template_ok = v.expect(
        not wrong,
        _(
            "StatefulSet {name} volumeClaimTemplates: expected {claim} with ReadWriteOnce, "
            "storageClassName {storage_class} and at least {size}; found {found}"
        ).format(
            name=NAME,
            claim=CLAIM,
            storage_class=STORAGE_CLASS,
            size=MIN_STORAGE,
            found="; ".join(wrong) if template else _("templates {names}").format(names=names),
        ),
        _(
            "Give spec.volumeClaimTemplates a claim named {claim}: accessModes [ReadWriteOnce], "
            "storageClassName {storage_class}, resources.requests.storage {size} or more "
            "(templates cannot change later: delete the StatefulSet and its claims, then apply)."
        ).format(claim=CLAIM, storage_class=STORAGE_CLASS, size=MIN_STORAGE),
    )
    mounts = [
        m.get("mountPath")
        for c in _containers(sts)
        for m in c.get("volumeMounts") or []
        if m.get("name") == CLAIM
    ]
    v.expect(
        bool(mounts),
        _("StatefulSet {name}: no container mounts the volume {claim}").format(
            name=NAME, claim=CLAIM
        ),
        _(
            "Mount {claim} in the database container (volumeMounts), or its data never reaches "
            "the claim."
        ).format(claim=CLAIM),
    )

    if template_ok and dig(sts, "spec", "replicas") == REPLICAS:
        found = ctx.wait(
            lambda: _bound(ctx),
            lambda f: (
                len(f) == REPLICAS and all(dig(p, "status", "phase") == "Bound" for p in f.values())
            ),
            what=_("claims {claims} to be Bound").format(claims=", ".join(CLAIMS)),
        )
    else:
        found = _bound(ctx)
    issues = []
    for name in CLAIMS:
        pvc = found.get(name)
        if pvc is None:
            issues.append(_("{claim} missing").format(claim=name))
            continue
        phase = dig(pvc, "status", "phase")
        differs = _claim_problems(pvc)
        if phase != "Bound" or differs:
            issues.append(
                (_("{claim} {phase} with {problems}") if differs else _("{claim} {phase}")).format(
                    claim=name, phase=phase, problems=", ".join(differs)
                )
            )
    v.expect(
        not issues,
        _(
            "PersistentVolumeClaims: expected {claims} Bound on {storage_class}; found {found}"
        ).format(claims=", ".join(CLAIMS), storage_class=STORAGE_CLASS, found="; ".join(issues)),
        _(
            "Each pod gets its claim from the template when it is first created, and keeps it: "
            "claims made from an older template stay as they were. Delete those "
            "(`kubectl delete statefulset {name}` first, then the claims) or "
            "`kubelab reset 04-statefulset`, and apply again."
        ).format(name=NAME),
    )
    return v.ok(
        _("claims {claims} Bound on {storage_class}, mounted at {path}").format(
            claims=", ".join(CLAIMS),
            storage_class=STORAGE_CLASS,
            path=mounts[0] if mounts else "?",
        )
    )


def retention_probe(name: str, when_scaled: str) -> Json:
    """Return the stand-in StatefulSet of the retention rehearsal: 2 pods that are never
    scheduled (nothing runs, no image is pulled), a claim template no provisioner serves, and
    the learner's whenScaled policy."""
    labels = {PROBE_LABEL: name}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "labels": {PROBE_LABEL: PROBE_KIND}},
        "spec": {
            "serviceName": name,
            "replicas": 2,
            "podManagementPolicy": "Parallel",  # both pods at once, and removed without waiting
            "selector": {"matchLabels": labels},
            "persistentVolumeClaimRetentionPolicy": {
                "whenScaled": when_scaled,
                # The claims belong to the stand-in, so the garbage collector removes them with
                # it (even one a lagging controller makes again). This leaves whenScaled's
                # effect on a removed pod's claim as it is.
                "whenDeleted": "Delete",
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {PROBE_LABEL: "nowhere"},  # never scheduled
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
                            "resources": {"limits": {"cpu": "10m", "memory": "16Mi"}},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": CLAIM, "mountPath": "/data"}],
                        }
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": CLAIM, "labels": {PROBE_LABEL: PROBE_KIND}},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": f"{PROBE_KIND}-unprovisioned",  # stays Pending
                        "resources": {"requests": {"storage": "1Mi"}},
                    },
                }
            ],
        },
    }


def _remove_probes(ctx: Context) -> None:
    """Delete every retention stand-in and its claims (left over from an interrupted run too)."""
    query = f"{PROBE_LABEL}={PROBE_KIND}"
    for sts in ctx.list(STATEFULSETS, labels=query):
        ctx.api.delete(STATEFULSETS, sts["metadata"]["name"], ctx.namespace)

    def left() -> list[str]:
        pods = [
            p["metadata"]["name"]
            for p in ctx.list(PODS, labels=PROBE_LABEL)
            if p["metadata"]["name"].startswith(PROBE_KIND)
        ]
        claims = [c["metadata"]["name"] for c in ctx.list(PVCS, labels=query)]
        for claim in claims:  # in use by a pod, a claim waits for it (pvc-protection)
            ctx.api.delete(PVCS, claim, ctx.namespace)
        return pods + claims

    # Wait, so that the learner's `kubectl get pvc` right after grading shows only demo-db's.
    ctx.wait(left, lambda names: not names, what=_("the stand-in's pods and claims to go"))


def _fate(claim: Json | None) -> str:
    """Say what a scale-down did to a claim: "kept", or how it is going away."""
    if claim is None:
        return _("deleted")
    if dig(claim, "metadata", "deletionTimestamp"):
        return _("being deleted")
    pods = [
        ref.get("name")
        for ref in dig(claim, "metadata", "ownerReferences", default=[]) or []
        if ref.get("kind") == "Pod"
    ]
    if pods:
        return _("handed to pod {pod} for deletion (an ownerReference to it)").format(pod=pods[0])
    return "kept"  # compared, never shown


def _rehearse_scale_down(ctx: Context, when_scaled: str) -> str:
    """Scale a stand-in set with `when_scaled` from 2 pods to 1; return the removed pod's claim's
    fate, or why the rehearsal could not finish."""
    name = f"{PROBE_KIND}-{uuid.uuid4().hex[:6]}"
    claims = [f"{CLAIM}-{name}-{i}" for i in range(2)]
    ctx.api.create(STATEFULSETS, retention_probe(name, when_scaled), ctx.namespace)

    def standing() -> tuple[list[Json], list[Json]]:
        pods = [ctx.get(PODS, f"{name}-{i}") for i in range(2)]
        return [p for p in pods if p], [c for c in (ctx.get(PVCS, n) for n in claims) if c]

    pods, made = ctx.wait(
        standing,
        lambda seen: len(seen[0]) == len(seen[1]) == 2,
        what=_("{count} stand-in pods").format(count=2),
    )
    if len(pods) < 2 or len(made) < 2:
        return _("not finished: the stand-in set made {pods} of 2 pods, {claims} claims").format(
            pods=len(pods), claims=len(made)
        )
    ctx.api.patch(STATEFULSETS, name, {"spec": {"replicas": 1}}, ctx.namespace)
    removed = f"{name}-1"
    if ctx.wait(lambda: ctx.get(PODS, removed), lambda pod: pod is None, what=removed):
        return _("not finished: pod {pod} was not removed in time").format(pod=removed)
    # The controller hands a claim to its pod (ownerReference) before it deletes the pod, so
    # once the pod is gone the claim's fate is settled.
    return _fate(ctx.get(PVCS, claims[1]))


@checks.check("retention", docs=DOCS_RETENTION)
def retention(ctx: Context) -> Verdict:
    """Claims are kept when the set is scaled down, as a rehearsal with its policy shows.

    The grader makes a stand-in StatefulSet of its own with demo-db's whenScaled policy (2 pods
    that are never scheduled, claims that stay Pending), scales it to 1 and looks at the removed
    pod's claim. It deletes the stand-in and its claims afterwards; demo-db is never touched.
    """
    v = Verdict()
    sts = _statefulset(ctx)
    policy = dig(sts, "spec", "persistentVolumeClaimRetentionPolicy", default={}) or {}
    scaled = str(policy.get("whenScaled", "Retain"))  # the API server's default
    _remove_probes(ctx)
    try:
        fate = _rehearse_scale_down(ctx, scaled)
    finally:
        _remove_probes(ctx)
    v.expect(
        fate == "kept",
        _(
            "StatefulSet {name} persistentVolumeClaimRetentionPolicy.whenScaled: expected Retain, "
            "found {scaled}; scaled from 2 pods to 1 with that policy, a stand-in set's removed "
            "pod's claim was {fate}"
        ).format(name=NAME, scaled=scaled, fate=fate),
        _(
            "Read how persistentVolumeClaimRetentionPolicy decides the fate of the claims of pods "
            "a scale-down removes: keep them (and their data) for when the set grows again."
        ),
    )
    deleted = policy.get("whenDeleted", "Retain")
    return v.ok(
        _(
            "scaled down, a set with demo-db's policy kept the removed pod's claim "
            "(whenScaled {scaled}, whenDeleted {deleted})"
        ).format(scaled=scaled, deleted=deleted)
    )


def _revision_tags(ctx: Context, sts: Json, revision: str) -> str | None:
    """Return the image tags of a revision's pod template, or None if it is not kept."""
    rev = ctx.get(CONTROLLERREVISIONS, revision) if revision else None
    if rev is None or not owned_by(rev, sts["metadata"]["uid"]):
        return None
    containers = dig(rev, "data", "spec", "template", "spec", "containers", default=[]) or []
    return ", ".join(image_tag(str(c.get("image", ""))) for c in containers)


@checks.check("staged-update", docs=DOCS_PARTITION)
def staged_update(ctx: Context) -> Verdict:
    """Partition 2 and a new image tag: demo-db-2 on the update revision, 0 and 1 on the current."""
    v = Verdict()
    # Revisions in status are only current once the controller has seen the latest spec.
    sts = ctx.wait(
        lambda: _statefulset(ctx),
        _observed,
        what=_("the StatefulSet controller to see {name}'s latest spec").format(name=NAME),
    )
    strategy = dig(sts, "spec", "updateStrategy", default={}) or {}
    kind = strategy.get("type", "RollingUpdate")
    partition = dig(strategy, "rollingUpdate", "partition", default=0)
    partition_ok = v.expect(
        kind == "RollingUpdate" and partition == PARTITION,
        _(
            "StatefulSet {name} spec.updateStrategy: expected RollingUpdate with partition "
            "{partition}, found {kind} with partition {found}"
        ).format(name=NAME, partition=PARTITION, kind=kind, found=partition),
        _(
            "Set spec.updateStrategy.rollingUpdate.partition to {partition}: only pods with an "
            "ordinal of {partition} or more take the new revision."
        ).format(partition=PARTITION),
    )
    status = sts.get("status") or {}
    current, update = status.get("currentRevision", ""), status.get("updateRevision", "")
    old_tags, new_tags = _revision_tags(ctx, sts, current), _revision_tags(ctx, sts, update)
    staged = bool(current and update and current != update)
    new_release = v.expect(
        staged and old_tags is not None and new_tags is not None and old_tags != new_tags,
        _(
            "StatefulSet {name} status: expected an update revision with a new image tag next to "
            "the current one; found current {current} (tag {old_tags}), update "
            "{update} (tag {new_tags})"
        ).format(
            name=NAME,
            current=current or _("none"),
            old_tags=old_tags,
            update=update or _("none"),
            new_tags=new_tags,
        )
        if staged
        else _(
            "StatefulSet {name} status: no update is staged (current revision and update "
            "revision are both {current})"
        ).format(name=NAME, current=current or _("unset")),
        _(
            "With the partition in place, change the image tag (e.g. `kubectl set image "
            "statefulset/{name} <container>=<image>:<new tag> -n {namespace}`). A partition "
            "of 0 updates every pod, and the update is no longer staged."
        ).format(name=NAME, namespace=ctx.namespace),
    )

    def pods_now() -> tuple[Json, dict[str, Json]]:
        latest = ctx.get(STATEFULSETS, NAME) or sts
        return latest, _pods(ctx, latest)

    def canary_updated(seen: tuple[Json, dict[str, Json]]) -> bool:
        latest, pods = seen
        wanted = dig(latest, "status", "updateRevision")
        last = pods.get(PODS_OF_SET[-1])
        return bool(wanted) and _revision(last) == wanted and _ready(last)

    seen = pods_now()
    if partition_ok and new_release:  # only then can demo-db-2 converge on the new revision
        seen = ctx.wait(
            pods_now,
            canary_updated,
            what=_("{pod} to update").format(pod=PODS_OF_SET[-1]),
            stuck=ctx.stuck_in_set(NAME),
        )
    latest, pods = seen
    status = latest.get("status") or {}
    current, update = status.get("currentRevision", ""), status.get("updateRevision", "")
    staged = bool(current and update and current != update)
    canary = PODS_OF_SET[-1]
    v.expect(
        staged and canary_updated(seen),
        (
            _("pod {pod}: expected the update revision {update}, Ready; found {found}")
            if _ready(pods.get(canary))
            else _(
                "pod {pod}: expected the update revision {update}, Ready; found {found} (not Ready)"
            )
        ).format(pod=canary, update=update, found=_revision(pods.get(canary)) or _("no pod"))
        if staged
        else _("pod {pod}: no staged revision to run").format(pod=canary),
        _(
            "`kubectl rollout status statefulset/{name} -n {namespace}` waits until the pods "
            "above the partition run the new revision."
        ).format(name=NAME, namespace=ctx.namespace),
    )
    held = PODS_OF_SET[:PARTITION]
    moved = [
        _("{pod} on {revision}").format(pod=n, revision=_revision(pods.get(n)) or _("no pod"))
        for n in held
    ]
    v.expect(
        staged and all(_revision(pods.get(n)) == current for n in held),
        _("pods {pods}: expected the current (old) revision {current}; found {found}").format(
            pods=", ".join(held), current=current, found=", ".join(moved)
        )
        if staged
        else _("pods {pods}: no staged update to hold them back from").format(pods=", ".join(held)),
        _(
            "Pods below the partition keep the old revision; lower the partition only once "
            "{pod} has proved the release."
        ).format(pod=canary),
    )
    return v.ok(
        _(
            "staged update: {pod} on {update} (tag {new_tags}), {held} still on "
            "{current} (tag {old_tags})"
        ).format(
            pod=canary,
            update=update,
            new_tags=new_tags,
            held=", ".join(held),
            current=current,
            old_tags=old_tags,
        )
    )
