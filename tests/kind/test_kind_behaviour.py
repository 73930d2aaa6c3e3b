"""What only a real cluster shows: an HPA scaled by CPU the load Job burns, and lab 09's planted
faults failing the way a kubelet fails them, with the grader naming each cause."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from kubelab import api, labs, load
from kubelab.objects import dig
from tests.conftest import Kubectl
from tests.lab_attempt import LabAttempt


def test_lab03_hpa_scales_from_cpu_burnt_by_the_load_job(kubectl: Kubectl, client: api.Api) -> None:
    lab = labs.find("03-hpa-pdb")
    attempt = LabAttempt(lab, kubectl, client)
    try:
        attempt.apply(lab.directory / "solution")
        attempt.run("rollout", "status", "deployment/demo-web", "--timeout=150s", timeout=160)
        report = attempt.grade(only=["scales-under-load"], timeout=300)
        [check] = report.checks
        assert check.passed, check.message
        # The load was the kind branch's: a Job calling /burn, not simulated usage.
        assert "calling demo-web:80/burn" in check.message, check.message
        pods = client.list(api.PODS, attempt.name, labels="app=demo-web")
        assert not [p for p in pods if load.USAGE_CPU in (p["metadata"].get("annotations") or {})]
        # ...and the grader removed it: the Job is gone or going.
        jobs = client.list(load.JOBS, attempt.name)
        assert all(dig(j, "metadata", "deletionTimestamp") for j in jobs), jobs
    finally:
        attempt.delete()


def _pods(client: api.Api, ns: str, app: str) -> list[api.Json]:
    return client.list(api.PODS, ns, labels=f"app={app}")


def _statuses(pod: api.Json) -> list[api.Json]:
    return list(dig(pod, "status", "containerStatuses") or [])


def _waiting_reason(pod: api.Json) -> str:
    states = [c.get("state") or {} for c in _statuses(pod)]
    return next((str(s["waiting"].get("reason")) for s in states if "waiting" in s), "")


def _until(what: str, probe: Callable[[], bool], timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f}s"
        time.sleep(2)


def test_lab09_faults_fail_as_a_kubelet_fails_them(kubectl: Kubectl, client: api.Api) -> None:
    lab = labs.find("09-fault-drills")
    attempt = LabAttempt(lab, kubectl, client)  # plants the four faults, as `kubelab reset` does
    ns = attempt.name
    try:
        # shop-web: a tag that was never built, so the kubelet cannot pull it.
        _until(
            "shop-web's pods fail to pull kubelab/demo-web:v1.1",
            lambda: any(
                _waiting_reason(p) in ("ErrImagePull", "ImagePullBackOff")
                for p in _pods(client, ns, "shop-web")
            ),
        )

        # shop-api: demo-web exits at start on PORT=80800; the kubelet restarts it, and the
        # previous container's log says why.
        message = 'demo-web: PORT="80800" is not a port number'

        def previous_log_says_why() -> bool:
            restarted = [
                p["metadata"]["name"]
                for p in _pods(client, ns, "shop-api")
                if any((c.get("restartCount") or 0) >= 1 for c in _statuses(p))
            ]
            return any(
                message in kubectl("-n", ns, "logs", pod, "--previous", check=False).stdout
                for pod in restarted
            )

        _until(
            "`kubectl logs --previous` of a restarted shop-api pod to say why",
            previous_log_says_why,
        )
        # shop-search: running, but its readiness probe asks /health, which demo-web does not
        # serve, so it never becomes Ready and the Service has no ready endpoints.
        _until(
            "shop-search's containers run",
            lambda: all(
                "running" in (c.get("state") or {})
                for p in _pods(client, ns, "shop-search")
                for c in dig(p, "status", "containerStatuses") or [{}]
            ),
        )

        # The first probes may find the server not yet listening ("connection refused"); the
        # lesson is the 404 a listening server gives for a path it does not serve.
        def probe_failed_with_404() -> bool:
            events = kubectl("-n", ns, "get", "events", "-o", "json").stdout
            return any(
                e.get("reason") == "Unhealthy"
                and "shop-search" in e["involvedObject"]["name"]
                and "404" in (e.get("message") or "")
                for e in json.loads(events)["items"]
            )

        _until(
            "the kubelet to report shop-search's readiness probe failing with 404",
            probe_failed_with_404,
        )
        assert not any(
            c.get("ready")
            for p in _pods(client, ns, "shop-search")
            for c in dig(p, "status", "containerStatuses") or []
        )
        # shop-worker: pinned to the NotReady drill node, never scheduled.
        for p in _pods(client, ns, "shop-worker"):
            assert dig(p, "status", "phase") == "Pending" and not dig(p, "spec", "nodeName"), p
        # The grader names each cause, as the kubelet reported it.
        report = attempt.grade(timeout=60)
        failed = {c.id: c.message for c in report.checks if not c.passed}
        assert set(failed) == {t.id for t in lab.tasks}, failed
        assert "ErrImagePull" in failed["image-pull"] or "ImagePullBackOff" in failed["image-pull"]
        assert "CrashLoopBackOff" in failed["crash-loop"] or "exit" in failed["crash-loop"].lower()
    finally:
        attempt.delete()
