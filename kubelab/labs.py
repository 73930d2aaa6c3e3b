"""The labs, read from each ``labs/NN-slug/lab.yaml``: the one source of ids, order and points.

Graders, the CLI, nbgrader notebooks and saved progress all take a lab's tasks from here, so a
task's id, title and points are written down once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubelab import paths
from kubelab.errors import KubelabError
from kubelab.i18n import _

_LAB_ID = re.compile(r"^\d\d-[a-z0-9]+(-[a-z0-9]+)*$")
_TASK_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DEFAULT_TIMEOUT = 60.0  # seconds a grading run waits for the cluster to converge, unless lab.yaml


@dataclass(frozen=True)
class Task:
    """One graded requirement of a lab."""

    id: str
    title: str
    points: int


POD_SECURITY_LEVELS = ("privileged", "baseline", "restricted")  # weakest first


@dataclass(frozen=True)
class Fence:
    """How kubelab fences the lab's namespaces (lab.yaml's `fence`; see kubelab/fence).

    `pod_security` is the Pod Security level enforced from creation: `restricted` unless the lab
    says why it needs `baseline`. `resources` False leaves out kubelab's LimitRange and its quota
    on CPU and memory, for a lab whose own tasks are writing those. `rules` are RBAC rules a
    confined subject gets in this lab's namespaces beyond every lab's list (kubelab.access).
    """

    pod_security: str = "restricted"
    resources: bool = True
    rules: tuple[dict[str, Any], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Lab:
    """One lab: its id, title, default namespace and tasks in order."""

    id: str
    title: str
    namespace: str
    tasks: tuple[Task, ...]
    directory: Path
    setup: Path | None = None  # applied into the lab namespace when kubelab creates it
    cluster_setup: Path | None = None  # cluster-wide prerequisites (CRDs), applied before it
    fence: Fence = field(default_factory=Fence)
    # Seconds a grading run may wait for the cluster to converge (lab.yaml's `timeout`): longer
    # where real pods are slow to become Ready, e.g. a StatefulSet's postgres pods in order.
    timeout: float = DEFAULT_TIMEOUT

    @property
    def number(self) -> str:
        """Return the two-digit lab number ("02")."""
        return self.id[:2]

    @property
    def grader_module(self) -> str:
        """Return the import path of the lab's grader (``kubelab.graders.lab02_deployment``)."""
        return "kubelab.graders.lab" + self.id.replace("-", "_")

    @property
    def max_score(self) -> int:
        """Return the sum of the tasks' points."""
        return sum(t.points for t in self.tasks)

    def task(self, task_id: str) -> Task:
        """Return the task with this id, or raise a one-line error listing the valid ones."""
        for t in self.tasks:
            if t.id == task_id:
                return t
        valid = ", ".join(t.id for t in self.tasks)
        raise KubelabError(
            _("lab {lab} has no task {task}; its tasks are: {valid}").format(
                lab=self.id, task=repr(task_id), valid=valid
            )
        )


# libyaml's safe loader where PyYAML has it (its wheels do): the same documents, a tenth of the
# CPU, and `kubelab labs` reads every lab.yaml at start-up. The pure-Python one otherwise.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _fail(path: Path, problem: str) -> KubelabError:
    return KubelabError(f"{path}: {problem}")


def load(path: Path) -> Lab:
    """Read and validate one lab.yaml."""
    try:
        raw = yaml.load(path.read_text(), Loader=_SAFE_LOADER)  # safe: a SafeLoader
    except yaml.YAMLError as err:
        raise _fail(path, f"not valid YAML ({str(err).splitlines()[0]})") from err
    if not isinstance(raw, dict):
        raise _fail(path, "expected a mapping with id, title, namespace and tasks")
    lab_id = raw.get("id")
    if not isinstance(lab_id, str) or not _LAB_ID.match(lab_id) or lab_id != path.parent.name:
        raise _fail(path, f"id must be NN-slug and equal the folder name, got {lab_id!r}")
    title, namespace = raw.get("title"), raw.get("namespace")
    if not isinstance(title, str) or not title:
        raise _fail(path, "title is missing")
    if not isinstance(namespace, str) or not _DNS_LABEL.match(namespace):
        raise _fail(path, f"namespace must be a DNS label, got {namespace!r}")
    tasks: list[Task] = []
    for entry in raw.get("tasks") or []:
        if not isinstance(entry, dict):
            raise _fail(path, "each task needs id, title and points")
        tid, ttitle, points = entry.get("id"), entry.get("title"), entry.get("points")
        if not isinstance(tid, str) or not _TASK_ID.match(tid):
            raise _fail(path, f"task id must be kebab-case, got {tid!r}")
        if not isinstance(ttitle, str) or not isinstance(points, int) or points < 1:
            raise _fail(path, f"task {tid} needs a title and a positive whole number of points")
        tasks.append(Task(tid, ttitle, points))
    if not tasks or len({t.id for t in tasks}) != len(tasks):
        raise _fail(path, "tasks must be a non-empty list with unique ids")
    setup, cluster_setup = raw.get("setup"), raw.get("cluster_setup")
    for key, value in (("setup", setup), ("cluster_setup", cluster_setup)):
        if value is not None and not (isinstance(value, str) and (path.parent / value).exists()):
            raise _fail(path, f"{key} must name a file or folder of the lab, got {value!r}")
    timeout = raw.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise _fail(path, f"timeout must be a positive number of seconds, got {timeout!r}")
    return Lab(
        fence=_fence(path, raw.get("fence")),
        timeout=float(timeout),
        id=lab_id,
        title=title,
        namespace=namespace,
        tasks=tuple(tasks),
        directory=path.parent,
        setup=(path.parent / setup) if isinstance(setup, str) else None,
        cluster_setup=(path.parent / cluster_setup) if isinstance(cluster_setup, str) else None,
    )


def _fence(path: Path, raw: object) -> Fence:
    if raw is None:
        return Fence()
    if not isinstance(raw, dict):
        raise _fail(path, "fence must be a mapping (pod-security, why, resources, rules)")
    level = raw.get("pod-security", "restricted")
    if level not in POD_SECURITY_LEVELS[1:]:
        raise _fail(path, f"fence.pod-security must be restricted or baseline, got {level!r}")
    if level != "restricted" and not raw.get("why"):
        raise _fail(path, "fence.why must say why the lab needs a level below restricted")
    resources, rules = raw.get("resources", True), raw.get("rules") or []
    if not isinstance(resources, bool):
        raise _fail(path, "fence.resources must be true or false")
    if not isinstance(rules, list) or not all(
        isinstance(r, dict) and r.get("verbs") and r.get("resources") for r in rules
    ):
        raise _fail(path, "fence.rules must be RBAC rules (apiGroups, resources, verbs)")
    return Fence(pod_security=level, resources=resources, rules=tuple(rules))


def all_labs(root: Path | None = None) -> list[Lab]:
    """Return every lab in course order."""
    base = root or paths.LABS_DIR
    return [load(p) for p in sorted(base.glob("[0-9][0-9]-*/lab.yaml"))]


def find(name: str, root: Path | None = None) -> Lab:
    """Return the lab named by its id or its number ("02-deployment" or "02" or "2")."""
    labs = all_labs(root)
    wanted = name.strip()
    if wanted.isdigit():
        wanted = f"{int(wanted):02d}"
    for lab in labs:
        if wanted in (lab.id, lab.number):
            return lab
    known = ", ".join(lab.id for lab in labs) or _("none yet")
    raise KubelabError(
        _("unknown lab {name}; the labs are: {known} (see `kubelab labs`)").format(
            name=repr(name), known=known
        )
    )
