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
            f"{ENV} names {path}, which does not exist",
            f"Point {ENV} at your controller.py (the lab notebook sets it for you), or unset it.",
        )
    local = Path.cwd() / "starter" / "controller.py"
    home = workspace.around(Path.cwd())
    # In a workspace its own copy is the learner's, never the course's (the starter, unchanged).
    lab_copy = LAB_COPY if home is None else home / "labs" / LAB_COPY.relative_to(paths.LABS_DIR)
    for path in (local, lab_copy):
        if path.is_file():
            return path.resolve()
    raise Missing(
        f"no controller.py found: looked for ./starter/controller.py and {lab_copy}",
        f"Write your controller in starter/controller.py of the lab, or set {ENV} to its path.",
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
        return (
            "reconcile must make one pass and return: no `while True`, no waiting for an event. "
            "A controller is level-triggered: it is called again whenever something changes, "
            f"and each call reads the state afresh. Time it with {run}."
        )
    if outcome.stage == "import":
        return f"Fix {file.name} so that Python can import it; {run} shows the whole traceback."
    if outcome.stage == "reconcile" and outcome.error.startswith("NotImplementedError"):
        return f"Write reconcile in {file.name}: fill in the gaps marked TODO."
    if outcome.stage == "reconcile":
        return f"Fix the error in reconcile; {run} shows the whole traceback."
    return "Check that the cluster answers (`kubelab cluster status`) and grade again."


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
            f"missing {', '.join(missing)}"
            + (f" ({', '.join(unlabelled)} without the label {LABEL}={name})" if unlabelled else "")
        )
    extra = sorted(labelled - set(wanted))
    if extra:
        problems.append(f"extra {', '.join(extra)}")
    for n in wanted:
        if n in labelled and (by_name[n].get("data") or {}) != data:
            problems.append(
                f"{n} holds {_short(by_name[n].get('data') or {})}, expected {_short(data)}"
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
    return f"ConfigMapSet {parent['metadata']['name']} (replicas {replicas}, data {_short(data)})"


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
            return False, "the configmapsets API does not answer"
        return True, "served"
    if crd is None:
        return False, "not installed"
    conditions = (crd.get("status") or {}).get("conditions") or []
    established = any(
        c.get("type") == "Established" and c.get("status") == "True" for c in conditions
    )
    versions = (crd.get("spec") or {}).get("versions") or []
    v1 = any(v.get("name") == "v1" and v.get("served") for v in versions)
    if established and v1:
        return True, "served"
    return False, f"Established {established}, version v1 served {v1}"


@checks.check("custom-resource", docs=DOCS_CRD)
def custom_resource(ctx: Context) -> Verdict:
    """The ConfigMapSet CRD is served, and ConfigMapSet demo declares 3 children holding blue."""
    v = Verdict()
    served, seen = _crd_served(ctx)
    v.expect(
        served,
        f"CustomResourceDefinition {CRD}: expected Established with version v1 served, "
        f"found {seen}",
        "Run `kubelab reset 01-control-loop` (or `grader.setup()` in the lab notebook): it "
        "installs the lab's CRD from labs/01-control-loop/cluster-setup/.",
    )
    if not served:
        return v
    parent = ctx.need(
        CONFIGMAPSETS,
        PARENT,
        hint=f"Apply starter/configmapset.yaml: `kubelab apply starter/configmapset.yaml --lab 01`"
        f" (or `kubectl apply -f starter/configmapset.yaml -n {ctx.namespace}`).",
    )
    replicas, data = _spec(parent)
    v.expect(
        replicas == REPLICAS,
        f"ConfigMapSet {PARENT} spec.replicas: expected {REPLICAS}, found {replicas}",
        f"Set spec.replicas to {REPLICAS} in starter/configmapset.yaml and apply it again.",
    )
    v.expect(
        data.get("color") == COLOR,
        f"ConfigMapSet {PARENT} spec.data: expected color: {COLOR}, found {_short(data)}",
        f"Set spec.data to a map with the key color and the value {COLOR}, and apply it again.",
    )
    return v.ok(
        f"{CRD} served; ConfigMapSet {PARENT} declares {REPLICAS} children holding color: {COLOR}"
    )


@checks.check("reconcile", docs=DOCS_CONTROLLER)
def reconcile(ctx: Context) -> Verdict:
    """After one call of the learner's reconcile, the children and status match demo's spec."""
    v = Verdict()
    ctx.need(CONFIGMAPSETS, PARENT, hint="Apply starter/configmapset.yaml first (task 1).")
    file = controller_file()
    outcome = _call(ctx, file, PARENT)
    if not v.expect(outcome.ok, outcome.describe(), _hint(outcome, file, ctx, PARENT)):
        return v
    parent, problems = _observed(ctx, PARENT)
    v.expect(
        not problems,
        f"after one reconcile of {_declared(parent)}: " + "; ".join(problems),
        f"Create the missing children {PARENT}-0 ... with the label {LABEL}={PARENT} and the "
        "parent's spec.data, and delete the ones that are not wanted.",
    )
    wanted = _spec(parent)[0]
    status = parent.get("status") or {}
    generation = parent["metadata"].get("generation")
    v.expect(
        status.get("children") == wanted and status.get("observedGeneration") == generation,
        f"ConfigMapSet {PARENT} status: expected children {wanted} and observedGeneration "
        f"{generation}, found children {status.get('children')} and observedGeneration "
        f"{status.get('observedGeneration')}",
        "Write status.children and status.observedGeneration (the parent's metadata.generation) "
        "with custom.patch_namespaced_custom_object_status: status is the observed state, and "
        "observedGeneration tells readers which spec it answers.",
    )
    return v.ok(f"one reconcile made {_declared(parent)} true, status written")


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
    parent = ctx.need(CONFIGMAPSETS, PARENT, hint="Apply starter/configmapset.yaml first (task 1).")
    file = controller_file()
    original: Json = dict(parent.get("spec") or {})
    before = {cm["metadata"]["name"] for cm in _children(ctx, PARENT)}
    _, data = _spec(parent)
    steps: list[tuple[str, Callable[[], None]]] = [
        ("scaled up to 5", lambda: _patch_spec(ctx, {**original, "replicas": 5})),
        (
            f"after {PARENT}-1 was deleted and {PARENT}-3's data changed",
            lambda: _disrupt(ctx, f"{PARENT}-1", f"{PARENT}-3"),
        ),
        (
            "scaled down to 2 with a new data key",
            lambda: _patch_spec(ctx, {"replicas": 2, "data": {**data, "size": "small"}}),
        ),
    ]
    failure: controller_harness.Outcome | None = None
    try:
        for what, act in steps:
            if failure is not None:
                hint = _hint(failure, file, ctx, PARENT)
                v.expect(False, f"{what}: not tried", hint)
                continue
            act()
            outcome = _call(ctx, file, PARENT)
            if not outcome.ok:
                failure = outcome
                v.expect(False, f"{what}: {outcome.describe()}", _hint(outcome, file, ctx, PARENT))
                continue
            now, problems = _observed(ctx, PARENT)
            v.expect(
                not problems,
                f"{what}, one reconcile left {_declared(now)} with " + "; ".join(problems),
                "Compare every time: create the children that are missing, replace the data of "
                "children that differ from spec.data, delete the ones beyond spec.replicas.",
            )
    finally:
        _restore(ctx, file, original, before, call=failure is None or failure.stage != "timeout")
    return v.ok("reconcile converged after scale up, a deleted and a drifted child, scale down")


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
        names = ", ".join(cm["metadata"]["name"] for cm in children) or "none"
        refs_ok = v.expect(
            bool(children) and len(owned) == len(children),
            f"children of ConfigMapSet {PROBE} ({names}): {len(owned)} of {len(children)} carry "
            f"a controller ownerReference to it (apiVersion kubelab.dev/v1, kind ConfigMapSet, "
            f"uid {uid})",
            "Give every child metadata.ownerReferences with the parent's apiVersion, kind, name "
            "and uid, and controller: true.",
        )
        blocking = [cm for cm in owned if _blocks_owner_deletion(cm, uid)]
        v.expect(
            refs_ok and len(blocking) == len(children),
            f"children of ConfigMapSet {PROBE} ({names}): {len(blocking)} of {len(children)} "
            "set blockOwnerDeletion: true in their ownerReference to it",
            "Set blockOwnerDeletion (block_owner_deletion in the Python client) to true in the "
            "ownerReference: a foreground deletion of the parent then waits until its children "
            "are gone, so no reader sees the parent deleted while its children live on.",
        )
        ctx.api.delete(CONFIGMAPSETS, PROBE, ctx.namespace)
        left = _children(ctx, PROBE)
        if refs_ok:  # only children that name their owner can be collected
            left = ctx.wait(
                lambda: _children(ctx, PROBE),
                lambda found: not found,
                what=f"the garbage collector to delete the children of {PROBE}",
            )
        v.expect(
            not left,
            f"ConfigMapSet {PROBE} was deleted but its children "
            f"{', '.join(cm['metadata']['name'] for cm in left)} remain",
            "Children without an ownerReference to their parent outlive it: the garbage "
            "collector deletes only objects whose owners are gone.",
        )
    finally:
        _remove_probe(ctx)
    return v.ok(
        f"children of {PROBE} carried controller ownerReferences that block owner deletion "
        "and were collected"
    )


@checks.check("idempotent", docs=DOCS_IDEMPOTENT)
def idempotent(ctx: Context) -> Verdict:
    """A second reconcile with nothing to do makes no writes (every non-read request counts)."""
    v = Verdict()
    ctx.need(CONFIGMAPSETS, PARENT, hint="Apply starter/configmapset.yaml first (task 1).")
    file = controller_file()
    first = _call(ctx, file, PARENT)
    if not v.expect(
        first.ok, f"first reconcile: {first.describe()}", _hint(first, file, ctx, PARENT)
    ):
        return v
    parent, problems = _observed(ctx, PARENT)
    if not v.expect(
        not problems,
        f"after one reconcile {_declared(parent)} still has " + "; ".join(problems) + ", so a "
        "second reconcile has work to do",
        "Make reconcile converge in one call first (tasks reconcile and self-healing).",
    ):
        return v
    second = _call(ctx, file, PARENT)
    if not v.expect(
        second.ok, f"second reconcile: {second.describe()}", _hint(second, file, ctx, PARENT)
    ):
        return v
    shown = ", ".join(f"{m} {p}" for m, p in second.writes[:3])
    more = f" and {len(second.writes) - 3} more" if len(second.writes) > 3 else ""
    v.expect(
        not second.writes,
        f"a second reconcile with nothing to do made {len(second.writes)} write(s): {shown}{more}",
        "Compare before you write: skip a child whose data already matches, and patch status "
        "only when children or observedGeneration changed. Needless writes wake every watcher "
        "and can make controllers fight.",
    )
    return v.ok("a second reconcile with nothing to do made no writes")
