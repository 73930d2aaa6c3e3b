"""Vendor the Gateway API standard-channel CRDs from the pinned Go module.

Both substrates apply the same bytes from ``manifests/gateway-api/standard-install.yaml``, so a
route valid on the sim cluster is valid on kind. The file is generated from the module pinned in
``sim/modules/gateway-api`` (checksummed by its go.sum), and a test proves it still matches.

Regenerate with ``scripts/vendor-gateway-crds``.
"""

from __future__ import annotations

import json
from pathlib import Path

from kubelab import paths, tools
from kubelab.cluster.sim_build import COMPONENTS, go_env

VENDORED = paths.MANIFESTS_DIR / "gateway-api" / "standard-install.yaml"


def _pin() -> tuple[str, str, Path]:
    comp = next(c for c in COMPONENTS if c.name == "gateway-api")
    return comp.module, comp.version, comp.module_dir


def render() -> str:
    """Concatenate the pinned module's standard CRDs into one multi-document YAML."""
    module, version, module_dir = _pin()
    go = tools.require("go", "to read the pinned Gateway API module")
    proc = tools.run(
        [go, "mod", "download", "-json", f"{module}@{version}"], env=go_env(), cwd=module_dir
    )
    source = Path(json.loads(proc.stdout)["Dir"]) / "config" / "crd" / "standard"
    header = (
        f"# Gateway API {version} standard channel, generated from Go module {module}@{version}\n"
        "# (config/crd/standard/). Do not edit: run scripts/vendor-gateway-crds.\n"
        "# Licensed under the Apache License 2.0 by the Kubernetes Authors.\n"
    )
    parts = []
    for f in sorted(source.glob("*.yaml")):
        body = f.read_text(encoding="utf-8").strip()
        parts.append(
            f"# Source: config/crd/standard/{f.name}\n{body.removeprefix('---').strip()}\n"
        )
    return header + "---\n" + "---\n".join(parts)


def write() -> Path:
    """Write the vendored file and return its path."""
    VENDORED.parent.mkdir(parents=True, exist_ok=True)
    VENDORED.write_text(render(), encoding="utf-8")
    return VENDORED
