"""Run a reconcile function as a controller does: watch, queue, reconcile, resync.

Lab 01's learners write one `reconcile(core, custom, namespace, name)`; something must call it.
This is that something, small enough to read: two watches (the parents, a custom resource, and
their children, ConfigMaps found by label) put the *name of a parent* on a queue; one worker takes
names off the queue and calls reconcile for each. Events only say which parent to look at, never
what to do: reconcile reads the whole state again (level-triggered). A periodic resync queues
every parent even when no event came, which is what heals an event that was missed.

`Loop` runs in background threads for at most `duration` seconds, so a notebook can act on the
cluster in later cells and then read `loop.log`; `run` is the same in the foreground.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from kubelab.api import default_kubeconfig
from kubelab.controller_harness import READS
from kubelab.kube import REQUEST_TIMEOUT, api_client

Reconcile = Callable[[client.CoreV1Api, client.CustomObjectsApi, str, str], None]
WATCH_WINDOW = 2  # seconds per watch request, so that stop() is honoured promptly


@dataclass(frozen=True)
class Entry:
    """One reconcile the loop ran: when, for which parent, why, and what it wrote."""

    elapsed: float
    parent: str
    reason: str  # the first event that queued it ("ConfigMap demo-1 DELETED", "resync", ...)
    writes: int
    error: str = ""

    def __str__(self) -> str:
        outcome = f"error: {self.error}" if self.error else f"{self.writes} write(s)"
        return f"{self.elapsed:6.1f}s  reconcile {self.parent:<10} ← {self.reason:<34} {outcome}"


class Loop:
    """A controller for one namespace: watches parents and children, calls reconcile per parent."""

    def __init__(
        self,
        reconcile: Reconcile,
        namespace: str,
        *,
        kubeconfig: str | Path | None = None,
        group: str = "kubelab.dev",
        version: str = "v1",
        plural: str = "configmapsets",
        label: str = "kubelab.dev/configmapset",
        resync: float = 15.0,
        duration: float = 300.0,
        on_entry: Callable[[Entry], None] | None = None,
    ) -> None:
        self.reconcile = reconcile
        self.namespace = namespace
        self.group, self.version, self.plural, self.label = group, version, plural, label
        self.resync = resync
        self.duration = duration
        self.on_entry = on_entry
        self.log: list[Entry] = []
        self._api = api_client(Path(kubeconfig or default_kubeconfig()).expanduser())
        self._core = client.CoreV1Api(self._api)
        self._custom = client.CustomObjectsApi(self._api)
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self._stop = threading.Event()
        self._busy = threading.Event()
        self._last_activity = time.monotonic()
        self._threads: list[threading.Thread] = []
        self._start = 0.0
        self._writes = 0

    # --- the watches ---------------------------------------------------------------------------

    def _list_parents(self) -> tuple[list[str], str]:
        found: Any = self._custom.list_namespaced_custom_object(
            self.group,
            self.version,
            self.namespace,
            self.plural,
            _request_timeout=REQUEST_TIMEOUT,
        )
        names = [p["metadata"]["name"] for p in found.get("items", [])]
        return names, str(found.get("metadata", {}).get("resourceVersion", ""))

    def _list_children(self) -> str:
        found = self._core.list_namespaced_config_map(
            self.namespace, label_selector=self.label, _request_timeout=REQUEST_TIMEOUT
        )
        return str((found.metadata.resource_version if found.metadata else "") or "")

    def _watch(self, kind: str) -> None:
        """Queue a parent's name for every event on parents or children, until stopped."""
        version = ""
        while not self._stop.is_set():
            try:
                if not version:  # (re)list: the watch resumes from the list's resourceVersion
                    version = (
                        self._list_children() if kind == "ConfigMap" else self._list_parents()[1]
                    )
                w = watch.Watch()  # type: ignore[no-untyped-call]
                if kind == "ConfigMap":
                    stream = w.stream(  # type: ignore[no-untyped-call]
                        self._core.list_namespaced_config_map,
                        self.namespace,
                        label_selector=self.label,
                        resource_version=version,
                        timeout_seconds=WATCH_WINDOW,
                    )
                else:
                    stream = w.stream(  # type: ignore[no-untyped-call]
                        self._custom.list_namespaced_custom_object,
                        self.group,
                        self.version,
                        self.namespace,
                        self.plural,
                        resource_version=version,
                        timeout_seconds=WATCH_WINDOW,
                    )
                for event in stream:
                    obj = event["object"]
                    meta = obj["metadata"] if isinstance(obj, dict) else obj.metadata.to_dict()
                    name = meta.get("name", "")
                    version = meta.get("resource_version") or meta.get("resourceVersion") or version
                    labels = meta.get("labels") or {}
                    parent = labels.get(self.label) if kind == "ConfigMap" else name
                    if parent:
                        self._queue.put((parent, f"{kind} {name} {event['type']}"))
                    if self._stop.is_set():
                        w.stop()  # type: ignore[no-untyped-call]
            except ApiException as err:
                if err.status == 410:  # our resourceVersion is too old: list again
                    version = ""
                else:
                    self._stop.wait(1)
            except Exception:  # a dropped connection: try again shortly, from where we were
                self._stop.wait(1)

    # --- the worker ----------------------------------------------------------------------------

    def _count_writes(self) -> None:
        """Count this loop's own non-read requests (its ApiClient only, not anyone else's)."""
        original = self._api.call_api

        def call_api(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if method.upper() not in READS:
                self._writes += 1
            return original(method, url, *args, **kwargs)

        self._api.call_api = call_api  # type: ignore[method-assign]

    def _work(self) -> None:
        next_resync = time.monotonic()
        deadline = self._start + self.duration
        while not self._stop.is_set() and time.monotonic() < deadline:
            if time.monotonic() >= next_resync:  # level-triggered: look at everything anyway
                reason = "resync" if self.log else "start: list every parent"
                next_resync = time.monotonic() + self.resync
                try:
                    for name in self._list_parents()[0]:
                        self._queue.put((name, reason))
                except Exception:
                    pass  # the next resync tries again
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self._busy.set()
            pending = {first[0]: first[1]}
            while True:  # collapse a burst of events into one reconcile per parent
                try:
                    name, reason = self._queue.get_nowait()
                except queue.Empty:
                    break
                pending.setdefault(name, reason)
            for name, reason in sorted(pending.items()):
                self._writes = 0
                error = ""
                try:
                    self.reconcile(self._core, self._custom, self.namespace, name)
                except Exception as err:
                    error = f"{type(err).__name__}: {err}".splitlines()[0][:120]
                entry = Entry(
                    round(time.monotonic() - self._start, 1), name, reason, self._writes, error
                )
                self.log.append(entry)
                if self.on_entry is not None:
                    self.on_entry(entry)
            self._last_activity = time.monotonic()
            self._busy.clear()
        self._stop.set()

    # --- control -------------------------------------------------------------------------------

    def start(self) -> Loop:
        """Start watching and reconciling in background threads; return self."""
        self._start = time.monotonic()
        self._count_writes()
        for target, args in ((self._watch, ("ConfigMapSet",)), (self._watch, ("ConfigMap",))):
            t = threading.Thread(target=target, args=args, daemon=True)
            t.start()
            self._threads.append(t)
        worker = threading.Thread(target=self._work, daemon=True)
        worker.start()
        self._threads.append(worker)
        return self

    @property
    def running(self) -> bool:
        """Tell whether the loop still runs (it stops by itself after `duration`)."""
        return not self._stop.is_set()

    def settle(self, quiet: float = 1.5, timeout: float = 30.0) -> list[Entry]:
        """Wait until nothing happened for `quiet` seconds (at most `timeout`); return the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running:
            idle = self._queue.empty() and not self._busy.is_set()
            if idle and time.monotonic() - self._last_activity >= quiet:
                break
            time.sleep(0.1)
        return list(self.log)

    def stop(self) -> list[Entry]:
        """Stop the threads, release the connection, and return the log."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=WATCH_WINDOW + REQUEST_TIMEOUT)
        self._api.close()  # type: ignore[no-untyped-call]
        return list(self.log)


def run(
    reconcile: Reconcile,
    namespace: str,
    *,
    duration: float,
    kubeconfig: str | Path | None = None,
    resync: float = 15.0,
    show: Callable[[str], None] | None = print,
) -> list[Entry]:
    """Run the controller in the foreground for `duration` seconds, showing each reconcile."""
    loop = Loop(
        reconcile,
        namespace,
        kubeconfig=kubeconfig,
        resync=resync,
        duration=duration,
        on_entry=(lambda e: show(str(e))) if show else None,
    ).start()
    try:
        while loop.running:
            time.sleep(0.2)
    finally:
        loop.stop()
    return list(loop.log)
