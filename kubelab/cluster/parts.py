"""The course's own cluster-wide parts, and `kubelab cluster prepare`, which installs them.

A `Part` is a named list of objects the course needs on every cluster (the Gateway API CRDs, the
`fast-ssd` StorageClass, the GatewayClass `kubelab`, the substrate ConfigMap). `cluster check`
shows one row per part; `cluster prepare` creates each object that is absent, labelled
``app.kubernetes.io/managed-by=kubelab``, and never changes an object it did not create: such an
object is kept and reported, with how it differs from what kubelab would have made. Objects
kubelab created are brought up to date when they differ (its own CRDs only to a newer bundle,
never down; StorageClasses never, their fields being immutable).

The fence's cluster-wide objects (shared ClusterRoles, admission policies, the API priority level)
are parts too. To add a part, `register(Part("name", from_manifest(path), why="..."))`, or append
to `PARTS` here.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubelab import access, api, paths
from kubelab.api import Json, Resource
from kubelab.cluster.findings import MISSING, NEEDS_ADMIN, NO_ACCESS, OK, WARN, Finding, pad
from kubelab.cluster.gateway_crds import VENDORED
from kubelab.cluster.served import Discovery
from kubelab.errors import KubelabError
from kubelab.fence import admission, fairness
from kubelab.i18n import N_, _
from kubelab.objects import dig

MANAGED_BY = "app.kubernetes.io/managed-by"
KUBELAB = "kubelab"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
BUNDLE_VERSION = "gateway.networking.k8s.io/bundle-version"
KWOK_NODE = "kwok.x-k8s.io/node"  # the sim's nodes carry it
CRD_KIND = "CustomResourceDefinition"
SUBSTRATE_FILE = paths.MANIFESTS_DIR / "cluster" / "sim" / "substrate.yaml"


class Skip(Exception):
    """A part cannot be installed here yet; the message says what has to come first."""


@dataclass
class Target:
    """The cluster being checked or prepared: a connection and its cached discovery."""

    api: api.Api
    discovery: Discovery = field(init=False)

    def __post_init__(self) -> None:
        self.discovery = Discovery(self.api)


Compare = Callable[[Json, Json], str | None]


def subset_difference(desired: Json, found: Json) -> str | None:
    """Name the top-level fields (outside metadata) where `found` is not what kubelab would make."""
    skip = {"apiVersion", "kind", "metadata", "status"}
    differing = [k for k, v in desired.items() if k not in skip and not _contains(found.get(k), v)]
    if not differing:
        return None
    return _("differs in {fields}").format(fields=", ".join(sorted(differing)))


def _contains(found: Any, want: Any) -> bool:
    # The API server fills in defaults (a rule's `scope`, a policy's `matchPolicy`): what kubelab
    # wrote must be there, item by item in lists too; what the server added does not count.
    if isinstance(want, dict):
        return isinstance(found, dict) and all(_contains(found.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(found, list)
            and len(found) == len(want)
            and all(_contains(f, w) for f, w in zip(found, want, strict=True))
        )
    return bool(found == want)


@dataclass(frozen=True)
class Part:
    """Objects the course needs cluster-wide, checked and installed together."""

    name: str
    objects: Callable[[Target], list[Json]]  # what kubelab would create (may raise Skip)
    why: str = ""  # what the course uses it for, shown when it is missing
    compare: Compare = subset_difference  # how a pre-existing object differs (None: same)
    check: Callable[[Target, Part], Finding] | None = None  # instead of the presence check
    summary: Callable[[list[Found]], str] | None = None  # what is there, in a few words
    # Objects kubelab created are brought up to date when `compare` finds them different; False
    # for kinds whose fields are immutable (StorageClass). `compare` decides what "different" is:
    # for CRDs only an older bundle, so nothing is ever downgraded.
    update: bool = True


# --- the state of one object ---------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """One desired object and what the cluster holds under its name."""

    desired: Json
    resource: Resource | None  # None when its API is not served (yet)
    current: Json | None = None
    forbidden: bool = False

    @property
    def label(self) -> str:
        """Kind and name, e.g. ``StorageClass fast-ssd``."""
        meta = self.desired["metadata"]
        where = f"{meta['namespace']}/" if meta.get("namespace") else ""
        return f"{self.desired['kind']} {where}{meta['name']}"

    @property
    def ours(self) -> bool:
        """Tell whether kubelab created the object found."""
        return bool(dig(self.current, "metadata", "labels", MANAGED_BY) == KUBELAB)


def look(target: Target, desired: Json) -> Found:
    """Read the object named like `desired` (403 is recorded, not raised)."""
    res = target.discovery.resource_for(desired["apiVersion"], desired["kind"])
    if res is None:
        return Found(desired, None)
    meta = desired["metadata"]
    try:
        current = target.api.get(res, meta["name"], meta.get("namespace"))
    except api.ApiError as err:
        if err.status == 403:
            return Found(desired, res, forbidden=True)
        raise
    return Found(desired, res, current)


# --- checking ------------------------------------------------------------------------------------


def check_part(target: Target, part: Part) -> Finding:
    """Return the part's row of `cluster check`."""
    if part.check is not None:
        return part.check(target, part)
    try:
        desired = part.objects(target)
    except Skip as why:
        return Finding(_(part.name), _("absent"), MISSING, str(why))
    except api.ApiError as err:
        return _no_access(_(part.name), err)
    found = [look(target, d) for d in desired]
    return presence(part, found)


def presence(part: Part, found: list[Found]) -> Finding:
    """The default row: every object present (ok), some absent (missing), or not readable."""
    name = _(part.name)
    if any(f.forbidden for f in found):
        return Finding(name, _("not readable"), NO_ACCESS, _("needs cluster-admin to check"))
    absent = [f.label for f in found if f.current is None]
    if absent:
        shown = ", ".join(absent[:3])
        if len(absent) > 3:
            shown = _("{objects} and {n} more").format(objects=shown, n=len(absent) - 3)
        todo = (
            _("`kubelab cluster prepare` installs it ({why})").format(why=_(part.why))
            if part.why
            else _("`kubelab cluster prepare` installs it")
        )
        return Finding(name, _("absent: {objects}").format(objects=shown), MISSING, todo)
    differing = [(f, d) for f in found if f.current and (d := part.compare(f.desired, f.current))]
    theirs = sum(1 for f in found if not f.ours)
    said = [part.summary(found)] if part.summary else []
    if theirs:
        said.append(
            _("{theirs} of {total} not created by kubelab prepare").format(
                theirs=theirs, total=len(found)
            )
        )
    what = _("present ({notes})").format(notes="; ".join(said)) if said else _("present")
    if differing:
        notes = "; ".join(f"{f.label}: {d}" for f, d in differing)
        todo = (
            _("`kubelab cluster prepare` updates what kubelab created")
            if part.update and all(f.ours for f, _d in differing)
            else _(
                "kept as it is: kubelab never changes what it did not create; align it by hand"
                " if labs misbehave"
            )
        )
        return Finding(name, f"{what}; {notes}", WARN, todo)
    return Finding(name, what, OK)


def _no_access(name: str, err: api.ApiError) -> Finding:
    if err.status == 403:
        return Finding(name, _("not readable"), NO_ACCESS, _("needs cluster-admin to check"))
    return Finding(name, _("cannot tell: {reason}").format(reason=err), WARN)


# --- preparing -----------------------------------------------------------------------------------


# What `prepare` did with an object, as `Action.what` holds it (NEEDS_ADMIN is one too).
ACTIONS = (
    N_("created"),
    N_("updated"),
    N_("upgraded"),
    N_("present"),
    N_("kept"),
    N_("skipped"),
    N_("failed"),
)


@dataclass(frozen=True)
class Action:
    """What `prepare` did (or could not do) with one object or part."""

    part: str
    what: str  # one of ACTIONS (compared as it is, shown translated)
    subject: str
    detail: str = ""

    @property
    def failing(self) -> bool:
        """Tell whether the course still lacks what this action was about."""
        return self.what in ("skipped", NEEDS_ADMIN, "failed")

    def line(self) -> str:
        """One line for the terminal."""
        detail = f": {self.detail}" if self.detail else ""
        # The subject may be a part's name, translated; never "" to gettext (that is its header).
        subject = _(self.subject) if self.subject else ""
        return f"{pad(_(self.what), 19)} {subject}{detail}"


def labelled(desired: Json) -> Json:
    """Return a copy of `desired` labelled as created by kubelab."""
    body = copy.deepcopy(desired)
    labels = body.setdefault("metadata", {}).setdefault("labels", {})
    labels[MANAGED_BY] = KUBELAB
    return body


def prepare_part(target: Target, part: Part) -> list[Action]:
    """Create what the part lacks; keep and report every object kubelab did not create."""
    try:
        desired = part.objects(target)
    except Skip as why:
        return [Action(part.name, "skipped", part.name, str(why))]
    except api.ApiError as err:
        if err.status == 403:
            return [Action(part.name, NEEDS_ADMIN, part.name, _("may not read what it depends on"))]
        return [Action(part.name, "failed", part.name, str(err))]
    actions = []
    created_crds: list[str] = []
    for d in desired:
        f = look(target, d)
        action = _prepare_object(target, part, f)
        actions.append(action)
        if action.what in ("created", "upgraded", "updated") and d["kind"] == CRD_KIND:
            created_crds.append(d["metadata"]["name"])
    if created_crds:
        _wait_established(target, created_crds)
        target.discovery.forget()
    return actions


def _prepare_object(target: Target, part: Part, f: Found) -> Action:
    if f.resource is None:
        not_served = _("API {api} not served").format(api=f.desired["apiVersion"])
        return Action(part.name, "skipped", f.label, not_served)
    if f.forbidden:
        return Action(part.name, NEEDS_ADMIN, f.label, _("not readable with these credentials"))
    if f.current is not None:
        differs = part.compare(f.desired, f.current)
        if not f.ours:
            note = (
                _("not created by kubelab, left as it is ({differs})").format(differs=differs)
                if differs
                else _("not created by kubelab, left as it is")
            )
            return Action(part.name, "kept", f.label, note)
        if differs and part.update:
            return _update(target, part, f)
        note = (
            _("created by kubelab earlier ({differs}; not updatable)").format(differs=differs)
            if differs
            else _("created by kubelab earlier")
        )
        return Action(part.name, "present", f.label, note)
    meta = f.desired["metadata"]
    try:
        target.api.create(f.resource, labelled(f.desired), meta.get("namespace"))
    except api.ApiError as err:
        if err.status == 403:
            return Action(part.name, NEEDS_ADMIN, f.label, _("may not create it"))
        if err.status == 409:  # made meanwhile by someone else: not ours
            return Action(part.name, "kept", f.label, _("appeared meanwhile, left as it is"))
        return Action(part.name, "failed", f.label, str(err))
    return Action(part.name, "created", f.label, _summary(f.desired))


def _update(target: Target, part: Part, f: Found) -> Action:
    assert f.resource is not None and f.current is not None
    body = labelled(f.desired)
    body["metadata"]["resourceVersion"] = f.current["metadata"]["resourceVersion"]
    meta = f.desired["metadata"]
    try:
        target.api.request("PUT", f.resource.path(meta.get("namespace"), meta["name"]), body=body)
    except api.ApiError as err:
        what = NEEDS_ADMIN if err.status == 403 else "failed"
        return Action(part.name, what, f.label, str(err))
    version = _version(f.desired)
    if version:
        return Action(part.name, "upgraded", f.label, _("to {version}").format(version=version))
    return Action(part.name, "updated", f.label, differs_note(part, f))


def differs_note(part: Part, f: Found) -> str:
    """How the object found differed from what kubelab makes."""
    return (part.compare(f.desired, f.current) if f.current else None) or ""


def _summary(desired: Json) -> str:
    if desired["kind"] == "StorageClass":
        return f"provisioner {desired.get('provisioner')}"
    if desired["kind"] == "GatewayClass":
        return f"controller {dig(desired, 'spec', 'controllerName')}"
    if desired["kind"] == "CustomResourceDefinition":
        return str(_version(desired))
    return ""


def _wait_established(target: Target, names: list[str], timeout: float = 60) -> None:
    crds = api.CRDS
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending and time.monotonic() < deadline:
        pending = [
            n
            for n in pending
            if not any(
                c.get("type") == "Established" and c.get("status") == "True"
                for c in dig(target.api.get(crds, n), "status", "conditions", default=[]) or []
            )
        ]
        if pending:
            time.sleep(0.5)


# --- version order of Gateway API bundles ---------------------------------------------------------


def _version(obj: Json | None) -> str | None:
    value = dig(obj, "metadata", "annotations", BUNDLE_VERSION)
    return value if isinstance(value, str) else None


def version_key(version: str | None) -> tuple[int, ...]:
    """Order "v1.6.3" style versions (pre-release tags sort as their release); None first."""
    if not version:
        return ()
    return tuple(int(n) for n in re.findall(r"\d+", version.split("-")[0])[:3])


# --- the parts -----------------------------------------------------------------------------------


def from_manifest(path: Path) -> Callable[[Target], list[Json]]:
    """Objects of a YAML file, as a part's `objects` (the file is read when the part runs)."""

    def objects(_target: Target) -> list[Json]:
        return [d for d in yaml.safe_load_all(path.read_text()) if d]

    return objects


def _bundles(found: list[Found]) -> str:
    versions = sorted({v for f in found if (v := _version(f.current))}, key=version_key)
    if not versions:
        return _("no bundle version")
    return _("bundle {versions}").format(versions=", ".join(versions))


def _storage_summary(found: list[Found]) -> str:
    return ", ".join(f"provisioner {dig(f.current, 'provisioner')}" for f in found)


def _substrate_summary(found: list[Found]) -> str:
    cm = next((f.current for f in found if f.desired["kind"] == "ConfigMap"), None)
    return f"substrate {dig(cm, 'data', 'substrate', default='?')}"


def _crd_compare(desired: Json, found: Json) -> str | None:
    want, have = _version(desired), _version(found)
    if want is None:  # the bundle's admission policy and its binding
        return subset_difference(desired, found)
    if version_key(have) < version_key(want):
        return _("bundle {have}, older than kubelab's {want}").format(
            have=have or _("unknown"), want=want
        )
    return None


def _gateway_classes(target: Target) -> list[Json]:
    res = target.discovery.resource_for("gateway.networking.k8s.io/v1", "GatewayClass")
    if res is None:
        raise Skip(
            _("the Gateway API CRDs come first: rerun `kubelab cluster prepare` once they are")
        )
    return target.api.list(res)


def _accepted(gc: Json) -> bool:
    conditions = dig(gc, "status", "conditions", default=[]) or []
    return any(c.get("type") == "Accepted" and c.get("status") == "True" for c in conditions)


def gatewayclass_objects(target: Target) -> list[Json]:
    """GatewayClass `kubelab` for the one Gateway controller that accepts classes here."""
    classes = _gateway_classes(target)
    mine = next((g for g in classes if dig(g, "metadata", "name") == KUBELAB), None)
    if mine is not None:
        return [_gatewayclass(str(dig(mine, "spec", "controllerName")))]
    controllers = sorted({str(dig(g, "spec", "controllerName")) for g in classes if _accepted(g)})
    if not controllers:
        raise Skip(
            _(
                "needs a Gateway controller: install one (Traefik, Envoy Gateway, ...), then rerun"
                " `kubelab cluster prepare` (lab 05 routes traffic through it)"
            )
        )
    if len(controllers) > 1:
        raise Skip(
            _(
                "several Gateway controllers answer ({controllers}): create GatewayClass"
                " kubelab with the controllerName of the one the course should use"
            ).format(controllers=", ".join(controllers))
        )
    return [_gatewayclass(controllers[0])]


def _gatewayclass(controller: str) -> Json:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": KUBELAB},
        "spec": {"controllerName": controller, "description": "The course's Gateways"},
    }


def _gatewayclass_compare(desired: Json, found: Json) -> str | None:
    return None  # any controller will do: the name is what lab manifests use


def gatewayclass_check(target: Target, part: Part) -> Finding:
    """GatewayClass kubelab: present and accepted by a controller (the sim has none)."""
    name = _(part.name)
    try:
        classes = _gateway_classes(target)
    except Skip:
        return Finding(name, _("absent (no Gateway API)"), MISSING, _("install the CRDs first"))
    except api.ApiError as err:
        return _no_access(name, err)
    mine = next((g for g in classes if dig(g, "metadata", "name") == KUBELAB), None)
    if mine is None:
        try:
            controller = gatewayclass_objects(target)[0]["spec"]["controllerName"]
        except Skip as why:
            return Finding(name, _("absent"), MISSING, str(why))
        return Finding(
            name,
            _("absent"),
            MISSING,
            _("`kubelab cluster prepare` creates it for {controller}").format(
                controller=controller
            ),
        )
    controller = dig(mine, "spec", "controllerName")
    if _accepted(mine):
        return Finding(name, _("accepted by {controller}").format(controller=controller), OK)
    sim = controller == "sim.kubelab.local/gateway-controller"
    return Finding(
        name,
        _("present, not accepted by any controller ({controller})").format(controller=controller),
        WARN,
        _("sim: no data plane, graders resolve routes themselves")
        if sim
        else _("Gateways of this class will not be programmed: is its Gateway controller running?"),
    )


def fast_ssd_objects(target: Target) -> list[Json]:
    """StorageClass fast-ssd using the default class's provisioner (labs ask for it by name)."""
    classes = target.api.list(api.STORAGECLASSES)
    existing = next((c for c in classes if dig(c, "metadata", "name") == "fast-ssd"), None)
    default = next((c for c in classes if is_default_class(c)), None)
    if default is None and existing is None:
        raise Skip(_("needs a default StorageClass to take the provisioner from: mark one default"))
    source = default or existing
    assert source is not None
    body: Json = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "fast-ssd", "labels": {"kubelab.dev/tier": "fast"}},
        "provisioner": source["provisioner"],
        "reclaimPolicy": "Delete",
        "volumeBindingMode": source.get("volumeBindingMode") or "Immediate",
    }
    if source.get("parameters"):
        body["parameters"] = source["parameters"]
    return [body]


def is_default_class(sc: Json) -> bool:
    """Tell whether a StorageClass is marked as the cluster's default."""
    notes = dig(sc, "metadata", "annotations", default={}) or {}
    return "true" in (notes.get(DEFAULT_CLASS), notes.get(BETA_DEFAULT_CLASS))


def detect_substrate(target: Target) -> str:
    """Return "sim" when the nodes are KWOK's, else "kind" (real kubelets, containers, traffic)."""
    try:
        nodes = target.api.list(api.NODES)
    except api.ApiError:
        return "kind"
    if nodes and all(KWOK_NODE in (dig(n, "metadata", "annotations") or {}) for n in nodes):
        return "sim"
    return "kind"


def substrate_objects(target: Target) -> list[Json]:
    """The ConfigMap graders read to tell sim from real clusters, and who may read it."""
    docs = [d for d in yaml.safe_load_all(SUBSTRATE_FILE.read_text()) if d]
    for d in docs:
        if d["kind"] == "ConfigMap":
            d["data"] = {"substrate": detect_substrate(target)}
    return docs


def _substrate_compare(desired: Json, found: Json) -> str | None:
    if desired["kind"] != "ConfigMap":
        return subset_difference(desired, found)
    return None  # whoever wrote it knew the substrate better than a guess from the nodes


def crd_objects(_target: Target) -> list[Json]:
    """The vendored Gateway API standard-channel CRDs."""
    return [d for d in yaml.safe_load_all(VENDORED.read_text()) if d]


# The fence's cluster-wide objects. Every course cluster gets them as it comes up (`fence_up`);
# on another cluster, `cluster prepare` installs them, so a workshop leader who may not create
# cluster-wide objects can run a workshop once someone who may has prepared the cluster.
FENCE_PARTS: list[Part] = [
    Part(
        N_("kubelab ClusterRoles"),
        lambda _t: access.shared_roles(),
        why=N_("workshops and bulk grading bind each participant to them in their own namespaces"),
    ),
    Part(
        N_("fence admission policies"),
        lambda _t: admission.objects(),
        why=N_("participants and submissions cannot weaken their namespace's fence"),
    ),
    Part(
        N_("fence API fairness"),
        lambda _t: [fairness.level()],
        why=N_("one participant's flood of requests cannot slow the others' checks"),
    ),
]


def fence_digest() -> str:
    """A digest of the fence's objects, so a course cluster started by an older kubelab is
    brought up to date."""
    objects = access.shared_roles() + admission.objects() + [fairness.level()]
    return hashlib.sha256(json.dumps(objects, sort_keys=True).encode()).hexdigest()


def fence_up(client: api.Api) -> None:
    """Install the fence's cluster-wide objects on a course cluster (sim or kind) as it starts."""
    target = Target(client)
    for part in FENCE_PARTS:
        for action in prepare_part(target, part):
            if action.failing:
                raise KubelabError(
                    _("could not install {part}: {action}").format(
                        part=_(part.name), action=action.line().strip()
                    )
                )


PARTS: list[Part] = [
    Part(
        N_("Gateway API CRDs"),
        crd_objects,
        why=N_("lab 05's Gateway and HTTPRoutes"),
        compare=_crd_compare,
        summary=_bundles,
    ),
    Part(
        "GatewayClass kubelab",
        gatewayclass_objects,
        why=N_("lab 05"),
        compare=_gatewayclass_compare,
        check=gatewayclass_check,
    ),
    Part(
        "StorageClass fast-ssd",
        fast_ssd_objects,
        why=N_("lab 04's volumes"),
        summary=_storage_summary,
        update=False,  # provisioner and parameters are immutable
    ),
    Part(
        N_("substrate ConfigMap"),
        substrate_objects,
        why=N_("graders tell sim from a real cluster by kube-public/kubelab-cluster"),
        compare=_substrate_compare,
        summary=_substrate_summary,
    ),
    *FENCE_PARTS,
]


def register(part: Part) -> None:
    """Add a course part (replacing one of the same name); `check` and `prepare` then cover it."""
    PARTS[:] = [p for p in PARTS if p.name != part.name] + [part]
