"""What the course needs from a cluster, checked through the API: `kubelab cluster check`.

Every requirement becomes one `Finding` (a row of the table). A cluster that does not answer, or
refuses the credentials, is no table at all: one line, exit 2 (`ClusterUnreachable`).
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Callable

from kubelab import api
from kubelab.api import Json
from kubelab.cluster import parts
from kubelab.cluster.findings import MISSING, NO_ACCESS, OK, WARN, Finding
from kubelab.i18n import N_, _
from kubelab.objects import dig

TARGET_MINOR = 36  # the Kubernetes minor the course is built and tested on (sim's v1.36)
# What the labs use that older servers lack: (first minor that has it, what it is).
NEWER_FEATURES = (
    (28, N_("`kubectl auth whoami` (SelfSubjectReview v1)")),
    (29, N_("API Priority and Fairness v1")),
    (30, N_("ValidatingAdmissionPolicy v1")),
    (31, N_("PodDisruptionBudget unhealthyPodEvictionPolicy as GA (lab 03)")),
)
PSA_LABEL = "pod-security.kubernetes.io/enforce"
METRICS_GRACE = 20.0  # seconds a registered metrics API may take to answer (a fresh metrics-server)


class Checker:
    """Runs the requirement checks over one connection."""

    def __init__(self, client: api.Api) -> None:
        self.target = parts.Target(client)
        self.api = client
        self.user = "?"
        self.admin = False

    # --- who, where ------------------------------------------------------------------------------

    def reach(self) -> Finding:
        """Reach the API server and learn who these credentials are (raises when it cannot)."""
        try:
            review = self.api.request(
                "POST",
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            )
            self.user = str(dig(review, "status", "userInfo", "username", default="?"))
        except api.ApiError as err:
            if err.status == 401:
                raise api.ClusterUnreachable(
                    _(
                        "the cluster at {server} does not accept these credentials (401):"
                        " log in again, or pick another --kubeconfig/--context"
                    ).format(server=self.api.server)
                ) from err
            self.user = _("unknown (no SelfSubjectReview)")
        return Finding(
            _("API server and credentials"),
            _("{server} as {user}").format(server=self.api.server, user=self.user),
            OK,
        )

    def version(self) -> Finding:
        """Server version against the course's 1.36."""
        name = _("Kubernetes version")
        try:
            info = self.api.request("GET", "/version")
        except api.ApiError as err:
            return Finding(name, _("not readable ({status})").format(status=err.status), WARN)
        git = str(info.get("gitVersion", "?"))
        match = re.match(r"v?(\d+)\.(\d+)", git)
        if not match:
            return Finding(name, git, WARN, _("cannot tell the version"))
        major, minor = int(match[1]), int(match[2])
        if (major, minor) >= (1, TARGET_MINOR):
            return Finding(name, git, OK)
        lacking = [_(what) for since, what in NEWER_FEATURES if minor < since]
        version = f"1.{TARGET_MINOR}"
        todo = (
            _("older than the course's {version}: untested; missing: {features}").format(
                version=version, features=", ".join(lacking)
            )
            if lacking
            else _("older than the course's {version}: untested").format(version=version)
        )
        return Finding(name, git, WARN, todo)

    def _can(self, verb: str, resource: str, group: str = "", namespace: str = "") -> bool:
        attrs = {"verb": verb, "resource": resource, "group": group}
        if namespace:
            attrs["namespace"] = namespace
        review = self.api.request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attrs},
            },
        )
        return bool(dig(review, "status", "allowed", default=False))

    def cluster_admin(self) -> Finding:
        """Whether these credentials may do anything anywhere (prepare and workshops need it)."""
        name = _("cluster-admin credentials")
        try:
            self.admin = self._can("*", "*", "*")
        except api.ApiError as err:
            return Finding(name, _("cannot tell ({status})").format(status=err.status), WARN)
        if self.admin:
            return Finding(name, _("yes ({user})").format(user=self.user), OK)
        return Finding(
            name,
            _("no: {user} has only what RBAC grants it").format(user=self.user),
            WARN,
            _(
                "prepare and workshops: needs cluster-admin; ask the cluster's admin to run"
                " `kubelab cluster prepare` and `kubelab workshop up`"
            ),
        )

    def rbac(self) -> Finding:
        """RBAC served and enforced (a stranger is refused)."""
        name = _("RBAC authorization")
        if not self.target.discovery.group_version("rbac.authorization.k8s.io/v1").served:
            return Finding(
                name, _("API not served"), MISSING, _("enable --authorization-mode=RBAC")
            )
        if not self.admin:
            return Finding(name, _("on (these credentials are limited)"), OK)
        stranger = f"kubelab-check-{uuid.uuid4().hex[:8]}"
        try:
            review = self.api.create(
                api.SUBJECTACCESSREVIEWS,
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": {
                        "user": stranger,
                        "resourceAttributes": {
                            "verb": "list",
                            "resource": "secrets",
                            "namespace": "kube-system",
                        },
                    },
                },
            )
        except api.ApiError as err:
            return Finding(
                name,
                _("API served; enforcement unknown ({status})").format(status=err.status),
                WARN,
            )
        if dig(review, "status", "allowed", default=False):
            return Finding(
                name,
                _("served, not enforced: anyone may read kube-system's Secrets"),
                MISSING,
                _("run the API server with --authorization-mode=Node,RBAC (lab 06 grades RBAC)"),
            )
        return Finding(name, _("on (a stranger is refused)"), OK)

    # --- what the labs use --------------------------------------------------------------------

    def nodes(self) -> Finding:
        """Ready nodes to schedule on."""
        name = _("Ready nodes")
        try:
            nodes = self.api.list(api.NODES)
        except api.ApiError as err:
            return _not_readable(name, err)
        ready = sum(
            1
            for n in nodes
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in dig(n, "status", "conditions", default=[]) or []
            )
        )
        if not ready:
            return Finding(
                name,
                _("{ready} of {total}").format(ready=0, total=len(nodes)),
                MISSING,
                _("no node takes pods"),
            )
        return Finding(name, _("{ready} of {total}").format(ready=ready, total=len(nodes)), OK)

    def metrics(self) -> Finding:
        """metrics.k8s.io served (the HPA lab scales on it)."""
        name = _("metrics API (metrics.k8s.io)")
        gv = self.target.discovery.group_version("metrics.k8s.io/v1beta1")
        deadline = time.monotonic() + METRICS_GRACE
        while gv.status == 503 and time.monotonic() < deadline:  # metrics-server (re)starting
            time.sleep(1)
            self.target.discovery.forget()
            gv = self.target.discovery.group_version("metrics.k8s.io/v1beta1")
        if gv.served:
            return Finding(name, _("served"), OK)
        if gv.status == 503:
            return Finding(
                name,
                _("registered, not available (503)"),
                MISSING,
                _("metrics-server is not answering: `kubectl -n kube-system get pods`"),
            )
        return Finding(name, _("not served"), MISSING, _("install metrics-server (lab 03's HPA)"))

    def default_storage_class(self) -> Finding:
        """A default StorageClass (claims without a class, lab 04)."""
        name = _("default StorageClass")
        try:
            classes = self.api.list(api.STORAGECLASSES)
        except api.ApiError as err:
            return _not_readable(name, err)
        defaults = [c for c in classes if parts.is_default_class(c)]
        if not defaults:
            return Finding(
                name,
                _("none"),
                MISSING,
                _("mark one: {command}").format(
                    command=f"kubectl annotate storageclass NAME {parts.DEFAULT_CLASS}=true"
                ),
            )
        shown = ", ".join(
            f"{dig(c, 'metadata', 'name')} ({c.get('provisioner')})" for c in defaults
        )
        return Finding(name, shown, OK if len(defaults) == 1 else WARN)

    def pod_security(self) -> Finding:
        """Pod Security admission refuses a privileged pod where enforce=restricted."""
        name = _("Pod Security admission")
        ns = f"kubelab-check-{uuid.uuid4().hex[:8]}"
        try:
            self.api.create(
                api.NAMESPACES,
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": ns,
                        "labels": {PSA_LABEL: "restricted", parts.MANAGED_BY: parts.KUBELAB},
                    },
                },
            )
        except api.ApiError as err:
            return _not_readable(name, err, _("a scratch namespace"))
        try:
            return self._privileged_pod(name, ns)
        finally:
            with contextlib.suppress(api.ApiError):
                self.api.delete(api.NAMESPACES, ns)

    def _privileged_pod(self, name: str, ns: str) -> Finding:
        pod: Json = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "privileged", "namespace": ns},
            "spec": {
                "automountServiceAccountToken": False,
                "containers": [
                    {
                        "name": "c",
                        "image": "kubelab/demo-web:v1",
                        "securityContext": {"privileged": True},
                    }
                ],
            },
        }
        deadline = time.monotonic() + 20
        while True:
            try:
                self.api.create(api.PODS, pod, ns, dry_run=True)
            except api.ApiError as err:
                text = str(err)
                if "PodSecurity" in text or "violates" in text:
                    return Finding(name, _("enforced (restricted refuses a privileged pod)"), OK)
                if "service account" in text.lower() and time.monotonic() < deadline:
                    time.sleep(0.5)  # the namespace's default ServiceAccount is not made yet
                    continue
                return Finding(name, _("cannot tell: {reason}").format(reason=text), WARN)
            return Finding(
                name,
                _("not enforced: a privileged pod passes enforce=restricted"),
                MISSING,
                _("enable the PodSecurity admission plugin (lab 06 and 08 rely on it)"),
            )

    def served(self, name: str, api_version: str, plural: str, why: str) -> Finding:
        """One API the course creates objects of."""
        gv = self.target.discovery.group_version(api_version)
        if gv.has(plural):
            return Finding(name, _("{api} served").format(api=api_version), OK)
        return Finding(
            name,
            _("{api} {resource} not served").format(api=api_version, resource=plural),
            MISSING,
            why,
        )

    # --- all of it ------------------------------------------------------------------------------

    def run(self) -> list[Finding]:
        """Every row of the table, in order (raises ClusterUnreachable when nothing answers)."""
        rows = [self.reach(), self.version(), self.cluster_admin(), self.rbac(), self.nodes()]
        checks: list[Callable[[], Finding]] = [
            self.metrics,
            self.default_storage_class,
            self.pod_security,
            lambda: self.served(
                _("ValidatingAdmissionPolicy API"),
                "admissionregistration.k8s.io/v1",
                "validatingadmissionpolicies",
                _("needs Kubernetes 1.30+ (the course's admission policy)"),
            ),
            lambda: self.served(
                _("flow control (APF) API"),
                "flowcontrol.apiserver.k8s.io/v1",
                "flowschemas",
                _("needs Kubernetes 1.29+ (the course's API Priority and Fairness objects)"),
            ),
        ]
        rows += [c() for c in checks]
        rows += [parts.check_part(self.target, p) for p in parts.PARTS]
        return rows


def _not_readable(name: str, err: api.ApiError, what: str = "") -> Finding:
    if err.status == 403:
        todo = (
            _("needs cluster-admin to check (it creates {what})").format(what=what)
            if what
            else _("needs cluster-admin to check")
        )
        return Finding(name, _("not readable"), NO_ACCESS, todo)
    return Finding(name, _("cannot tell: {reason}").format(reason=err), WARN)


def check(client: api.Api) -> list[Finding]:
    """Check everything the course needs on the cluster `client` reaches."""
    return Checker(client).run()
