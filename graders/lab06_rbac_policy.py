"""Checks for lab 06: least-privilege RBAC, NetworkPolicies, LimitRange, quota, Pod Security.

Every check asks the API server rather than reading the learner's YAML: RBAC through
SubjectAccessReviews (what may app-sa do?), admission through server-side dry runs (what does a pod
without resources come back as? is an oversized or privileged pod refused?). NetworkPolicies are
judged by their meaning (`kubelab.netpol`: who may reach whom), because the sim cluster stores them
without enforcing them; on kind the allow-rules check also opens real connections with short-lived
probe pods, and deletes them.

The probe endpoints are hypothetical pods: demo-web, a ``role: frontend`` pod and a
``role: batch`` bystander in the lab namespace, a frontend and another pod in a namespace that
need not exist, the cluster DNS as a ``k8s-app: kube-dns`` pod in ``kube-system`` (the sim cluster
runs no DNS pods), and two addresses on the internet. Only the lab namespace's policies count:
the others are not the learner's.
"""

from __future__ import annotations

import math
import uuid
from decimal import Decimal

from kubelab import netpol, wait
from kubelab.api import (
    DEPLOYMENTS,
    LIMITRANGES,
    NAMESPACES,
    NETWORKPOLICIES,
    PODS,
    RESOURCEQUOTAS,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
    SUBJECTACCESSREVIEWS,
    ApiError,
    Json,
    Resource,
)
from kubelab.fence import namespace_fence
from kubelab.grading import Checks, Context, Verdict
from kubelab.grading.quantity import parse
from kubelab.i18n import _
from kubelab.objects import dig

checks = Checks("06-rbac-policy")

SA, ROLE, BINDING, SECRET = "app-sa", "app-reader", "app-reader-binding", "app-config"
OTHER_SECRET = "db-admin"
WEB, FRONTEND = "demo-web", "frontend"
ELSEWHERE = "kubelab-elsewhere"  # a namespace name for hypothetical pods; it need not exist
# kind only: a real image with `nc` (Debian's busybox-static, built by cluster/kind_build.py)
PROBE_IMAGE = "kubelab/busybox-debian:1.37"
DOCS_SA = "https://kubernetes.io/docs/concepts/security/service-accounts/"
DOCS_RBAC = "https://kubernetes.io/docs/reference/access-authn-authz/rbac/"
DOCS_NETPOL = "https://kubernetes.io/docs/concepts/services-networking/network-policies/"
DOCS_LIMITS = "https://kubernetes.io/docs/concepts/policy/limit-range/"
DOCS_QUOTA = "https://kubernetes.io/docs/concepts/policy/resource-quotas/"
DOCS_PSA = "https://kubernetes.io/docs/concepts/security/pod-security-admission/"


def _template(ctx: Context, name: str) -> Json | None:
    dep = ctx.get(DEPLOYMENTS, name)
    return dig(dep, "spec", "template") if dep else None


# --- service-account -------------------------------------------------------------------------


@checks.check("service-account", docs=DOCS_SA)
def service_account(ctx: Context) -> Verdict:
    """ServiceAccount app-sa mounts no token; demo-web's pods run as app-sa, still without one."""
    v = Verdict()
    sa = ctx.need(SERVICEACCOUNTS, SA)
    automount = sa.get("automountServiceAccountToken")
    v.expect(
        automount is False,
        _("ServiceAccount {sa} automountServiceAccountToken: expected false, found {found}").format(
            sa=SA, found=_("unset (true)") if automount is None else automount
        ),
        _(
            "Set automountServiceAccountToken: false on the ServiceAccount: an app that never "
            "calls the API server should not carry a token an attacker could use."
        ),
    )
    template = _template(ctx, WEB)
    account = dig(template, "spec", "serviceAccountName", default="default")
    pod_automount = dig(template, "spec", "automountServiceAccountToken")
    v.expect(
        template is not None and account == SA and pod_automount is not True,
        _("Deployment {name} not found").format(name=WEB)
        if template is None
        else (
            _(
                "Deployment {name} pods: expected serviceAccountName {sa} without a token, found "
                "{account} with automountServiceAccountToken: true"
            )
            if pod_automount
            else _(
                "Deployment {name} pods: expected serviceAccountName {sa} without a token, found "
                "{account}"
            )
        ).format(name=WEB, sa=SA, account=account),
        _(
            "Set spec.template.spec.serviceAccountName: {sa} in Deployment {name}, and do not "
            "turn the token back on in the pod spec."
        ).format(sa=SA, name=WEB),
    )
    return v.ok(
        _("ServiceAccount {sa}: no token mounted; {name} runs as {sa}").format(sa=SA, name=WEB)
    )


# --- least-privilege -------------------------------------------------------------------------


def _can(
    ctx: Context,
    verb: str,
    resource: str,
    *,
    name: str | None = None,
    namespace: str | None = None,
) -> bool:
    """Ask the API server (a SubjectAccessReview) whether app-sa may do this."""
    ns = namespace or ctx.namespace
    attributes = {"namespace": ns, "verb": verb, "group": "", "resource": resource}
    if name:
        attributes["name"] = name
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{ctx.namespace}:{SA}",
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{ctx.namespace}",
                "system:authenticated",
            ],
            "resourceAttributes": attributes,
        },
    }
    status = ctx.api.create(SUBJECTACCESSREVIEWS, review).get("status") or {}
    return bool(status.get("allowed"))


def _ask(verb: str, resource: str, name: str | None, namespace: str | None) -> str:
    what = f"{resource}/{name}" if name else resource
    if namespace:
        return _("{verb} {what} in {namespace}").format(verb=verb, what=what, namespace=namespace)
    return f"{verb} {what}"


@checks.check("least-privilege", docs=DOCS_RBAC)
def least_privilege(ctx: Context) -> Verdict:
    """Role app-reader bound to app-sa: get/list ConfigMaps and get Secret app-config, no more."""
    v = Verdict()
    ctx.need(ROLES, ROLE)
    binding = ctx.need(ROLEBINDINGS, BINDING)
    ref = binding.get("roleRef") or {}
    subjects = binding.get("subjects") or []
    bound = any(
        s.get("kind") == "ServiceAccount"
        and s.get("name") == SA
        and s.get("namespace", ctx.namespace) == ctx.namespace
        for s in subjects
    )
    seen = ", ".join(
        f"{s.get('kind')} {s.get('name')}" + (f" ({s['namespace']})" if s.get("namespace") else "")
        for s in subjects
    )
    v.expect(
        ref.get("kind") == "Role" and ref.get("name") == ROLE and bound,
        _(
            "RoleBinding {binding}: expected Role {role} bound to ServiceAccount {sa} of "
            "{namespace}, found {kind} {name} bound to {seen}"
        ).format(
            binding=BINDING,
            role=ROLE,
            sa=SA,
            namespace=ctx.namespace,
            kind=ref.get("kind"),
            name=ref.get("name"),
            seen=seen or _("nobody"),
        ),
        _(
            "roleRef must name the Role {role}; the subject is kind ServiceAccount, name {sa}, "
            "and (if you give one) namespace {namespace}, not another namespace."
        ).format(role=ROLE, sa=SA, namespace=ctx.namespace),
    )
    needed = [("get", "configmaps", None), ("list", "configmaps", None), ("get", "secrets", SECRET)]
    refused = []
    for verb, resource, name in needed:
        if not _can(ctx, verb, resource, name=name):
            refused.append(_ask(verb, resource, name, None))
    v.expect(
        not refused,
        _("app-sa should be allowed to {refused}, and is not").format(refused=", ".join(refused)),
        _(
            "Give Role {role} get and list on configmaps, and get on secrets restricted with "
            "resourceNames: [{secret}]; check with `kubectl auth can-i --list "
            "--as=system:serviceaccount:{namespace}:{sa} -n {namespace}`."
        ).format(role=ROLE, secret=SECRET, namespace=ctx.namespace, sa=SA),
    )
    too_much_secrets = [
        _ask(verb, "secrets", name, None)
        for verb, name in (("list", None), ("watch", None), ("get", OTHER_SECRET))
        if _can(ctx, verb, "secrets", name=name)
    ]
    v.expect(
        not too_much_secrets,
        _("app-sa may also {found}: it should read the Secret {secret} only").format(
            found=", ".join(too_much_secrets), secret=SECRET
        ),
        _(
            "Listing or watching secrets returns every Secret's data, and a get without "
            "resourceNames reaches them all: grant get on secrets with resourceNames: [{secret}]."
        ).format(secret=SECRET),
    )
    others = [
        ("delete", "configmaps", None, None),
        ("create", "pods", None, None),
        ("get", "configmaps", None, "default"),
        ("list", "configmaps", None, "kube-system"),
    ]
    too_much = [
        _ask(verb, resource, name, ns)
        for verb, resource, name, ns in others
        if _can(ctx, verb, resource, name=name, namespace=ns)
    ]
    v.expect(
        not too_much,
        _("app-sa may also {found}: it needs only reads in {namespace}").format(
            found=", ".join(too_much), namespace=ctx.namespace
        ),
        _(
            "Grant only get and list (no writes), in a Role and RoleBinding of this namespace: a "
            "ClusterRoleBinding, or a binding elsewhere, reaches other namespaces."
        ),
    )
    return v.ok(
        _(
            "{sa} may get/list configmaps and get secret {secret} (via {binding}); it may not "
            "list or watch secrets, read another Secret, write, or read other namespaces"
        ).format(sa=SA, secret=SECRET, binding=BINDING)
    )


# --- default-deny and allow-rules ------------------------------------------------------------


def _namespace_labels(ctx: Context, name: str) -> dict[str, str]:
    try:
        ns = ctx.api.get(NAMESPACES, name)
    except ApiError:  # confined credentials may not read Namespaces: the name label is enough
        ns = None
    return dict(dig(ns, "metadata", "labels", default={}) or {})


def _policies(ctx: Context) -> list[Json]:
    return [p for p in ctx.list(NETWORKPOLICIES) if not dig(p, "metadata", "deletionTimestamp")]


def probes(ctx: Context) -> dict[str, netpol.Endpoint]:
    """Return the hypothetical endpoints the network checks ask about, by role."""
    ns = ctx.namespace
    template = _template(ctx, WEB)
    web_ports = netpol.pod_from_json({"spec": dig(template, "spec", default={})}).ports
    return {
        "web": netpol.Pod(
            ns, {"app": WEB}, WEB, web_ports or (netpol.ContainerPort(8080, "http"),)
        ),
        "frontend": netpol.Pod(ns, {"role": FRONTEND}, FRONTEND),
        "other": netpol.Pod(ns, {"role": "batch"}, _("a batch pod")),
        "far-frontend": netpol.Pod(
            ELSEWHERE,
            {"role": FRONTEND},
            _("a frontend in {namespace}").format(namespace=ELSEWHERE),
        ),
        "far-pod": netpol.Pod(
            ELSEWHERE, {"app": "api"}, _("a pod in {namespace}").format(namespace=ELSEWHERE)
        ),
        "dns": netpol.Pod("kube-system", {"k8s-app": "kube-dns"}, "kube-dns"),
        "internet": netpol.External(
            "203.0.113.10", _("the internet ({ip})").format(ip="203.0.113.10")
        ),
        "public-dns": netpol.External(
            "8.8.8.8", _("a public DNS server ({ip})").format(ip="8.8.8.8")
        ),
    }


@checks.check("default-deny", docs=DOCS_NETPOL)
def default_deny(ctx: Context) -> Verdict:
    """NetworkPolicy default-deny selects every pod, allows nothing, for Ingress and Egress."""
    v = Verdict()
    policy = ctx.need(NETWORKPOLICIES, "default-deny")
    spec = policy.get("spec") or {}
    selector = spec.get("podSelector") or {}
    selects_all = not (selector.get("matchLabels") or selector.get("matchExpressions"))
    rules = [k for k in ("ingress", "egress") if spec.get(k)]
    v.expect(
        selects_all and not rules,
        (
            _(
                "NetworkPolicy default-deny: expected podSelector {{}} and no rules, found "
                "podSelector {selector} and {rules} rules"
            )
            if rules
            else _(
                "NetworkPolicy default-deny: expected podSelector {{}} and no rules, found "
                "podSelector {selector}"
            )
        ).format(selector=selector or "{}", rules=" and ".join(rules)),
        _(
            "An empty podSelector ({{}}) selects every pod of the namespace; leave out ingress "
            "and egress rules, so the policy isolates pods without allowing anything."
        ).format(),
    )
    types = netpol.policy_types(policy)
    v.expect(
        netpol.INGRESS in types and netpol.EGRESS in types,
        _(
            "NetworkPolicy default-deny policyTypes: expected Ingress and Egress, found {found}"
        ).format(found=", ".join(types)),
        _(
            "List both Ingress and Egress in policyTypes: without Egress, pods may still connect "
            "anywhere (a policy with no egress rules defaults to Ingress only)."
        ),
    )
    return v.ok(_("NetworkPolicy default-deny isolates every pod for Ingress and Egress"))


Question = tuple[str, str, int, str]  # (source role, destination role, port, protocol)


def _wrong(
    policies: netpol.Policies,
    ends: dict[str, netpol.Endpoint],
    cases: list[Question],
    want: bool,
    *,
    ingress_only: bool = False,
) -> list[str]:
    """Return the cases whose answer is not `want`, described for a learner.

    With `ingress_only`, judge the destination's side alone: demo-web must refuse a stranger
    even when the stranger's own egress happens to be closed today.
    """
    wrong = []
    for src, dst, port, proto in cases:
        decision = policies.decide(ends[src], ends[dst], port, proto)
        answer = decision.ingress_ok if ingress_only else decision.allowed
        if answer != want:
            if ingress_only:
                wrong.append(
                    _("{src} → {proto} {port} is admitted by {dst} ({why})").format(
                        src=ends[src], proto=proto, port=port, dst=ends[dst], why=decision.ingress
                    )
                )
            else:
                wrong.append(
                    _("{src} → {dst} {proto} {port} is {decision}").format(
                        src=ends[src], dst=ends[dst], proto=proto, port=port, decision=decision
                    )
                )
    return wrong


@checks.check("allow-rules", docs=DOCS_NETPOL)
def allow_rules(ctx: Context) -> Verdict:
    """frontend → demo-web on TCP 8080 only; nothing else reaches demo-web; DNS for every pod.

    On kind it also opens real connections from probe pods (and deletes them).
    """
    v = Verdict()
    policies = netpol.Policies(
        _policies(ctx),
        {
            ctx.namespace: _namespace_labels(ctx, ctx.namespace),
            "kube-system": _namespace_labels(ctx, "kube-system"),
            ELSEWHERE: {},
        },
    )
    ends = probes(ctx)
    local = ("web", "frontend", "other")

    def expect(
        allowed: list[Question],
        denied: list[Question],
        problem: str,
        hint: str,
        *,
        ingress_only: bool = False,
    ) -> None:
        wrong = _wrong(policies, ends, allowed, True) + _wrong(
            policies, ends, denied, False, ingress_only=ingress_only
        )
        v.expect(
            not wrong,
            _("{problem}: {found}").format(problem=problem, found="; ".join(wrong[:1])),
            hint,
        )

    expect(
        [("frontend", "web", 8080, "TCP")],
        [("frontend", "web", 9090, "TCP"), ("frontend", "web", 8080, "UDP")],
        _("frontend should reach demo-web on TCP 8080 and no other port"),
        _(
            "Allow both ends: an Ingress rule on app: demo-web from role: frontend pods and an "
            "Egress rule on role: frontend to app: demo-web, each with ports [{{protocol: TCP, "
            "port: 8080}}]."
        ).format(),
        ingress_only=True,
    )
    expect(
        [("frontend", "web", 8080, "TCP")],
        [
            ("other", "web", 8080, "TCP"),
            ("far-frontend", "web", 8080, "TCP"),
            ("far-pod", "web", 8080, "TCP"),
            ("internet", "web", 8080, "TCP"),
        ],
        _("only frontend pods of this namespace should reach demo-web"),
        _(
            "In the ingress rule's `from`, select role: frontend with a podSelector alone: "
            "podSelector {{}} admits every pod of the namespace, and a namespaceSelector admits "
            "other namespaces."
        ).format(),
        ingress_only=True,
    )
    expect(
        [(src, "dns", 53, proto) for src in local for proto in ("UDP", "TCP")],
        [(src, "internet", 443, "TCP") for src in local]
        + [(src, "public-dns", 53, "UDP") for src in local]
        + [(src, "dns", 80, "TCP") for src in local],
        _("every pod should reach DNS (UDP and TCP 53) in kube-system, and nothing else outside"),
        _(
            "Add an Egress policy for every pod (podSelector {{}}) to pods labelled k8s-app: "
            "kube-dns in the namespace labelled kubernetes.io/metadata.name: kube-system (one "
            "peer with both selectors), on UDP 53 and TCP 53: DNS falls back to TCP for large "
            "answers."
        ).format(),
    )
    expect(
        [],
        [
            ("web", "frontend", 8080, "TCP"),
            ("other", "frontend", 8080, "TCP"),
            ("frontend", "other", 8080, "TCP"),
            ("web", "other", 8080, "TCP"),
            ("frontend", "far-pod", 8080, "TCP"),
        ],
        _("nothing else should be allowed"),
        _(
            "Keep every allow rule narrow: a pod selector, a port, and the direction it needs; an "
            "empty rule ({{}}) allows all."
        ).format(),
    )
    if ctx.substrate == "kind":
        _kind_traffic(ctx, v)
    return v.ok(
        _(
            "frontend → demo-web TCP 8080 only; demo-web closed to everyone else; DNS (UDP and "
            "TCP 53) in kube-system for every pod, nothing else out"
        )
    )


# --- kind only: real connections -------------------------------------------------------------


def probe_script(ip: str, port: int) -> str:
    """Shell that exits 0 once a TCP connection to ip:port succeeds, 1 after five refusals.

    Debian's busybox nc has no -z: connect, run `true` on the socket, close. Retried because a
    policy enforcer admits a brand-new pod's address a moment after the pod starts (kube-router
    adds it to its ipsets on the pod's event); a denial is refused or times out every time.
    """
    attempt = f"nc -w 2 {ip} {port} -e /bin/true"
    return f"for i in 1 2 3 4 5; do {attempt} && exit 0; sleep 1; done; exit 1"


def probe_pod(name: str, labels: dict[str, str], ip: str, port: int) -> Json:
    """Return a short-lived pod that tries one TCP connection and exits 0 iff it connected.

    It passes Pod Security "restricted" and declares its resources, so neither admission nor the
    lab's quota refuses it.
    """
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {**labels, "kubelab.dev/probe": "netpol"}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "activeDeadlineSeconds": 60,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65534,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": PROBE_IMAGE,
                    "command": ["sh", "-c", probe_script(ip, port)],
                    "resources": _resources("50m", "32Mi"),
                    "securityContext": _restricted_container(),
                }
            ],
        },
    }


def probe_outcome(pod: Json | None) -> bool | None:
    """Return True if a probe pod connected, False if it could not, None if it did not run."""
    phase = dig(pod, "status", "phase")
    if phase == "Succeeded":
        return True
    if phase == "Failed":
        terminated = [
            dig(s, "state", "terminated", default={})
            for s in dig(pod, "status", "containerStatuses", default=[]) or []
        ]
        return False if any(t.get("exitCode") == 1 for t in terminated) else None
    return None


def _connects(ctx: Context, labels: dict[str, str], ip: str, port: int) -> bool | None:
    name = f"netpol-probe-{uuid.uuid4().hex[:6]}"
    try:
        ctx.api.create(PODS, probe_pod(name, labels, ip, port), ctx.namespace)
    except ApiError:
        return None
    try:
        pod = ctx.wait(
            lambda: ctx.get(PODS, name),
            lambda p: probe_outcome(p) is not None,
            what=_("probe pod {name}").format(name=name),
            interval=1.0,
        )
        return probe_outcome(pod)
    finally:
        ctx.api.delete(PODS, name, ctx.namespace)


def _kind_traffic(ctx: Context, v: Verdict) -> None:
    """Open real connections to a demo-web pod: from a frontend pod (works), another (refused)."""

    def running() -> list[Json]:
        return [
            p
            for p in ctx.list(PODS, labels=f"app={WEB}")
            if dig(p, "status", "podIP") and dig(p, "status", "phase") == "Running"
        ]

    # Real pods take a moment to start after an apply: wait, unless one cannot start at all.
    pods = ctx.wait(
        running, bool, what=_("a running {name} pod").format(name=WEB), stuck=ctx.stuck_in(WEB)
    )
    if not pods:
        v.expect(
            False,
            _("no running {name} pod to send real traffic to").format(name=WEB),
            _("Apply Deployment {name} and wait until its pods run.").format(name=WEB),
        )
        return
    ip = pods[0]["status"]["podIP"]
    from_frontend = _connects(ctx, {"role": FRONTEND}, ip, 8080)
    from_other = _connects(ctx, {"role": "batch"}, ip, 8080)
    v.expect(
        from_frontend is not False and from_other is not True,
        _(
            "real traffic to {name} {ip}:8080: from a frontend pod {frontend}, from another pod "
            "{other}"
        ).format(name=WEB, ip=ip, frontend=_said(from_frontend), other=_said(from_other)),
        _(
            "The cluster's network plugin enforces what your policies say: `kubectl describe "
            "networkpolicy -n {namespace}` and compare with the rules above."
        ).format(namespace=ctx.namespace),
    )


def _said(outcome: bool | None) -> str:
    return {True: _("connected"), False: _("was refused"), None: _("could not run")}[outcome]


# --- limits, quota, pod-security: server-side dry runs ---------------------------------------


def _resources(cpu: str, memory: str) -> Json:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}


def _restricted_container() -> Json:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def dry_run_pod(
    name: str,
    containers: list[Json],
    *,
    restricted: bool = True,
) -> Json:
    """Return a pod for a server-side dry run: restricted-compliant unless told otherwise."""
    spec: Json = {"automountServiceAccountToken": False, "containers": containers}
    if restricted:
        spec["securityContext"] = {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        for c in containers:
            c.setdefault("securityContext", _restricted_container())
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"kubelab.dev/probe": "dry-run"}},
        "spec": spec,
    }


def _container(name: str = "app", resources: Json | None = None) -> Json:
    c: Json = {"name": name, "image": "registry.example/kubelab/probe:1"}
    if resources is not None:
        c["resources"] = resources
    return c


def _try(ctx: Context, pod: Json) -> tuple[Json | None, str]:
    """Dry-run a pod; return (the pod the server would create, None if refused) and why not."""
    try:
        return ctx.dry_run_create(PODS, pod), ""
    except ApiError as err:
        if err.status not in (400, 403, 422):
            raise
        return None, str(err)


@checks.check("limits", docs=DOCS_LIMITS)
def limits(ctx: Context) -> Verdict:
    """A pod without resources comes back from a dry run with requests and limits filled in."""
    v = Verdict()
    created, refusal = _try(ctx, dry_run_pod("kubelab-no-resources", [_container()]))
    names = ", ".join(lr["metadata"]["name"] for lr in ctx.list(LIMITRANGES)) or _("none")
    if created is None:
        if "must specify" in refusal or "no request is specified" in refusal:
            hint = _(
                "A pod that sets no resources is refused by a ResourceQuota on requests, or by a "
                "LimitRange ratio, unless a LimitRange fills them in: give a `type: Container` "
                "item defaultRequest and default for cpu and memory."
            )
        else:
            hint = _(
                "Read the refusal: a LimitRange's min, max and maxLimitRequestRatio also apply to "
                "its defaults (a default limit above ratio x default request is refused)."
            )
        v.expect(
            False, _("a pod without resources was refused: {refusal}").format(refusal=refusal), hint
        )
        v.expect(False, _("so no requests or limits could be filled in"), hint)
        return v
    got = dig(created, "spec", "containers", default=[{}])[0].get("resources") or {}
    for part, field in (("requests", "defaultRequest"), ("limits", "default")):
        values = got.get(part) or {}
        missing = [r for r in ("cpu", "memory") if r not in values]
        v.expect(
            not missing,
            _(
                "a pod without resources came back with {part} {values}: expected cpu and "
                "memory (LimitRanges: {names})"
            ).format(part=part, values=values or _("none"), names=names),
            _(
                "Give a LimitRange a `type: Container` item with `{field}` for cpu and memory."
            ).format(field=field),
        )
    req, lim = got.get("requests", {}), got.get("limits", {})
    return v.ok(
        _(
            "a pod without resources gets requests cpu {req_cpu} memory {req_memory}, "
            "limits cpu {lim_cpu} memory {lim_memory}"
        ).format(
            req_cpu=req.get("cpu"),
            req_memory=req.get("memory"),
            lim_cpu=lim.get("cpu"),
            lim_memory=lim.get("memory"),
        )
    )


QUOTA_KEYS = {"requests.cpu": "cpu", "requests.memory": "memory", "pods": "pods"}


def _hard(quotas: list[Json]) -> dict[str, Decimal]:
    """Return the tightest hard limit per resource over all quotas ("cpu" means requests.cpu)."""
    found: dict[str, Decimal] = {}
    for q in quotas:
        for key, value in (dig(q, "spec", "hard", default={}) or {}).items():
            canonical = {"cpu": "requests.cpu", "memory": "requests.memory"}.get(key, key)
            amount = parse(value)
            if amount is not None:
                found[canonical] = min(found.get(canonical, amount), amount)
    return found


def _remaining(quotas: list[Json], key: str) -> Decimal | None:
    """Return the least headroom any quota leaves for `key` (hard minus used)."""
    left: Decimal | None = None
    for q in quotas:
        hard, used = dig(q, "status", "hard", default={}) or {}, dig(q, "status", "used") or {}
        for name in (key, QUOTA_KEYS.get(key, key)):
            if name in hard:
                h, u = parse(hard[name]) or Decimal(0), parse(used.get(name, "0")) or Decimal(0)
                left = h - u if left is None else min(left, h - u)
    return left


def _container_max(ctx: Context, resource: str) -> Decimal | None:
    """Return the smallest per-container max any LimitRange sets for `resource`."""
    caps = [
        parse(item["max"][resource])
        for lr in ctx.list(LIMITRANGES)
        for item in dig(lr, "spec", "limits", default=[]) or []
        if item.get("type") == "Container" and resource in (item.get("max") or {})
    ]
    known = [c for c in caps if c is not None]
    return min(known) if known else None


def oversized_pod(resource: str, need: Decimal, cap: Decimal | None, small: dict[str, str]) -> Json:
    """Return a pod whose containers together request `need` of `resource`, none above `cap`.

    Splitting over containers keeps each within a LimitRange's max, so only the quota can refuse
    it; `small` gives the other resource's request (and limit) per container.
    """
    count = 1 if not cap or cap <= 0 else max(1, math.ceil(need / cap))
    count = min(count, 20)
    share = need / count
    amount = f"{math.ceil(share * 1000)}m" if resource == "cpu" else f"{math.ceil(share)}"
    containers = []
    for i in range(count):
        values = {**small, resource: amount}
        containers.append(_container(f"c{i}", {"requests": values, "limits": values}))
    return dry_run_pod(f"kubelab-oversized-{resource}", containers)


@checks.check("quota", docs=DOCS_QUOTA)
def quota(ctx: Context) -> Verdict:
    """A ResourceQuota caps requests.cpu, requests.memory and pods; an oversized pod is refused."""
    v = Verdict()

    def quotas() -> list[Json]:
        # kubelab's own quota (it counts objects in every lab namespace) is not the learner's.
        return [q for q in ctx.list(RESOURCEQUOTAS) if not namespace_fence.is_fence(q)]

    found = quotas()
    hard = _hard(found)
    shown_hard = {
        {"cpu": "requests.cpu", "memory": "requests.memory"}.get(k, k): amount
        for q in found
        for k, amount in (dig(q, "spec", "hard", default={}) or {}).items()
    }
    missing = [k for k in QUOTA_KEYS if k not in hard]
    v.expect(
        bool(found) and not missing,
        (
            _("ResourceQuota: expected hard limits on {keys}; missing {missing}")
            if found
            else _(
                "ResourceQuota: expected hard limits on {keys}; no ResourceQuota in the namespace"
            )
        ).format(keys=", ".join(QUOTA_KEYS), missing=", ".join(missing)),
        _("Give a ResourceQuota spec.hard entries requests.cpu, requests.memory and pods."),
    )
    if found and not missing:  # admission enforces a quota only once its usage is computed

        def computed(qs: list[Json]) -> bool:
            return all(
                set(dig(q, "spec", "hard") or {}) <= set(dig(q, "status", "hard") or {}) for q in qs
            )

        found = ctx.wait(quotas, computed, what=_("the quota controller to compute usage"))
    small = {"cpu": {"memory": "16Mi"}, "memory": {"cpu": "10m"}}
    step = {"cpu": Decimal("0.1"), "memory": Decimal(64 * 2**20)}
    for resource in ("cpu", "memory"):
        key = f"requests.{resource}"
        left = _remaining(found, key)
        need = (left if left is not None and left > 0 else Decimal(0)) + step[resource]
        if left is None:
            need = Decimal(4) if resource == "cpu" else Decimal(8 * 2**30)
        pod = oversized_pod(resource, need, _container_max(ctx, resource), small[resource])
        created, refusal = _try(ctx, pod)
        refused = created is None and "exceeded quota" in refusal and key in refusal
        shown = (
            _("{amount} CPU").format(amount=f"{need:.1f}")
            if resource == "cpu"
            else _("{amount}Mi memory").format(amount=int(need) // 2**20)
        )
        v.expect(
            refused,
            (
                _(
                    "a pod requesting {shown} (more than the quota leaves) was refused for "
                    "another reason: {refusal}"
                )
                if created is None
                else _("a pod requesting {shown} (more than the quota leaves) was admitted")
            ).format(shown=shown, refusal=refusal),
            _(
                "Set {key} in the ResourceQuota's spec.hard: admission then refuses any pod that "
                "would push the namespace's total requests over it (403 exceeded quota)."
            ).format(key=key),
        )
    return v.ok(
        _("ResourceQuota caps {caps}; oversized pods are refused").format(
            caps=", ".join(f"{k} {shown_hard.get(k)}" for k in QUOTA_KEYS)
        )
    )


def _by_pod_security(refusal: str) -> bool:
    return "violates PodSecurity" in refusal


@checks.check("pod-security", docs=DOCS_PSA)
def pod_security(ctx: Context) -> Verdict:
    """Privileged and baseline pods are refused, a restricted one admitted; workloads comply."""
    v = Verdict()
    small = _resources("50m", "32Mi")
    compliant, why_compliant = _try(
        ctx, dry_run_pod("kubelab-restricted", [_container("app", small)])
    )
    privileged = dry_run_pod(
        "kubelab-privileged",
        [{**_container("app", small), "securityContext": {"privileged": True}}],
        restricted=False,
    )
    admitted, refusal = _try(ctx, privileged)
    # kubelab enforces baseline here from the start (kubelab/fence), which refuses privileged
    # pods too: only a refusal at the restricted level is the learner's.
    v.expect(
        admitted is None and 'PodSecurity "restricted' in refusal and compliant is not None,
        (
            _("a privileged pod was refused, but not by Pod Security: {refusal}").format(
                refusal=refusal
            )
            if admitted is None
            else _("a privileged pod was admitted")
        )
        if compliant is not None
        else _("a pod that meets every Pod Security level was refused too: {refusal}").format(
            refusal=why_compliant
        ),
        _(
            "Label the namespace: `kubectl label namespace {namespace} "
            "pod-security.kubernetes.io/enforce=restricted`; Pod Security admission then refuses "
            "pods that break the level."
        ).format(namespace=ctx.namespace),
    )
    baseline = dry_run_pod("kubelab-baseline", [_container("app", small)], restricted=False)
    admitted_b, refusal_b = _try(ctx, baseline)
    is_restricted = admitted_b is None and 'PodSecurity "restricted' in refusal_b
    v.expect(
        is_restricted,
        _(
            "a pod with no securityContext (fine for baseline, not for restricted) was refused: "
            "{refusal}"
        ).format(refusal=refusal_b)
        if admitted_b is None
        else _(
            "a pod with no securityContext (fine for baseline, not for restricted) was admitted"
        ),
        _(
            "The level must be restricted (not baseline or privileged): set the label "
            "pod-security.kubernetes.io/enforce=restricted (add --overwrite to change it)."
        ),
    )
    failing = []
    for name in (WEB, FRONTEND):
        template = _template(ctx, name)
        if template is None:
            failing.append(_("Deployment {name} not found").format(name=name))
            continue
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"kubelab-template-{name}",
                "labels": template.get("metadata", {}).get("labels", {}),
            },
            "spec": template.get("spec", {}),
        }
        created, why = _try(ctx, pod)
        if created is None:
            failing.append(_("{name}'s pods would be refused: {why}").format(name=name, why=why))
    v.expect(
        is_restricted and not failing,
        _("workloads: {failing}").format(failing="; ".join(failing))
        if failing
        else _(
            "workloads: cannot tell whether they pass restricted until the namespace enforces it"
        ),
        _(
            "Restricted needs, in every pod: securityContext.runAsNonRoot: true and "
            "seccompProfile type RuntimeDefault; in every container: allowPrivilegeEscalation: "
            "false and capabilities drop [ALL]."
        ),
    )
    return v.ok(
        _(
            "Pod Security restricted is enforced: privileged and baseline-only pods are refused, "
            "{web} and {frontend} comply"
        ).format(web=WEB, frontend=FRONTEND)
    )


# --- image-policy: a ValidatingAdmissionPolicy ------------------------------------------------

DOCS_VAP = "https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/"
PARTICIPANT_LABEL = (
    "kubelab.dev/participant"  # set by kubelab on a workshop participant's namespace
)
SELFSUBJECTACCESSREVIEWS = Resource(
    "authorization.k8s.io/v1",
    "selfsubjectaccessreviews",
    "SelfSubjectAccessReview",
    namespaced=False,
)


def _may_create_policies(ctx: Context) -> bool:
    """Return whether the credentials grading now may create ValidatingAdmissionPolicies."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "group": "admissionregistration.k8s.io",
                "resource": "validatingadmissionpolicies",
                "verb": "create",
            }
        },
    }
    try:
        answer = ctx.api.create(SELFSUBJECTACCESSREVIEWS, review)
    except ApiError:
        return False
    return bool(dig(answer, "status", "allowed", default=False))


def dry_run_deployment(name: str, image: str) -> Json:
    """Return a one-replica Deployment running `image`, for a server-side dry run."""
    labels = {"app": name, "kubelab.dev/probe": "dry-run"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def _try_deployment(ctx: Context, image: str) -> tuple[bool, str]:
    """Dry-run a Deployment of `image`; return whether it was admitted, and the refusal."""
    try:
        ctx.dry_run_create(DEPLOYMENTS, dry_run_deployment("kubelab-image-probe", image))
    except ApiError as err:
        if err.status not in (400, 403, 422):
            raise
        return False, str(err)
    return True, ""


def _by_policy(refusal: str) -> bool:
    return "ValidatingAdmissionPolicy" in refusal


POLICY_BINDINGS = Resource(
    "admissionregistration.k8s.io/v1",
    "validatingadmissionpolicybindings",
    "ValidatingAdmissionPolicyBinding",
    namespaced=False,
)
SETTLE_SECONDS = 6  # the API server loads new policies from a watch, moments after they are stored


def _learners_bindings(ctx: Context) -> bool:
    """Return whether any binding other than kubelab's own fence exists."""
    try:
        found = ctx.api.list(POLICY_BINDINGS, None)
    except ApiError:
        return False
    return any(not dig(b, "metadata", "name", default="").startswith("kubelab-") for b in found)


def _settled_try(ctx: Context, image: str, *, settle: bool) -> tuple[bool, str]:
    """Dry-run a Deployment of `image`; if it is admitted and `settle` (a learner's binding
    exists), ask again for a few seconds, since a policy applied just now may not be loaded yet."""
    admitted, refusal = _try_deployment(ctx, image)
    if admitted and settle:
        admitted, refusal = wait.until(
            lambda: _try_deployment(ctx, image),
            lambda found: not found[0],
            timeout=SETTLE_SECONDS,
            what=_("a new admission policy to take effect"),
            raise_on_timeout=False,
        )
    return admitted, refusal


@checks.check("image-policy", docs=DOCS_VAP)
def image_policy(ctx: Context) -> Verdict:
    """A ValidatingAdmissionPolicy refuses Deployments with an unpinned image, admits pinned."""
    v = Verdict()
    if _namespace_labels(ctx, ctx.namespace).get(PARTICIPANT_LABEL) or not _may_create_policies(
        ctx
    ):
        # Workshop participants and confined submissions (instructor grading) cannot create
        # cluster-scoped objects: an admission policy of theirs could refuse everyone's objects.
        # Every one of them gets the same: not graded (one requirement, met by everyone).
        v.expect(True, "", "")
        return v.ok(
            _(
                "a workshop or confined namespace: admission policies are cluster-wide, so the "
                "instructor's; practise this task on your own cluster (not graded here)"
            )
        )
    hint_bind = _(
        "Write a ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1) matching apps "
        "deployments on CREATE and UPDATE, with a CEL validation over "
        "object.spec.template.spec.containers, and a ValidatingAdmissionPolicyBinding with "
        "validationActions [Deny] whose namespaceSelector selects this namespace; check with "
        "`kubectl create deployment x --image=nginx:latest -n {namespace} --dry-run=server` "
        "(a new policy takes a few seconds to take effect)."
    ).format(namespace=ctx.namespace)
    settle = _learners_bindings(ctx)
    for image, what in (
        ("registry.example/kubelab/shop:latest", _("the tag latest")),
        ("registry.example/kubelab/shop", _("no tag")),
    ):
        admitted, refusal = _settled_try(ctx, image, settle=settle)
        settle = False  # wait once at most: the policy is loaded by now, or not refusing
        v.expect(
            not admitted and _by_policy(refusal),
            (
                _(
                    "a Deployment of {image} ({what}) was admitted; expected a "
                    "ValidatingAdmissionPolicy to deny it"
                )
                if admitted
                else _(
                    "a Deployment of {image} ({what}) was refused, but not by an admission "
                    "policy: {refusal}; expected a ValidatingAdmissionPolicy to deny it"
                )
            ).format(image=image, what=what, refusal=refusal),
            hint_bind
            if admitted
            else _(
                "The refusal must come from your ValidatingAdmissionPolicy, not something else."
            ),
        )
    refused_any = v.met > 0
    pinned = "registry.example/kubelab/shop:1.4.2"
    admitted, refusal = _try_deployment(ctx, pinned)
    v.expect(
        admitted and refused_any,
        _("a Deployment of {image} (a pinned tag) was refused: {refusal}").format(
            image=pinned, refusal=refusal
        )
        if not admitted
        else _(
            "no admission policy refused an unpinned image, so admitting a pinned one proves "
            "nothing yet"
        ),
        _(
            "The policy must admit images with a tag other than latest (or a @sha256: digest): "
            "refusing everything is not a policy about images."
        )
        if not admitted
        else hint_bind,
    )
    return v.ok(
        _(
            "a ValidatingAdmissionPolicy denies Deployments whose images are :latest or "
            "untagged, and admits pinned ones"
        )
    )
