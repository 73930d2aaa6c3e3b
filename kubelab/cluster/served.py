"""What an API server serves, read from its discovery documents (readable by any user).

`cluster check` asks whether an API group is served (metrics, admission policies, flow control);
`cluster prepare` turns a manifest's apiVersion and kind into the REST resource to create it at.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubelab import api
from kubelab.api import Json, Resource


@dataclass(frozen=True)
class GroupVersion:
    """One group/version as the server answered for it."""

    served: bool
    status: int  # 200 served, 404 not registered, 503 registered but its server is not available
    resources: tuple[Json, ...] = ()

    def has(self, plural: str) -> bool:
        """Tell whether this group/version serves the resource `plural`."""
        return any(r.get("name") == plural for r in self.resources)


class Discovery:
    """Cached discovery reads over one connection."""

    def __init__(self, client: api.Api) -> None:
        self.api = client
        self._seen: dict[str, GroupVersion] = {}

    def group_version(self, api_version: str) -> GroupVersion:
        """Return what the server says about `api_version` ("v1", "apps/v1", ...)."""
        if api_version not in self._seen:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                doc = self.api.request("GET", path)
            except api.ApiError as err:
                self._seen[api_version] = GroupVersion(False, err.status)
            else:
                self._seen[api_version] = GroupVersion(True, 200, tuple(doc.get("resources") or []))
        return self._seen[api_version]

    def forget(self) -> None:
        """Drop what was read (after new CRDs were established)."""
        self._seen.clear()

    def resource_for(self, api_version: str, kind: str) -> Resource | None:
        """Return the REST resource of `kind` in `api_version`, or None when it is not served."""
        gv = self.group_version(api_version)
        for r in gv.resources:
            if r.get("kind") == kind and "/" not in str(r.get("name", "")):
                return Resource(api_version, str(r["name"]), kind, bool(r.get("namespaced")))
        return None
