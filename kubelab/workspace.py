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

from kubelab import i18n, labs, paths
from kubelab.errors import KubelabError
from kubelab.i18n import _

__all__ = [
    "INSTRUCTOR_PLUGINS",
    "KubelabError",
    "Made",
    "around",
    "find",
    "init",
    "jupyter_config_dir",
    "jupyterlab_settings_dir",
    "language",
]

MARKER = ".kubelab-workspace"  # says "this folder is a workspace" to `kubelab start`
SETTINGS = ".kubelab-settings.json"  # the learner's choices: {"lang": "zh-CN"}
USER_SETTINGS = ".jupyter/lab/user-settings"  # JupyterLab's settings, kept with the workspace
# JupyterLab language packs by kubelab language (jupyterlab-language-pack-zh-CN is a dependency).
JUPYTERLAB_LOCALES = {"zh-CN": "zh_CN"}
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
    lang: str = i18n.ENGLISH
    added: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    # Files the chosen language has no translation of yet, given in English.
    untranslated: list[str] = field(default_factory=list)


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


def translated(source: Path, lang: str) -> Path | None:
    """Return `source`'s twin in `lang`, or None: `notebooks/zh-CN/02-deployment.ipynb` for a
    teaching notebook, `README.zh-CN.md`, `lab.zh-CN.ipynb` or `glossary.zh-CN.md` beside any
    other English file."""
    if lang == i18n.ENGLISH:
        return source
    if source.parent == paths.NOTEBOOKS_DIR:
        twin = source.parent / lang / source.name
    else:
        twin = source.with_name(f"{source.stem}.{lang}{source.suffix}")
    return twin if twin.is_file() else None


def _contents(lang: str = i18n.ENGLISH, untranslated: list[str] | None = None) -> dict[str, bytes]:
    """Return every file of a fresh workspace in `lang`, by its path relative to the workspace;
    a file with no translation yet is given in English and its path added to `untranslated`."""

    def pick(source: Path, rel: str) -> Path:
        twin = translated(source, lang)
        if twin is None:
            if untranslated is not None:
                untranslated.append(rel)
            return source
        return twin

    files: dict[str, bytes] = {}
    for nb in sorted(paths.NOTEBOOKS_DIR.glob("*.ipynb")):
        files[f"notebooks/{nb.name}"] = pick(nb, f"notebooks/{nb.name}").read_bytes()
    for readme in (paths.NOTEBOOKS_DIR / "README.md",):
        if readme.is_file():
            files["notebooks/README.md"] = pick(readme, "notebooks/README.md").read_bytes()
    # The notebooks link the glossary as ../docs/glossary.md, as in the repository; in zh-CN
    # it is docs/glossary.zh-CN.md, in the same place.
    files["docs/glossary.md"] = pick(paths.GLOSSARY, "docs/glossary.md").read_bytes()
    for lab in labs.all_labs():
        base = f"labs/{lab.id}"
        readme = pick(lab.directory / "README.md", f"{base}/README.md")
        files[f"{base}/README.md"] = readme.read_bytes()
        notebook = pick(lab.directory / "lab.ipynb", f"{base}/lab.ipynb")
        files[f"{base}/lab.ipynb"] = _student_notebook(notebook).encode()
        for f in sorted((lab.directory / "starter").rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts and ".ipynb_checkpoints" not in f.parts:
                files[f"{base}/{f.relative_to(lab.directory).as_posix()}"] = f.read_bytes()
    # JupyterLab's own menus in the workspace's language: `kubelab start` points JupyterLab's
    # user settings here (JUPYTERLAB_SETTINGS_DIR), and Settings > Language changes this file.
    if lang in JUPYTERLAB_LOCALES:
        files[f"{USER_SETTINGS}/@jupyterlab/translation-extension/plugin.jupyterlab-settings"] = (
            _json({"locale": JUPYTERLAB_LOCALES[lang]})
        )
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


def language(root: Path | None) -> str | None:
    """Return the language the workspace at `root` was made in, or None."""
    if root is None:
        return None
    try:
        lang = json.loads((root / SETTINGS).read_text()).get("lang")
    except (OSError, ValueError, AttributeError):
        return None
    return i18n.normalise(lang) if isinstance(lang, str) else None


def init(target: Path, lang: str | None = None) -> Made:
    """Make (or complete) a workspace in `target`; never overwrite a file that is there.

    The language is `lang`, else the one the workspace was made in, else KUBELAB_LANG or the
    locale's, else English; it is remembered in the workspace."""
    root = target.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise KubelabError(
            _("{path} is a file; give `kubelab init` a folder (new or a workspace)").format(
                path=target
            )
        )
    chosen = lang or language(root) or i18n.from_environment() or i18n.ENGLISH
    made = Made(root, chosen)
    for rel, content in _contents(chosen, made.untranslated).items():
        dest = root / rel
        if dest.exists():
            if dest.read_bytes() != content:
                made.kept.append(rel)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content)
        made.added.append(rel)
    (root / MARKER).write_text("kubelab workspace: `kubelab start` opens it in JupyterLab\n")
    (root / SETTINGS).write_text(_json({"lang": chosen}).decode())
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
                _("{path} is not a kubelab workspace: make it with `kubelab init {path}`").format(
                    path=explicit
                )
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
        _("no workspace yet: make one with `kubelab init ~/k8s-course`, then `kubelab start`")
    )


def jupyter_config_dir(root: Path) -> Path:
    """Return the workspace's Jupyter settings folder (hidden in the file browser)."""
    return root / ".jupyter"


def jupyterlab_settings_dir(root: Path) -> Path:
    """Return the workspace's JupyterLab user settings (its language, theme, editor choices)."""
    return root / USER_SETTINGS
