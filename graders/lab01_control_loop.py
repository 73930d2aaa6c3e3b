"""Checks for lab 01: a learner-written controller for the ConfigMapSet custom resource.

The answer here is behaviour, not only state: the learner writes `reconcile(core, custom,
namespace, name)` in Python. Four checks drive it, each with a time limit, through
`kubelab.controller_harness` in a child process (a crash, a hang or a syntax error is a failed
requirement with a hint, never a grader error), and then read the cluster. They act on the
cluster to provoke what a controller must handle (a deleted child, a drifted child, a scaled
parent, a deleted parent) and undo it afterwards, as their docstrings say.

Which file is graded: $KUBELAB_CONTROLLER if set (the lab notebook sets it), else
./starter/controller.py (a notebook or an nbgrader submission folder), else, inside a workspace
`kubelab init` made, the workspace's labs/01-control-loop/starter/controller.py, else the lab's own
labs/01-control-loop/starter/controller.py (a learner editing the repository copy).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubelab import controller_harness, paths, workspace
from kubelab.api import CONFIGMAPS, CRDS, ApiError, Json, Resource
from kubelab.grading import Checks, Context, Missing, Verdict
from kubelab.i18n import _

checks = Checks("01-control-loop")

CONFIGMAPSETS = Resource("kubelab.dev/v1", "configmapsets", "ConfigMapSet")
CRD = "configmapsets.kubelab.dev"
PARENT = "demo"
REPLICAS = 3
COLOR = "blue"
LABEL = "kubelab.dev/configmapset"
PROBE = "kubelab-gc-probe"  # the grader's own throwaway parent (owner-references)
CALL_LIMIT = 20.0  # seconds one reconcile call may take
ENV = "KUBELAB_CONTROLLER"
LAB_COPY = paths.LABS_DIR / "01-control-loop" / "starter" / "controller.py"

DOCS_CRD = (
    "https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/"
    "custom-resource-definitions/"
)
DOCS_CONTROLLER = "https://kubernetes.io/docs/concepts/architecture/controller/"
DOCS_HEALING = DOCS_CONTROLLER + "#desired-versus-current-state"
DOCS_OWNERS = "https://kubernetes.io/docs/concepts/overview/working-with-objects/owners-dependents/"
DOCS_IDEMPOTENT = DOCS_CONTROLLER + "#controller-pattern"


# --- the learner's controller -------------------------------------------------------------------


def controller_file() -> Path:
    """Return the learner's controller.py, or fail the check saying where it was looked for."""
    explicit = os.environ.get(ENV)
    if explicit:
        path = Path(explicit).expanduser().resolve()
        if path.is_file():
            return path
        raise Missing(
            _("{env} names {path}, which does not exist").format(env=ENV, path=path),
            _(
                "Point {env} at your controller.py (the lab notebook sets it for you), or unset it."
            ).format(env=ENV),
        )
    local = Path.cwd() / "starter" / "controller.py"
    home = workspace.around(Path.cwd())
    # In a workspace its own copy is the learner's, never the course's (the starter, unchanged).
    lab_copy = LAB_COPY if home is None else home / "labs" / LAB_COPY.relative_to(paths.LABS_DIR)
    for path in (local, lab_copy):
        if path.is_file():
            return path.resolve()
    raise Missing(
        _("no controller.py found: looked for ./starter/controller.py and {path}").format(
            path=lab_copy
        ),
        _(
            "Write your controller in starter/controller.py of the lab, or set {env} to its path."
        ).format(env=ENV),
    )


def _command(file: Path, ctx: Context, name: str) -> str:
    return (
        f"`python -m kubelab.controller_harness --file {file} --namespace {ctx.namespace} "
        f"--name {name}`"
    )


def _call(ctx: Context, file: Path, name: str) -> controller_harness.Outcome:
    """Call the learner's reconcile for ConfigMapSet `name` once, within the time left."""
    limit = min(ctx.remaining(), CALL_LIMIT)
    return controller_harness.drive(
        file, ctx.namespace, name, kubeconfig=ctx.api.kubeconfig, timeout=limit
    )


def _hint(outcome: controller_harness.Outcome, file: Path, ctx: Context, name: str) -> str:
    """Return the next step for a reconcile call that failed."""
    run = _command(file, ctx, name)
    if outcome.stage == "timeout":
        return _(
            "reconcile must make one pass and return: no `while True`, no waiting for an event. "
            "A controller is level-triggered: it is called again whenever something changes, "
            "and each call reads the state afresh. Time it with {command}."
        ).format(command=run)
    if outcome.stage == "import":
        return _(
            "Fix {file} so that Python can import it; {command} shows the whole traceback."
        ).format(file=file.name, command=run)
    if outcome.stage == "reconcile" and outcome.error.startswith("NotImplementedError"):
        return _("Write reconcile in {file}: fill in the gaps marked TODO.").format(file=file.name)
    if outcome.stage == "reconcile":
        return _("Fix the error in reconcile; {command} shows the whole traceback.").format(
            command=run
        )
    return _("Check that the cluster answers (`kubelab cluster status`) and grade again.")


# --- desired vs observed ------------------------------------------------------------------------


def _spec(parent: Json) -> tuple[int, dict[str, Any]]:
    spec = parent.get("spec") or {}
    replicas = spec.get("replicas", 0)
    return (replicas if isinstance(replicas, int) else 0), dict(spec.get("data") or {})


def _children(ctx: Context, name: str) -> list[Json]:
    """Return the live ConfigMaps labelled as children of ConfigMapSet `name`."""
    return [
        cm
        for cm in ctx.list(CONFIGMAPS, labels=f"{LABEL}={name}")
        if not cm["metadata"].get("deletionTimestamp")
    ]


def _short(data: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(data.items())) + "}"


def differences(parent: Json, configmaps: list[Json]) -> list[str]:
    """Say how the ConfigMaps differ from what the parent declares (empty: they match)."""
    name = parent["metadata"]["name"]
    replicas, data = _spec(parent)
    wanted = [f"{name}-{i}" for i in range(replicas)]
    by_name = {cm["metadata"]["name"]: cm for cm in configmaps}
    labelled = {
        n for n, cm in by_name.items() if (cm["metadata"].get("labels") or {}).get(LABEL) == name
    }
    problems = []
    missing = [n for n in wanted if n not in labelled]
    if missing:
        unlabelled = [n for n in missing if n in by_name]
        problems.append(
            (
                _("missing {names} ({unlabelled} without the label {label}={name})")
                if unlabelled
                else _("missing {names}")
            ).format(
                names=", ".join(missing),
                unlabelled=", ".join(unlabelled),
                label=LABEL,
                name=name,
            )
        )
    extra = sorted(labelled - set(wanted))
    if extra:
        problems.append(_("extra {names}").format(names=", ".join(extra)))
    for n in wanted:
        if n in labelled and (by_name[n].get("data") or {}) != data:
            problems.append(
                _("{name} holds {data}, expected {wanted}").format(
                    name=n, data=_short(by_name[n].get("data") or {}), wanted=_short(data)
                )
            )
    return problems


def _observed(ctx: Context, name: str) -> tuple[Json, list[str]]:
    """Return the parent as it is now and how its children differ from it."""
    parent = ctx.need(CONFIGMAPSETS, name)
    configmaps = ctx.list(CONFIGMAPS)
    live = [cm for cm in configmaps if not cm["metadata"].get("deletionTimestamp")]
    return parent, differences(parent, live)


def _declared(parent: Json) -> str:
    replicas, data = _spec(parent)
    return _("ConfigMapSet {name} (replicas {replicas}, data {data})").format(
        name=parent["metadata"]["name"], replicas=replicas, data=_short(data)
    )


# --- checks -------------------------------------------------------------------------------------


def _crd_served(ctx: Context) -> tuple[bool, str]:
    """Tell whether the ConfigMapSet API is served, and what was seen."""
    try:
        crd = ctx.api.get(CRDS, CRD)
    except ApiError as err:
        if err.status != 403:
            raise
        # Credentials confined to a namespace cannot read CRDs: ask the API itself instead.
        try:
            ctx.list(CONFIGMAPSETS)
        except ApiError:
            return False, _("the configmapsets API does not answer")
        return True, _("served")
    if crd is None:
        return False, _("not installed")
    conditions = (crd.get("status") or {}).get("conditions") or []
    established = any(
        c.get("type") == "Established" and c.get("status") == "True" for c in conditions
    )
    versions = (crd.get("spec") or {}).get("versions") or []
    v1 = any(v.get("name") == "v1" and v.get("served") for v in versions)
    if established and v1:
        return True, _("served")
    return False, _("Established {established}, version v1 served {v1}").format(
        established=established, v1=v1
    )


@checks.check("custom-resource", docs=DOCS_CRD)
def custom_resource(ctx: Context) -> Verdict:
    """The ConfigMapSet CRD is served, and ConfigMapSet demo declares 3 children holding blue."""
    v = Verdict()
    served, seen = _crd_served(ctx)
    v.expect(
        served,
        _(
            "CustomResourceDefinition {crd}: expected Established with version v1 served, "
            "found {found}"
        ).format(crd=CRD, found=seen),
        _(
            "Run `kubelab reset 01-control-loop` (or `grader.setup()` in the lab notebook): it "
            "installs the lab's CRD from labs/01-control-loop/cluster-setup/."
        ),
    )
    if not served:
        return v
    parent = ctx.need(
        CONFIGMAPSETS,
        PARENT,
        hint=_(
            "Apply starter/configmapset.yaml: `kubelab apply starter/configmapset.yaml --lab 01`"
            " (or `kubectl apply -f starter/configmapset.yaml -n {namespace}`)."
        ).format(namespace=ctx.namespace),
    )
    replicas, data = _spec(parent)
    v.expect(
        replicas == REPLICAS,
        _("ConfigMapSet {name} spec.replicas: expected {wanted}, found {found}").format(
            name=PARENT, wanted=REPLICAS, found=replicas
        ),
        _("Set spec.replicas to {wanted} in starter/configmapset.yaml and apply it again.").format(
            wanted=REPLICAS
        ),
    )
    v.expect(
        data.get("color") == COLOR,
        _("ConfigMapSet {name} spec.data: expected color: {color}, found {found}").format(
            name=PARENT, color=COLOR, found=_short(data)
        ),
        _(
            "Set spec.data to a map with the key color and the value {color}, and apply it again."
        ).format(color=COLOR),
    )
    return v.ok(
        _(
            "{crd} served; ConfigMapSet {name} declares {replicas} children holding color: {color}"
        ).format(crd=CRD, name=PARENT, replicas=REPLICAS, color=COLOR)
    )


@checks.check("reconcile", docs=DOCS_CONTROLLER)
def reconcile(ctx: Context) -> Verdict:
    """After one call of the learner's reconcile, the children and status match demo's spec."""
    v = Verdict()
    ctx.need(CONFIGMAPSETS, PARENT, hint=_("Apply starter/configmapset.yaml first (task 1)."))
    file = controller_file()
    outcome = _call(ctx, file, PARENT)
    if not v.expect(outcome.ok, outcome.describe(), _hint(outcome, file, ctx, PARENT)):
        return v
    parent, problems = _observed(ctx, PARENT)
    v.expect(
        not problems,
        _("after one reconcile of {parent}: {problems}").format(
            parent=_declared(parent), problems="; ".join(problems)
        ),
        _(
            "Create the missing children {name}-0 ... with the label {label}={name} and the "
            "parent's spec.data, and delete the ones that are not wanted."
        ).format(name=PARENT, label=LABEL),
    )
    wanted = _spec(parent)[0]
    status = parent.get("status") or {}
    generation = parent["metadata"].get("generation")
    v.expect(
        status.get("children") == wanted and status.get("observedGeneration") == generation,
        _(
            "ConfigMapSet {name} status: expected children {wanted} and observedGeneration "
            "{generation}, found children {children} and observedGeneration "
            "{observed}"
        ).format(
            name=PARENT,
            wanted=wanted,
            generation=generation,
            children=status.get("children"),
            observed=status.get("observedGeneration"),
        ),
        _(
            "Write status.children and status.observedGeneration (the parent's "
            "metadata.generation) with custom.patch_namespaced_custom_object_status: status is "
            "the observed state, and observedGeneration tells readers which spec it answers."
        ),
    )
    return v.ok(
        _("one reconcile made {parent} true, status written").format(parent=_declared(parent))
    )


def _patch_spec(ctx: Context, spec: Json) -> None:
    ctx.api.patch(
        CONFIGMAPSETS,
        PARENT,
        [{"op": "replace", "path": "/spec", "value": spec}],
        ctx.namespace,
        patch_type="application/json-patch+json",
    )


def _disrupt(ctx: Context, removed: str, drifted: str) -> None:
    """Delete one child and edit another's data, as a person or a bad script might."""
    ctx.api.delete(CONFIGMAPS, removed, ctx.namespace)
    cm = ctx.get(CONFIGMAPS, drifted)
    if cm is not None:
        data = {k: "drifted" for k in cm.get("data") or {}}
        data["injected-by"] = "grader"
        ctx.api.patch(CONFIGMAPS, drifted, {"data": data}, ctx.namespace)


@checks.check("self-healing", docs=DOCS_HEALING)
def self_healing(ctx: Context) -> Verdict:
    """The learner's reconcile converges after each disruption the grader makes.

    The grader scales ConfigMapSet demo to 5, then deletes child demo-1 and changes demo-3's data,
    then scales demo to 2 with one more data key, calling reconcile after each step. Afterwards
    it restores demo's original spec, calls reconcile once more, and deletes children it caused
    that are still there (your controller should already have).
    """
    v = Verdict()
    parent = ctx.need(
        CONFIGMAPSETS, PARENT, hint=_("Apply starter/configmapset.yaml first (task 1).")
    )
    file = controller_file()
    original: Json = dict(parent.get("spec") or {})
    before = {cm["metadata"]["name"] for cm in _children(ctx, PARENT)}
    _replicas, data = _spec(parent)
    steps: list[tuple[str, Callable[[], None]]] = [
        (_("scaled up to 5"), lambda: _patch_spec(ctx, {**original, "replicas": 5})),
        (
            _("after {name}-1 was deleted and {name}-3's data changed").format(name=PARENT),
            lambda: _disrupt(ctx, f"{PARENT}-1", f"{PARENT}-3"),
        ),
        (
            _("scaled down to 2 with a new data key"),
            lambda: _patch_spec(ctx, {"replicas": 2, "data": {**data, "size": "small"}}),
        ),
    ]
    failure: controller_harness.Outcome | None = None
    try:
        for what, act in steps:
            if failure is not None:
                hint = _hint(failure, file, ctx, PARENT)
                v.expect(False, _("{step}: not tried").format(step=what), hint)
                continue
            act()
            outcome = _call(ctx, file, PARENT)
            if not outcome.ok:
                failure = outcome
                v.expect(
                    False,
                    _("{step}: {error}").format(step=what, error=outcome.describe()),
                    _hint(outcome, file, ctx, PARENT),
                )
                continue
            now, problems = _observed(ctx, PARENT)
            v.expect(
                not problems,
                _("{step}, one reconcile left {parent} with {problems}").format(
                    step=what, parent=_declared(now), problems="; ".join(problems)
                ),
                _(
                    "Compare every time: create the children that are missing, replace the data "
                    "of children that differ from spec.data, delete the ones beyond spec.replicas."
                ),
            )
    finally:
        _restore(ctx, file, original, before, call=failure is None or failure.stage != "timeout")
    return v.ok(_("reconcile converged after scale up, a deleted and a drifted child, scale down"))


def _restore(ctx: Context, file: Path, original: Json, before: set[str], *, call: bool) -> None:
    """Put demo's spec back, let the learner's controller follow, remove extras the grader made."""
    if ctx.get(CONFIGMAPSETS, PARENT) is None:
        return
    _patch_spec(ctx, original)
    if call and ctx.remaining() > 1:
        _call(ctx, file, PARENT)
    wanted = {f"{PARENT}-{i}" for i in range(_spec({"spec": original})[0])}
    for cm in _children(ctx, PARENT):
        name = cm["metadata"]["name"]
        if name not in before and name not in wanted:
            ctx.api.delete(CONFIGMAPS, name, ctx.namespace)


def _controller_ref(cm: Json, uid: str) -> bool:
    return any(
        ref.get("uid") == uid
        and ref.get("controller") is True
        and ref.get("kind") == "ConfigMapSet"
        and ref.get("apiVersion") == "kubelab.dev/v1"
        for ref in cm["metadata"].get("ownerReferences") or []
    )


def _blocks_owner_deletion(cm: Json, uid: str) -> bool:
    return any(
        ref.get("uid") == uid and ref.get("blockOwnerDeletion") is True
        for ref in cm["metadata"].get("ownerReferences") or []
    )


def _remove_probe(ctx: Context) -> None:
    ctx.api.delete(CONFIGMAPSETS, PROBE, ctx.namespace)
    for cm in _children(ctx, PROBE):
        ctx.api.delete(CONFIGMAPS, cm["metadata"]["name"], ctx.namespace)


@checks.check("owner-references", docs=DOCS_OWNERS)
def owner_references(ctx: Context) -> Verdict:
    """Children carry a controller ownerReference with blockOwnerDeletion, so deleting their
    parent deletes them.

    The grader creates its own ConfigMapSet kubelab-gc-probe (2 replicas), calls reconcile for it,
    reads the children's ownerReferences, deletes the probe and waits for the garbage collector
    to delete its children. It removes whatever is left of the probe at the end.
    """
    v = Verdict()
    file = controller_file()
    _remove_probe(ctx)  # left over from an interrupted run
    body = {
        "apiVersion": CONFIGMAPSETS.api_version,
        "kind": CONFIGMAPSETS.kind,
        "metadata": {"name": PROBE},
        "spec": {"replicas": 2, "data": {"purpose": "garbage-collection-probe"}},
    }
    try:
        probe = ctx.api.create(CONFIGMAPSETS, body, ctx.namespace)
        uid = probe["metadata"]["uid"]
        outcome = _call(ctx, file, PROBE)
        if not v.expect(outcome.ok, outcome.describe(), _hint(outcome, file, ctx, PROBE)):
            return v
        children = _children(ctx, PROBE)
        owned = [cm for cm in children if _controller_ref(cm, uid)]
        names = ", ".join(cm["metadata"]["name"] for cm in children) or _("none")
        refs_ok = v.expect(
            bool(children) and len(owned) == len(children),
            _(
                "children of ConfigMapSet {name} ({children}): {owned} of {count} carry "
                "a controller ownerReference to it (apiVersion kubelab.dev/v1, kind ConfigMapSet, "
                "uid {uid})"
            ).format(name=PROBE, children=names, owned=len(owned), count=len(children), uid=uid),
            _(
                "Give every child metadata.ownerReferences with the parent's apiVersion, kind, "
                "name and uid, and controller: true."
            ),
        )
        blocking = [cm for cm in owned if _blocks_owner_deletion(cm, uid)]
        v.expect(
            refs_ok and len(blocking) == len(children),
            _(
                "children of ConfigMapSet {name} ({children}): {blocking} of {count} "
                "set blockOwnerDeletion: true in their ownerReference to it"
            ).format(name=PROBE, children=names, blocking=len(blocking), count=len(children)),
            _(
                "Set blockOwnerDeletion (block_owner_deletion in the Python client) to true in the "
                "ownerReference: a foreground deletion of the parent then waits until its children "
                "are gone, so no reader sees the parent deleted while its children live on."
            ),
        )
        ctx.api.delete(CONFIGMAPSETS, PROBE, ctx.namespace)
        left = _children(ctx, PROBE)
        if refs_ok:  # only children that name their owner can be collected
            left = ctx.wait(
                lambda: _children(ctx, PROBE),
                lambda found: not found,
                what=_("the garbage collector to delete the children of {name}").format(name=PROBE),
            )
        v.expect(
            not left,
            _("ConfigMapSet {name} was deleted but its children {children} remain").format(
                name=PROBE, children=", ".join(cm["metadata"]["name"] for cm in left)
            ),
            _(
                "Children without an ownerReference to their parent outlive it: the garbage "
                "collector deletes only objects whose owners are gone."
            ),
        )
    finally:
        _remove_probe(ctx)
    return v.ok(
        _(
            "children of {name} carried controller ownerReferences that block owner deletion "
            "and were collected"
        ).format(name=PROBE)
    )


@checks.check("idempotent", docs=DOCS_IDEMPOTENT)
def idempotent(ctx: Context) -> Verdict:
    """A second reconcile with nothing to do makes no writes (every non-read request counts)."""
    v = Verdict()
    ctx.need(CONFIGMAPSETS, PARENT, hint=_("Apply starter/configmapset.yaml first (task 1)."))
    file = controller_file()
    first = _call(ctx, file, PARENT)
    if not v.expect(
        first.ok,
        _("first reconcile: {error}").format(error=first.describe()),
        _hint(first, file, ctx, PARENT),
    ):
        return v
    parent, problems = _observed(ctx, PARENT)
    if not v.expect(
        not problems,
        _(
            "after one reconcile {parent} still has {problems}, so a "
            "second reconcile has work to do"
        ).format(parent=_declared(parent), problems="; ".join(problems)),
        _("Make reconcile converge in one call first (tasks reconcile and self-healing)."),
    ):
        return v
    second = _call(ctx, file, PARENT)
    if not v.expect(
        second.ok,
        _("second reconcile: {error}").format(error=second.describe()),
        _hint(second, file, ctx, PARENT),
    ):
        return v
    shown = ", ".join(f"{m} {p}" for m, p in second.writes[:3])
    v.expect(
        not second.writes,
        (
            _(
                "a second reconcile with nothing to do made {count} write(s): {writes} "
                "and {more} more"
            )
            if len(second.writes) > 3
            else _("a second reconcile with nothing to do made {count} write(s): {writes}")
        ).format(count=len(second.writes), writes=shown, more=len(second.writes) - 3),
        _(
            "Compare before you write: skip a child whose data already matches, and patch status "
            "only when children or observedGeneration changed. Needless writes wake every watcher "
            "and can make controllers fight."
        ),
    )
    return v.ok(_("a second reconcile with nothing to do made no writes"))
