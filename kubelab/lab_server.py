"""The JupyterLab command `kubelab start` runs: on a learner's workspace, or on the course sources
for an instructor."""

from __future__ import annotations

import os
from pathlib import Path

from kubelab import workspace


def command(
    jupyter: Path,
    root: Path,
    *,
    port: int,
    kubeconfig: Path | None,
    learner: bool,
    browser: bool = True,
) -> tuple[list[str], dict[str, str]]:
    """Return the argv and environment of a JupyterLab server on `root`.

    Notebooks and terminals inherit the environment: kubectl (from the wheel) and kubelab come
    first on PATH, and KUBECONFIG points at the course cluster with no set-up.
    """
    env = dict(os.environ)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    env["PATH"] = os.pathsep.join([str(jupyter.parent), env.get("PATH", "")])
    if learner:
        # JUPYTER_CONFIG_PATH comes first in Jupyter's search order, so the workspace's settings
        # (nbgrader's instructor tools off) win over the installation's.
        own = str(workspace.jupyter_config_dir(root))
        rest = env.get("JUPYTER_CONFIG_PATH")
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([own, rest]) if rest else own
        # JupyterLab's settings live with the workspace, its menus in the workspace's language.
        env.setdefault("JUPYTERLAB_SETTINGS_DIR", str(workspace.jupyterlab_settings_dir(root)))
        # Notebooks and terminals read in the workspace's language (KUBELAB_LANG already set wins).
        lang = workspace.language(root)
        if lang and not env.get("KUBELAB_LANG"):
            env["KUBELAB_LANG"] = lang
    argv = [
        str(jupyter),
        "lab",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
    ]
    if not browser:
        argv.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")  # containers and CI often run as root; Jupyter refuses it
    return argv, env
