"""A learner's workspace: the folder `kubelab init DIR` makes and `kubelab start` opens.

It holds what a learner works on and nothing they should not see, as `nbgrader quickstart` makes
a course: the teaching notebooks, the glossary, and per lab its README, its `starter/` and its
notebook as nbgrader releases it (answers cleared by nbgrader's own preprocessors). Never
`solution/`. Making it again adds what is missing and never overwrites a file: the learner's
edits are theirs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kubelab import labs, paths
from kubelab.errors import KubelabError

__all__ = [
    "INSTRUCTOR_PLUGINS",
    "KubelabError",
    "Made",
    "around",
    "find",
    "init",
    "jupyter_config_dir",
]

MARKER = ".kubelab-workspace"  # says "this folder is a workspace" to `kubelab start`
_REMEMBERED = "workspace.json"  # in paths.data_home(): the workspace `init` made last

# nbgrader's instructor tools, off for learners (nbgrader's docs name these to disable).
INSTRUCTOR_PLUGINS = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
)
INSTRUCTOR_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
)


@dataclass
class Made:
    """What `init` did: files written, and files left as the learner changed them."""

    root: Path
    added: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def _student_notebook(source: Path) -> str:
    """Return the lab notebook as nbgrader releases it, with kubelab's nbgrader settings."""
    import nbformat
    from nbgrader.converters import GenerateAssignment
    from nbgrader.preprocessors import InstantiateTests, SaveCells
    from traitlets.config import Config

    from kubelab.course import configure_nbgrader

    config = Config()
    configure_nbgrader(config, root=paths.COURSE_ROOT)
    # nbgrader's release steps but the two that need a gradebook database or a kernel: SaveCells
    # records the cells for autograde; InstantiateTests expands autotest directives (none here).
    steps = [
        step(config=config)
        for step in GenerateAssignment.class_traits()["preprocessors"].default()
        if step not in (SaveCells, InstantiateTests)
    ]
    nb = nbformat.read(source, as_version=nbformat.NO_CONVERT)  # type: ignore[no-untyped-call]
    resources: dict[str, object] = {
        "nbgrader": {"notebook": "lab", "assignment": source.parent.name}
    }
    for step in steps:
        nb, resources = step.preprocess(nb, resources)
    text: str = nbformat.writes(nb) + "\n"  # type: ignore[no-untyped-call]
    return text


def _contents() -> dict[str, bytes]:
    """Return every file of a fresh workspace, by its path relative to the workspace."""
    files: dict[str, bytes] = {}
    for nb in sorted(paths.NOTEBOOKS_DIR.glob("*.ipynb")):
        files[f"notebooks/{nb.name}"] = nb.read_bytes()
    for readme in (paths.NOTEBOOKS_DIR / "README.md",):
        if readme.is_file():
            files["notebooks/README.md"] = readme.read_bytes()
    # The notebooks link the glossary as ../docs/glossary.md, as in the repository.
    files["docs/glossary.md"] = paths.GLOSSARY.read_bytes()
    for lab in labs.all_labs():
        base = f"labs/{lab.id}"
        files[f"{base}/README.md"] = (lab.directory / "README.md").read_bytes()
        files[f"{base}/lab.ipynb"] = _student_notebook(lab.directory / "lab.ipynb").encode()
        for f in sorted((lab.directory / "starter").rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts and ".ipynb_checkpoints" not in f.parts:
                files[f"{base}/{f.relative_to(lab.directory).as_posix()}"] = f.read_bytes()
    files[".jupyter/labconfig/page_config.json"] = _json(
        {"disabledExtensions": dict.fromkeys(INSTRUCTOR_PLUGINS, True)}
    )
    # ServerApp.jpserver_extensions as traitlets config: it wins over the installation's
    # jupyter_server_config.d/ files, which enable every nbgrader extension.
    files[".jupyter/jupyter_server_config.json"] = _json(
        {"ServerApp": {"jpserver_extensions": dict.fromkeys(INSTRUCTOR_SERVER_EXTENSIONS, False)}}
    )
    return files


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()


def init(target: Path) -> Made:
    """Make (or complete) a workspace in `target`; never overwrite a file that is there."""
    root = target.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise KubelabError(f"{target} is a file; give `kubelab init` a folder (new or a workspace)")
    made = Made(root)
    for rel, content in _contents().items():
        dest = root / rel
        if dest.exists():
            if dest.read_bytes() != content:
                made.kept.append(rel)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content)
        made.added.append(rel)
    (root / MARKER).write_text("kubelab workspace: `kubelab start` opens it in JupyterLab\n")
    (paths.data_home() / _REMEMBERED).write_text(json.dumps({"path": str(root)}) + "\n")
    return made


def _is_workspace(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def around(folder: Path) -> Path | None:
    """Return the workspace that holds `folder` (it or a parent), or None."""
    here = folder.resolve()
    for candidate in (here, *here.parents):
        if _is_workspace(candidate):
            return candidate
    return None


def find(explicit: Path | None) -> Path:
    """Return the workspace to open: `explicit`, else the one around the current folder, else
    the one `init` made last."""
    if explicit is not None:
        root = explicit.expanduser().resolve()
        if not _is_workspace(root):
            raise KubelabError(
                f"{explicit} is not a kubelab workspace: make it with `kubelab init {explicit}`"
            )
        return root
    here = around(Path.cwd())
    if here is not None:
        return here
    try:
        last = Path(json.loads((paths.data_home() / _REMEMBERED).read_text())["path"])
    except (OSError, ValueError, KeyError, TypeError):
        last = None
    if last is not None and _is_workspace(last):
        return last
    raise KubelabError(
        "no workspace yet: make one with `kubelab init ~/k8s-course`, then `kubelab start`"
    )


def jupyter_config_dir(root: Path) -> Path:
    """Return the workspace's Jupyter settings folder (hidden in the file browser)."""
    return root / ".jupyter"
