"""Reading and writing the cluster as plain JSON, with API errors turned into one line, here only.

Graders, lab set-up and `kubelab apply` talk to the API server through this module. It uses the
official client for kubeconfig loading, authentication and transport, but not its typed models:
graders read fields by path, the same code works for custom resources (Gateway API), and a
`kubelab check` starts faster. HTTP errors become `ApiError` with a one-line message; a cluster
that does not answer becomes `ClusterUnreachable`, a `KubelabError` the CLI prints as one line.
"""

from __future__ import annotations

import builtins
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client, config

from kubelab import cluster_files
from kubelab.errors import KubelabError
from kubelab.i18n import _
from kubelab.kube import REQUEST_TIMEOUT, configuration, load_problem

Json = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    """One kind of object the API serves: where it lives and what it is called."""

    api_version: str
    plural: str
    kind: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """Return the REST path of the collection, or of one object when `name` is given."""
        group = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        where = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{group}{where}/{self.plural}" + (f"/{name}" if name else "")


NAMESPACES = Resource("v1", "namespaces", "Namespace", namespaced=False)
NODES = Resource("v1", "nodes", "Node", namespaced=False)
PODS = Resource("v1", "pods", "Pod")
SERVICES = Resource("v1", "services", "Service")
CONFIGMAPS = Resource("v1", "configmaps", "ConfigMap")
SECRETS = Resource("v1", "secrets", "Secret")
SERVICEACCOUNTS = Resource("v1", "serviceaccounts", "ServiceAccount")
PVCS = Resource("v1", "persistentvolumeclaims", "PersistentVolumeClaim")
LIMITRANGES = Resource("v1", "limitranges", "LimitRange")
RESOURCEQUOTAS = Resource("v1", "resourcequotas", "ResourceQuota")
DEPLOYMENTS = Resource("apps/v1", "deployments", "Deployment")
REPLICASETS = Resource("apps/v1", "replicasets", "ReplicaSet")
STATEFULSETS = Resource("apps/v1", "statefulsets", "StatefulSet")
DAEMONSETS = Resource("apps/v1", "daemonsets", "DaemonSet")
JOBS = Resource("batch/v1", "jobs", "Job")
CRONJOBS = Resource("batch/v1", "cronjobs", "CronJob")
ENDPOINTSLICES = Resource("discovery.k8s.io/v1", "endpointslices", "EndpointSlice")
HPAS = Resource("autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
PDBS = Resource("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget")
ROLES = Resource("rbac.authorization.k8s.io/v1", "roles", "Role")
ROLEBINDINGS = Resource("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding")
NETWORKPOLICIES = Resource("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy")
SUBJECTACCESSREVIEWS = Resource(
    "authorization.k8s.io/v1", "subjectaccessreviews", "SubjectAccessReview", namespaced=False
)
GATEWAYCLASSES = Resource(
    "gateway.networking.k8s.io/v1", "gatewayclasses", "GatewayClass", namespaced=False
)
GATEWAYS = Resource("gateway.networking.k8s.io/v1", "gateways", "Gateway")
HTTPROUTES = Resource("gateway.networking.k8s.io/v1", "httproutes", "HTTPRoute")
CRDS = Resource(
    "apiextensions.k8s.io/v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    namespaced=False,
)
STORAGECLASSES = Resource("storage.k8s.io/v1", "storageclasses", "StorageClass", namespaced=False)
PRIORITYCLASSES = Resource(
    "scheduling.k8s.io/v1", "priorityclasses", "PriorityClass", namespaced=False
)


class ApiError(KubelabError):
    """The API server refused a request; `str(err)` is one line a learner can act on."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class ClusterUnreachable(KubelabError):
    """No API server answers at the kubeconfig's address, or there is no usable kubeconfig.

    `no_answer` is true when a kubeconfig was read but nothing answered at its address."""

    def __init__(self, message: str, *, no_answer: bool = False) -> None:
        super().__init__(message)
        self.no_answer = no_answer


def describe(status: int, reason: str, server_message: str) -> str:
    """Turn an API server error into one line that says what happened and what to do."""
    text = " ".join(server_message.split()) or reason
    if status == 401:
        return _("the cluster does not accept your credentials (401): is KUBECONFIG the right one?")
    if status == 403:
        return _("not allowed (403): {text}").format(text=text)
    if status == 404:
        return _("not found (404): {text}").format(text=text)
    if status == 409:
        return _("conflict (409): {text}; re-read the object and try again").format(text=text)
    if status == 422:
        return _("invalid (422): {text}").format(text=text)
    if status == 429:
        return _("refused for now (429): {text}").format(text=text)
    return _("the API server answered {status} {reason}: {text}").format(
        status=status, reason=reason, text=text
    )


def default_kubeconfig() -> str:
    """Return the kubeconfig to use: $KUBECONFIG, else the course cluster's, else ~/.kube/config."""
    explicit = os.environ.get("KUBECONFIG")
    if explicit:
        return explicit
    found = cluster_files.recorded_kubeconfig(cluster_files.default_cluster_name())
    if found is not None:
        return str(found)
    return str(Path.home() / ".kube" / "config")


def _named(subject: str, problem: str) -> str:
    """Join "the kubeconfig FILE," and what is wrong with it ("which is empty") into one line."""
    # TRANSLATORS: {subject} is "the kubeconfig FILE," or "KUBECONFIG names FILE,"; {problem}
    # is a clause such as "which is empty".
    return _("{subject} {problem}").format(subject=subject, problem=problem)


class Api:
    """A connection to one cluster that speaks JSON dicts and raises one-line errors."""

    def __init__(self, kubeconfig: str | Path | None = None) -> None:
        from_env = not kubeconfig and bool(os.environ.get("KUBECONFIG"))
        self.kubeconfig = str(kubeconfig) if kubeconfig else default_kubeconfig()
        first = self.kubeconfig.split(os.pathsep)[0]
        # Name where the file came from: "start the cluster" is the wrong advice for a typo in
        # KUBECONFIG or a kubeconfig without a context.
        named = (_("KUBECONFIG names {file},") if from_env else _("the kubeconfig {file},")).format(
            file=first
        )
        path = Path(first).expanduser()
        if not path.exists():
            if from_env or kubeconfig:
                raise ClusterUnreachable(
                    _named(named, _("which does not exist"))
                    + (
                        _(" (`kubelab cluster env` prints the course cluster's)")
                        if from_env
                        else ""
                    )
                )
            raise ClusterUnreachable(
                _(
                    "no kubeconfig at {file}: start the course cluster with `kubelab cluster up`"
                    " (or set KUBECONFIG)"
                ).format(file=first)
            )
        try:
            with path.open("rb") as fh:
                fh.read(1)
        except OSError as err:
            raise ClusterUnreachable(
                _named(named, _("which cannot be read: {reason}").format(reason=err.strerror))
            ) from err
        try:
            settings = configuration(self.kubeconfig)
        except (config.ConfigException, yaml.YAMLError, OSError, ValueError, TypeError) as err:
            raise ClusterUnreachable(_named(named, load_problem(err))) from err
        settings.retries = 1  # a dead cluster should answer "unreachable" fast
        self.server: str = settings.host
        self._client = client.ApiClient(settings)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Json | list[Json] | None = None,
        content_type: str = "application/json",
        timeout: float = REQUEST_TIMEOUT,
    ) -> Json:
        """Send one request and return its decoded JSON (raises ApiError, ClusterUnreachable)."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            serialized = self._client.param_serialize(
                method,
                path,
                query_params=list((query or {}).items()),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self._client.call_api(*serialized, _request_timeout=timeout)
            raw = response.read()  # type: ignore[no-untyped-call]
        except urllib3.exceptions.HTTPError as err:
            raise ClusterUnreachable(
                _(
                    "no cluster answers at {server}: start it with `kubelab cluster up`"
                    " (or check KUBECONFIG)"
                ).format(server=self.server),
                no_answer=True,
            ) from err
        except client.ApiException as err:  # TLS trouble is reported as status 0
            raise ClusterUnreachable(
                _("cannot talk to the cluster at {server}: {reason}")
                .format(server=self.server, reason=err.reason)
                .splitlines()[0]
            ) from err
        data: Json = {}
        if raw:
            try:
                decoded = json.loads(raw)
            except ValueError:
                decoded = {"message": raw.decode("utf-8", "replace")[:200]}
            data = decoded if isinstance(decoded, dict) else {"items": decoded}
        status = int(response.status)
        if status >= 400:
            reason = str(data.get("reason") or response.reason or "")
            raise ApiError(status, reason, describe(status, reason, str(data.get("message", ""))))
        return data

    def get(self, res: Resource, name: str, namespace: str | None = None) -> Json | None:
        """Return one object, or None when it does not exist."""
        try:
            return self.request("GET", res.path(namespace, name))
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def namespace_exists(self, name: str) -> bool | None:
        """Tell whether a namespace exists; None when these credentials may not look.

        Workshop participants and graded submissions hold credentials that reach only their own
        namespaces, which do not include reading Namespace objects: that is not an error.
        """
        try:
            return self.get(NAMESPACES, name) is not None
        except ApiError as err:
            if err.status == 403:
                return None
            raise

    def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
    ) -> builtins.list[Json]:
        """Return the objects of a kind (in a namespace), optionally filtered by selectors."""
        query: dict[str, str] = {}
        if labels:
            query["labelSelector"] = labels
        if fields:
            query["fieldSelector"] = fields
        found = self.request("GET", res.path(namespace), query=query)
        items: builtins.list[Json] = found.get("items", [])
        return items

    def create(
        self, res: Resource, body: Json, namespace: str | None = None, *, dry_run: bool = False
    ) -> Json:
        """Create an object (or, with dry_run, ask the server what it would create)."""
        query = {"dryRun": "All", "fieldValidation": "Strict"} if dry_run else {}
        return self.request("POST", res.path(namespace), query=query, body=body)

    def patch(
        self,
        res: Resource,
        name: str,
        body: Json | builtins.list[Json],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        patch_type: str = "application/merge-patch+json",
    ) -> Json:
        """Patch an object (merge patch unless told otherwise)."""
        query = {"dryRun": "All"} if dry_run else {}
        path = res.path(namespace, name)
        return self.request("PATCH", path, query=query, body=body, content_type=patch_type)

    def delete(self, res: Resource, name: str, namespace: str | None = None) -> bool:
        """Delete an object; return False when it was already gone."""
        try:
            self.request("DELETE", res.path(namespace, name))
        except ApiError as err:
            if err.status == 404:
                return False
            raise
        return True

    def evict(self, pod: str, namespace: str, *, dry_run: bool = False) -> Json:
        """Ask to evict a pod as `kubectl drain` does; a PodDisruptionBudget may refuse (429)."""
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod, "namespace": namespace},
        }
        if dry_run:
            body["deleteOptions"] = {"dryRun": ["All"]}
        return self.request("POST", PODS.path(namespace, pod) + "/eviction", body=body)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()  # type: ignore[no-untyped-call]


def create_or_replace(client: Api, res: Resource, body: Json) -> None:
    """Create a cluster-wide object, or replace it whole if it exists (kinds such as admission
    policies and FlowSchemas refuse a replace that does not name the version it replaces)."""
    name = body["metadata"]["name"]
    try:
        client.create(res, body)
    except ApiError as err:
        if err.status != 409:
            raise
        current = client.get(res, name) or {}
        body["metadata"]["resourceVersion"] = current.get("metadata", {}).get("resourceVersion")
        client.request("PUT", res.path(None, name), body=body)
