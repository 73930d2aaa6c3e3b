"""The teaching notebooks whose cells send real traffic or start real pods, run on kind.

Notebook 02 rolls demo-web out behind readiness probes, 05 measures a canary split through
Traefik, 06 probes allowed and denied connections; on the sim their kind branches never run.
Each runs from a copy in a temporary folder, so its work folder never meets the sim run's copy
of the same notebook on another worker.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cluster.test_notebooks import ROOT, run_notebook
from tests.conftest import Kubectl

KIND_NOTEBOOKS = ["02-deployment", "05-gateway-canary", "06-rbac-policy"]


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("stem", KIND_NOTEBOOKS)
def test_notebook_runs_on_kind(
    stem: str, kubeconfig: Path, kubectl: Kubectl, tmp_path: Path
) -> None:
    source = ROOT / "notebooks" / f"{stem}.ipynb"
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    copy = Path(shutil.copy(source, workdir))
    run_notebook(copy, workdir, kubeconfig, kubectl, tmp_path / "data")
