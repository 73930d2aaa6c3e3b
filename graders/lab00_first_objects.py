"""Checks for lab 00: the first objects, a Pod, its Service, its configuration, a Job, a CronJob
and a DaemonSet.

Every check reads cluster state, never the learner's YAML. On the sim cluster no container runs:
KWOK marks a pod Running and Ready, and a Job's pods Succeeded, so the Job check grades what the
Job controller then writes (a Complete condition and its count of succeeded pods), which is what
it writes on kind after real containers have exited 0. A kubectl context lives in the learner's
kubeconfig, not in the cluster, so it is not graded; where the objects landed is.
"""

from __future__ import annotations

from kubelab.api import (
    CONFIGMAPS,
    CRONJOBS,
    DAEMONSETS,
    ENDPOINTSLICES,
    JOBS,
    NODES,
    PODS,
    SECRETS,
    SERVICES,
    Json,
)
from kubelab.grading import Checks, Context, Missing, Verdict
from kubelab.grading.stuck import Stuck, why_stuck
from kubelab.i18n import _
from kubelab.objects import dig, owned_by, ready_endpoints

checks = Checks("00-first-objects")

POD = "quote-api"
CONTAINER = "api"
POD_LABELS = {"app": "quotes", "tier": "backend"}
SERVICE = "quotes"
CONFIGMAP, CONFIG_KEY = "quote-config", "LANGUAGE"
SECRET, SECRET_KEY, MOUNT = "quote-token", "token", "/etc/quotes"
JOB, COMPLETIONS, BACKOFF = "warm-cache", 3, 2
CRONJOB, SCHEDULE = "nightly-report", ("30", "2", "*", "*", "*")
DAEMONSET = "quote-agent"

DOCS_POD = "https://kubernetes.io/docs/concepts/workloads/pods/"
DOCS_LABELS = "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/"
DOCS_CONFIG = "https://kubernetes.io/docs/concepts/configuration/configmap/"
DOCS_DOWNWARD = "https://kubernetes.io/docs/concepts/workloads/pods/downward-api/#available-fields"
DOCS_JOB = "https://kubernetes.io/docs/concepts/workloads/controllers/job/"
DOCS_CRONJOB = "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/"
DOCS_DAEMONSET = "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"

# What the DaemonSet controller adds to every pod it makes (kubernetes.io DaemonSet docs,
# "Taints and tolerations"): a node with only these taints still gets a daemon pod.
DAEMON_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)


def _live(pods: list[Json]) -> list[Json]:
    return [p for p in pods if not dig(p, "metadata", "deletionTimestamp")]


def _ready(pod: Json | None) -> bool:
    if not pod or dig(pod, "status", "phase") != "Running":
        return False
    conditions = dig(pod, "status", "conditions", default=None) or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _container(pod: Json) -> Json:
    containers = dig(pod, "spec", "containers", default=None) or []
    for c in containers:
        if c.get("name") == CONTAINER:
            return dict(c)
    names = ", ".join(c.get("name", "?") for c in containers) or _("none")
    raise Missing(
        _("Pod {pod} has no container named {container} (containers: {names})").format(
            pod=POD, container=CONTAINER, names=names
        ),
        _(
            "Name the container `{container}`; a Pod's containers cannot be renamed in place: "
            "`kubectl delete pod {pod}`, then apply again."
        ).format(container=CONTAINER, pod=POD),
    )


def _matches(selector: dict[str, str], labels: dict[str, str] | None) -> bool:
    """Tell whether a Service's equality selector picks an object with these labels."""
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


@checks.check("pod", docs=DOCS_POD)
def pod(ctx: Context) -> Verdict:
    """Pod quote-api: labelled app: quotes, tier: backend; container api on 8080; Running."""
    v = Verdict()
    found = ctx.need(PODS, POD)
    labels = dig(found, "metadata", "labels", default=None) or {}
    wanted = ", ".join(f"{k}: {val}" for k, val in POD_LABELS.items())
    v.expect(
        all(labels.get(k) == val for k, val in POD_LABELS.items()),
        _("Pod {pod} labels: expected {wanted}, found {found}").format(
            pod=POD,
            wanted=wanted,
            found=", ".join(f"{k}: {val}" for k, val in sorted(labels.items())) or _("none"),
        ),
        _(
            "Add the labels under metadata.labels; labels can change on a live pod "
            "(`kubectl label pod {pod} ...`) or by applying again."
        ).format(pod=POD),
    )
    ports = [p.get("containerPort") for p in _container(found).get("ports") or []]
    v.expect(
        8080 in ports,
        _("container {container} ports: expected containerPort 8080, found {ports}").format(
            container=CONTAINER, ports=ports or _("none")
        ),
        _(
            "Declare containerPort 8080 (the app listens there). A Pod's containers cannot change "
            "in place: `kubectl delete pod {pod}`, then apply again."
        ).format(pod=POD),
    )
    found = ctx.wait(
        lambda: ctx.get(PODS, POD) or found,
        _ready,
        what=_("Pod {pod} to be Running and Ready").format(pod=POD),
        stuck=lambda: why_stuck(ctx.get(PODS, POD) or found),
    )
    v.expect(
        _ready(found),
        _("Pod {pod}: expected Running and Ready, found phase {phase}").format(
            pod=POD, phase=dig(found, "status", "phase")
        ),
        _(
            "`kubectl describe pod {pod} -n {namespace}` shows what it waits for "
            "(its Events are at the bottom)."
        ).format(pod=POD, namespace=ctx.namespace),
    )
    return v.ok(
        _("Pod {pod}: {labels}, port 8080, Running and Ready").format(pod=POD, labels=wanted)
    )


@checks.check("selector", docs=DOCS_LABELS)
def selector(ctx: Context) -> Verdict:
    """Service quotes: its selector picks Pod quote-api and no other pod; one ready endpoint."""
    v = Verdict()
    svc = ctx.need(SERVICES, SERVICE)
    chosen = dig(svc, "spec", "selector", default=None) or {}
    pods = _live(ctx.list(PODS))
    picked = sorted(
        p["metadata"]["name"] for p in pods if _matches(chosen, p["metadata"].get("labels"))
    )
    # The DaemonSet's pods carry app: quotes as well; judge against its template too, so the
    # answer does not depend on whether the DaemonSet is running yet.
    agent = ctx.get(DAEMONSETS, DAEMONSET)
    agent_labels = dig(agent or {}, "spec", "template", "metadata", "labels", default=None)
    also_agent = agent is not None and _matches(chosen, agent_labels)
    exact = picked == [POD] and not also_agent
    shown = ", ".join(f"{k}={val}" for k, val in sorted(chosen.items())) or _("none")
    picks = ", ".join(picked) or _("no pod")
    v.expect(
        exact,
        (
            _(
                "Service {service} selector {selector} picks {pods} and every pod of DaemonSet "
                "{daemonset}; expected Pod {pod} alone"
            )
            if also_agent
            else _("Service {service} selector {selector} picks {pods}; expected Pod {pod} alone")
        ).format(service=SERVICE, selector=shown, pods=picks, daemonset=DAEMONSET, pod=POD),
        _(
            "A Service sends traffic to every Ready pod whose labels include all of its "
            "selector's: compare `kubectl get pods --show-labels -n {namespace}` with "
            "spec.selector."
        ).format(namespace=ctx.namespace),
    )

    def slices() -> list[Json]:
        return ctx.list(ENDPOINTSLICES, labels=f"kubernetes.io/service-name={SERVICE}")

    found = slices()
    if exact:  # endpoints can only converge when the selector is right
        found = ctx.wait(
            slices,
            lambda s: ready_endpoints(s) == {POD},
            what=_("EndpointSlices of Service {service}").format(service=SERVICE),
        )
    ready = sorted(ready_endpoints(found))
    v.expect(
        ready == [POD],
        _(
            "EndpointSlices of Service {service}: expected one ready endpoint, {pod}, found {found}"
        ).format(service=SERVICE, pod=POD, found=", ".join(ready) or _("none")),
        _(
            "`kubectl get endpointslices -l kubernetes.io/service-name={service} -n "
            "{namespace}`: a pod is listed when the selector picks it, ready when it is Ready."
        ).format(service=SERVICE, namespace=ctx.namespace),
    )
    return v.ok(
        _("Service {service}: selector {selector} picks {pod} alone, 1 ready endpoint").format(
            service=SERVICE, selector=shown, pod=POD
        )
    )


def _has_key(ctx: Context, res_kind: str, name: str, key: str) -> tuple[bool, str]:
    obj = ctx.get(CONFIGMAPS if res_kind == "ConfigMap" else SECRETS, name)
    if obj is None:
        return False, _("{kind} {name} not found in namespace {namespace}").format(
            kind=res_kind, name=name, namespace=ctx.namespace
        )
    keys = set(obj.get("data") or {}) | set(obj.get("stringData") or {})
    if res_kind == "ConfigMap":
        keys |= set(obj.get("binaryData") or {})
    if key not in keys:
        return (
            False,
            _("{kind} {name} has no key {key} (keys: {keys})").format(
                kind=res_kind, name=name, key=key, keys=", ".join(sorted(keys)) or _("none")
            ),
        )
    return True, ""


def _env_from_configmap(c: Json) -> bool:
    for e in c.get("env") or []:
        ref = dig(e, "valueFrom", "configMapKeyRef", default=None)
        if e.get("name") == CONFIG_KEY and ref and ref.get("name") == CONFIGMAP:
            return bool(ref.get("key") == CONFIG_KEY)
    return any(
        dig(src, "configMapRef", "name") == CONFIGMAP and not src.get("prefix")
        for src in c.get("envFrom") or []
    )


def _secret_mount(pod_obj: Json, c: Json) -> str | None:
    """Return where container `c` mounts a volume of Secret quote-token, or None."""
    volumes = {
        vol.get("name"): vol
        for vol in dig(pod_obj, "spec", "volumes", default=None) or []
        if dig(vol, "secret", "secretName") == SECRET
    }
    for m in c.get("volumeMounts") or []:
        if m.get("name") in volumes:
            return str(m.get("mountPath"))
    return None


@checks.check("config", docs=DOCS_CONFIG)
def config(ctx: Context) -> Verdict:
    """Pod quote-api: env LANGUAGE from ConfigMap quote-config, Secret quote-token mounted."""
    v = Verdict()
    found = ctx.need(PODS, POD)
    c = _container(found)
    has_cm, why_cm = _has_key(ctx, "ConfigMap", CONFIGMAP, CONFIG_KEY)
    env_ok = _env_from_configmap(c)
    v.expect(
        env_ok and has_cm,
        _("container {container}: expected env {key} from ConfigMap {configmap}, {why}").format(
            container=CONTAINER,
            key=CONFIG_KEY,
            configmap=CONFIGMAP,
            why=why_cm if env_ok else _("found no such reference in its env or envFrom"),
        ),
        _(
            "Give ConfigMap {configmap} a key {key} and refer to it with env.valueFrom."
            "configMapKeyRef (or envFrom.configMapRef). Env is fixed when a container starts: "
            "`kubectl delete pod {pod}` and apply again."
        ).format(configmap=CONFIGMAP, key=CONFIG_KEY, pod=POD),
    )
    has_secret, why_secret = _has_key(ctx, "Secret", SECRET, SECRET_KEY)
    mounted = _secret_mount(found, c)
    v.expect(
        mounted == MOUNT and has_secret,
        _("container {container}: expected Secret {secret} mounted at {path}, {why}").format(
            container=CONTAINER,
            secret=SECRET,
            path=MOUNT,
            why=(
                why_secret
                if mounted == MOUNT
                else _("found it mounted at {path}").format(path=mounted)
                if mounted
                else _("found no volume of that Secret mounted")
            ),
        ),
        _(
            "Add a volume with secret.secretName {secret} under spec.volumes and a volumeMount at "
            "{path} in the container; Secret {secret} needs a key {key} "
            "(`kubectl create secret generic {secret} --from-literal={key}=...`)."
        ).format(secret=SECRET, path=MOUNT, key=SECRET_KEY),
    )
    return v.ok(
        _("Pod {pod}: {key} from ConfigMap {configmap}, Secret {secret} at {path}").format(
            pod=POD, key=CONFIG_KEY, configmap=CONFIGMAP, secret=SECRET, path=MOUNT
        )
    )


@checks.check("namespace", docs=DOCS_DOWNWARD)
def namespace(ctx: Context) -> Verdict:
    """Pod quote-api (in the lab namespace) reads its namespace from the downward API."""
    v = Verdict()
    c = _container(ctx.need(PODS, POD))
    env = {e.get("name"): e for e in c.get("env") or []}
    entry = env.get("POD_NAMESPACE")
    field = dig(entry or {}, "valueFrom", "fieldRef", "fieldPath")
    observed = (
        _("no POD_NAMESPACE")
        if entry is None
        else _("fieldRef {field}").format(field=field)
        if field
        else _("the fixed value {value}").format(value=repr(entry.get("value")))
        if "value" in entry
        else _("another source")
    )
    v.expect(
        field == "metadata.namespace",
        _(
            "container {container} env POD_NAMESPACE: expected fieldRef metadata.namespace, "
            "found {found}"
        ).format(container=CONTAINER, found=observed),
        _(
            "Let the pod learn where it runs with env.valueFrom.fieldRef.fieldPath: "
            "metadata.namespace, so the same manifest works in any namespace. Env is fixed at "
            "start: `kubectl delete pod {pod}` and apply again."
        ).format(pod=POD),
    )
    return v.ok(
        _("Pod {pod} in namespace {namespace} reads it from the downward API").format(
            pod=POD, namespace=ctx.namespace
        )
    )


def _condition(job: Json, kind: str) -> bool:
    conditions = dig(job, "status", "conditions", default=None) or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _job_pods(ctx: Context, job: Json) -> list[Json]:
    uid = job["metadata"]["uid"]
    return ctx.list(PODS, labels=f"batch.kubernetes.io/controller-uid={uid}")


def _first_stuck(pods: list[Json]) -> Stuck | None:
    """Return why the first of `pods` that will not start is stuck, or None."""
    return next((s for p in _live(pods) if (s := why_stuck(p)) is not None), None)


@checks.check("job", docs=DOCS_JOB)
def job(ctx: Context) -> Verdict:
    """Job warm-cache: 3 completions, backoffLimit at most 2; Complete with 3 succeeded."""
    v = Verdict()
    found = ctx.need(JOBS, JOB)
    completions = dig(found, "spec", "completions")
    backoff = dig(found, "spec", "backoffLimit")
    right = completions == COMPLETIONS and backoff is not None and backoff <= BACKOFF
    v.expect(
        right,
        _(
            "Job {job}: expected completions {completions} and backoffLimit at most {backoff}, "
            "found completions {found_completions} and backoffLimit {found_backoff}"
        ).format(
            job=JOB,
            completions=COMPLETIONS,
            backoff=BACKOFF,
            found_completions=completions,
            found_backoff=backoff,
        ),
        _(
            "Set spec.completions to {completions} and spec.backoffLimit to {backoff} or less (the "
            "default, 6, retries a broken job for minutes). A Job's pod template cannot change: "
            "`kubectl delete job {job}` and apply again."
        ).format(completions=COMPLETIONS, backoff=BACKOFF, job=JOB),
    )

    def stuck() -> Stuck | None:
        return _first_stuck(_job_pods(ctx, found))

    if right:
        found = ctx.wait(
            lambda: ctx.get(JOBS, JOB) or found,
            lambda j: _condition(j, "Complete") or _condition(j, "Failed"),
            what=_("Job {job} to complete").format(job=JOB),
            stuck=stuck,
        )
    succeeded = dig(found, "status", "succeeded", default=0) or 0
    failed = dig(found, "status", "failed", default=0) or 0
    v.expect(
        _condition(found, "Complete") and succeeded >= COMPLETIONS,
        (
            _(
                "Job {job} status: expected Complete with {completions} succeeded pods, found "
                "{succeeded} succeeded, {failed} failed, condition Failed"
            )
            if _condition(found, "Failed")
            else _(
                "Job {job} status: expected Complete with {completions} succeeded pods, found "
                "{succeeded} succeeded, {failed} failed"
            )
        ).format(job=JOB, completions=COMPLETIONS, succeeded=succeeded, failed=failed),
        _(
            "`kubectl describe job {job} -n {namespace}` and `kubectl logs job/{job} -n "
            "{namespace}` show how its pods ended."
        ).format(job=JOB, namespace=ctx.namespace),
    )
    return v.ok(
        _(
            "Job {job}: Complete, {succeeded}/{completions} succeeded, backoffLimit {backoff}"
        ).format(job=JOB, succeeded=succeeded, completions=COMPLETIONS, backoff=backoff)
    )


def _normal(field: str) -> str:
    return str(int(field)) if field.isdigit() else field


@checks.check("cronjob", docs=DOCS_CRONJOB)
def cronjob(ctx: Context) -> Verdict:
    """CronJob nightly-report: every day at 02:30, never two runs at once."""
    v = Verdict()
    found = ctx.need(CRONJOBS, CRONJOB)
    schedule = str(dig(found, "spec", "schedule", default=""))
    fields = tuple(_normal(f) for f in schedule.split())
    v.expect(
        fields == SCHEDULE,
        _("CronJob {cronjob} schedule: expected every day at 02:30, found {schedule}").format(
            cronjob=CRONJOB, schedule=repr(schedule)
        ),
        _(
            "A schedule has five fields: minute, hour, day of month, month, day of week; `*` means "
            "any."
        ),
    )
    policy = dig(found, "spec", "concurrencyPolicy", default="Allow")
    v.expect(
        policy == "Forbid",
        _("CronJob {cronjob} concurrencyPolicy: expected Forbid, found {policy}").format(
            cronjob=CRONJOB, policy=policy
        ),
        _(
            "Set spec.concurrencyPolicy so that a run still going when the next is due makes the "
            "next one skip, not start a second report."
        ),
    )
    return v.ok(
        _("CronJob {cronjob}: {schedule}, concurrencyPolicy Forbid").format(
            cronjob=CRONJOB, schedule=repr(schedule)
        )
    )


def _tolerated(taint: Json, tolerations: list[Json]) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t.get("key") == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def _eligible(node: Json, template: Json) -> bool:
    """Tell whether the DaemonSet's pods belong on `node`: its nodeSelector and taints allow."""
    wanted = dig(template, "spec", "nodeSelector", default=None) or {}
    if not all((node["metadata"].get("labels") or {}).get(k) == val for k, val in wanted.items()):
        return False
    tolerations = [*(dig(template, "spec", "tolerations", default=None) or []), *DAEMON_TOLERATIONS]
    return all(
        _tolerated(t, tolerations)
        for t in dig(node, "spec", "taints", default=None) or []
        if t.get("effect") in ("NoSchedule", "NoExecute")
    )


@checks.check("daemonset", docs=DOCS_DAEMONSET)
def daemonset(ctx: Context) -> Verdict:
    """DaemonSet quote-agent: scheduled on every node that allows it, a Ready pod on each."""
    v = Verdict()
    ds = ctx.need(DAEMONSETS, DAEMONSET)
    # Nodes every DaemonSet pod may run on: taints no pod tolerates and labels no pod selects
    # (another lab's drill node, a cordoned-and-tainted node) are left out.
    plain: Json = {"spec": {}}
    nodes = sorted(n["metadata"]["name"] for n in ctx.list(NODES) if _eligible(n, plain))
    uid = ds["metadata"]["uid"]

    def state() -> tuple[Json, dict[str, bool]]:
        current = ctx.get(DAEMONSETS, DAEMONSET) or ds
        pods = [p for p in _live(ctx.list(PODS)) if owned_by(p, uid)]
        on: dict[str, bool] = {}
        for p in pods:
            node = dig(p, "spec", "nodeName")
            if node:
                on[node] = on.get(node, False) or _ready(p)
        return current, on

    def stuck() -> Stuck | None:
        return _first_stuck([p for p in ctx.list(PODS) if owned_by(p, uid)])

    def settled(seen: tuple[Json, dict[str, bool]]) -> bool:
        current, on = seen
        st = current.get("status") or {}
        return (
            st.get("observedGeneration", 0) >= current["metadata"].get("generation", 0)
            and st.get("numberReady", 0) == st.get("desiredNumberScheduled", -1)
            and all(on.get(n) for n in nodes)
        )

    template = dig(ds, "spec", "template", default={})
    by_name = {n["metadata"]["name"]: n for n in ctx.list(NODES)}
    left_out = [n for n in nodes if n in by_name and not _eligible(by_name[n], template)]
    current, on = state()
    if not left_out:  # only a template that fits every node is worth waiting for
        current, on = ctx.wait(
            state,
            settled,
            what=_("DaemonSet {daemonset}'s pods").format(daemonset=DAEMONSET),
            stuck=stuck,
        )
    desired = dig(current, "status", "desiredNumberScheduled", default=0)
    v.expect(
        not left_out and desired >= len(nodes),
        (
            _(
                "DaemonSet {daemonset}: expected to be scheduled on all {count} nodes "
                "({nodes}), it wants {desired}; its pod template keeps it off {left_out}"
            )
            if left_out
            else _(
                "DaemonSet {daemonset}: expected to be scheduled on all {count} nodes "
                "({nodes}), it wants {desired}"
            )
        ).format(
            daemonset=DAEMONSET,
            count=len(nodes),
            nodes=", ".join(nodes),
            desired=desired,
            left_out=", ".join(left_out),
        ),
        _(
            "A node agent belongs on every node: drop the nodeSelector (or affinity) that narrows "
            "it; `kubectl get nodes --show-labels` shows the labels a selector would need."
        ),
    )
    missing = [n for n in nodes if not on.get(n)]
    v.expect(
        not missing,
        _(
            "DaemonSet {daemonset}: expected a Ready pod on each of {nodes}, none on {missing}"
        ).format(daemonset=DAEMONSET, nodes=", ".join(nodes), missing=", ".join(missing)),
        _(
            "`kubectl get pods -o wide -n {namespace}` shows which node each pod is on; "
            "`kubectl describe daemonset {daemonset}` shows why one is missing."
        ).format(namespace=ctx.namespace, daemonset=DAEMONSET),
    )
    return v.ok(
        _("DaemonSet {daemonset}: a Ready pod on each of {count} nodes").format(
            daemonset=DAEMONSET, count=len(nodes)
        )
    )
