"""What a check may do: read the lab's namespace, ask the server, wait with a deadline.

Checks read; the few that must act to observe behaviour (put load on pods, drive a learner's
controller) say so in their docstring and undo what they did. Reads go through `kubelab.api`
(one-line errors); waits share the run's deadline and show what they wait for, so a slow rollout
is visible and bounded.

Two kinds of wait: `wait` returns what it last saw, for behaviour whose absence is the verdict
(did the HPA scale under load?); `converge` raises `wait.Timeout` at the deadline, for a state the
cluster has not settled into yet (are the pods Ready, has the controller counted them?): judging
half-settled state would score a busy cluster as a wrong answer, so the runner reports such a
check as "not converged" instead.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from kubelab import api, cluster_record, wait
from kubelab.api import Json, Resource
from kubelab.grading.checks import Missing
from kubelab.grading.stuck import Stuck
from kubelab.i18n import _
from kubelab.objects import dig, owned_by, selector_query

T = TypeVar("T")
StuckProbe = Callable[[], Stuck | None]  # e.g. `ctx.stuck_in(name)`: a pod that will not start
Substrate = Literal["sim", "kind", "unknown"]
SUBSTRATE_CONFIGMAP = cluster_record.CONFIGMAP  # written by `kubelab cluster up`


class Context:
    """The lab namespace, the API, and the time left, as one check sees them."""

    def __init__(
        self,
        client: api.Api,
        namespace: str,
        *,
        deadline: float,
        on_wait: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.api = client
        self.namespace = namespace
        self.deadline = deadline
        self.timeout = timeout  # the run's whole budget, for messages
        self._on_wait = on_wait or (lambda _what: None)
        self._record: dict[str, str] | None = None
        # Set when a wait stopped early at a pod that will not start; the runner reports it.
        self.stuck: Stuck | None = None
        # The namespaces a missing object was found in instead, by (kind, name) (the runner's).
        self.elsewhere: dict[tuple[str, str], list[str]] = {}

    @property
    def substrate(self) -> Substrate:
        """Tell which cluster this is: "sim" (simulated pods, no traffic), "kind", or "unknown".

        Checks that need real traffic (kind) or simulated metrics (sim) branch on this; "unknown"
        (a cluster kubelab did not set up) gets only the checks that read state.
        """
        value = self.record.get(cluster_record.SUBSTRATE_KEY)
        if value == "sim":
            return "sim"
        return "kind" if value == "kind" else "unknown"

    @property
    def gateway_url(self) -> str:
        """Where the cluster's Gateway answers from here (kind traffic checks send requests)."""
        return cluster_record.gateway_url(self.record)

    @property
    def record(self) -> dict[str, str]:
        """The cluster's own record (`kubelab.cluster_record`), read once per run."""
        if self._record is None:
            self._record = cluster_record.read(self.api)
        return self._record

    def get(self, res: Resource, name: str) -> Json | None:
        """Return one object from the lab namespace, or None."""
        return self.api.get(res, name, self.namespace if res.namespaced else None)

    def need(self, res: Resource, name: str, *, hint: str | None = None) -> Json:
        """Return one object, or fail the check saying it is missing and how to create it."""
        obj = self.get(res, name)
        if obj is None:
            missing = (
                _("{kind} {name} not found in namespace {namespace}")
                if res.namespaced
                else _("{kind} {name} not found")
            )
            raise Missing(
                missing.format(kind=res.kind, name=name, namespace=self.namespace),
                hint
                or _(
                    "Create {kind} {name}: apply your manifests with "
                    "`kubectl apply -k <folder> -n {namespace}`, then check again."
                ).format(kind=res.kind, name=name, namespace=self.namespace),
                resource=res,
                name=name,
            )
        return obj

    def list(self, res: Resource, *, labels: str | None = None) -> list[Json]:
        """Return the objects of a kind in the lab namespace, optionally by label selector."""
        items = self.api.list(res, self.namespace if res.namespaced else None, labels=labels)
        return sorted(items, key=lambda o: str(o.get("metadata", {}).get("name", "")))

    def pods_of(self, deployment: Json) -> builtins.list[Json]:
        """Return a Deployment's pods that are not being deleted (owned through its ReplicaSets)."""
        query = selector_query(dig(deployment, "spec", "selector"))
        if query is None:
            return []
        uids = {
            rs["metadata"]["uid"]
            for rs in self.list(api.REPLICASETS, labels=query)
            if owned_by(rs, deployment["metadata"]["uid"])
        }
        return [
            p
            for p in self.list(api.PODS, labels=query)
            if any(owned_by(p, u) for u in uids) and not dig(p, "metadata", "deletionTimestamp")
        ]

    def dry_run_create(self, res: Resource, body: Json) -> Json:
        """Ask the server what creating `body` would give, without creating it."""
        return self.api.create(res, body, self.namespace if res.namespaced else None, dry_run=True)

    def remaining(self) -> float:
        """Return the seconds left before the run's deadline."""
        return max(self.deadline - time.monotonic(), 0.0)

    def stuck_in(self, deployment: str) -> StuckProbe:
        """Return a probe for a wait: the first pod of the Deployment's current revision that
        cannot pull, crash-loops or cannot be scheduled (waiting would only reach the deadline)."""
        from kubelab.grading import stuck

        return lambda: stuck.in_rollout(self, deployment)

    def stuck_in_set(self, statefulset: str) -> StuckProbe:
        """The same probe for a StatefulSet: the first stuck pod of its update revision."""
        from kubelab.grading import stuck

        return lambda: stuck.in_statefulset(self, statefulset)

    def _stopped(self, stuck: StuckProbe | None) -> bool:
        self.stuck = stuck() if stuck else None
        return self.stuck is not None

    def wait(
        self,
        probe: Callable[[], T],
        done: Callable[[T], bool],
        *,
        what: str,
        interval: float = 0.5,
        stuck: StuckProbe | None = None,
    ) -> T:
        """Poll until `done(probe())`, at most until the deadline; return the last value seen.

        With `stuck`, stop as soon as it finds a pod that will not start (kept in `self.stuck`)."""
        first = probe()
        if done(first) or self.remaining() <= 0 or self._stopped(stuck):
            return first
        self._on_wait(what)
        return wait.until(
            probe,
            lambda value: done(value) or self._stopped(stuck),
            timeout=self.remaining(),
            interval=interval,
            what=what,
            raise_on_timeout=False,
        )

    def converge(
        self,
        probe: Callable[[], T],
        done: Callable[[T], bool],
        *,
        what: str,
        interval: float = 0.5,
        stuck: StuckProbe | None = None,
    ) -> T:
        """Poll until `done(probe())` and return that value; at the deadline raise `wait.Timeout`
        (the runner's "not converged": nothing judged, nothing scored, grade again). With `stuck`,
        raise `Stuck` as soon as it finds a pod that will not start: the check fails naming it."""
        first = probe()
        if done(first):
            return first
        self._on_wait(what)
        value = wait.until(
            probe,
            lambda v: done(v) or self._stopped(stuck),
            timeout=self.remaining(),
            interval=interval,
            what=what,
        )
        if self.stuck is not None and not done(value):
            raise self.stuck
        return value
