"""Run a submitted notebook cell by cell inside the sandbox, saving it after every cell.

    python -m kubelab.instructor.notebook_runner IN.ipynb OUT.ipynb --cell-timeout 300

This process and the learner's kernel both run in the sandbox, so nothing it writes is trusted for
scores; it records which cells ran, so a submission that hangs or kills its kernel still shows how
far it got. The last stdout line is JSON: {"status", "reached", "cell", "message"}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import nbformat

STATUS_KEY = "kubelab_executed"  # cell metadata: the cell ran (set here, read by the grader)
TIMEOUT_ENAME = "CellTimeoutError"
_STOPPED = {TIMEOUT_ENAME, "KeyboardInterrupt"}


def _save(nb: Any, out: Path) -> None:
    tmp = out.with_suffix(".tmp")
    nbformat.write(nb, str(tmp))
    tmp.replace(out)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else err.__class__.__name__)[:300]


def run(source: Path, out: Path, *, cell_timeout: int) -> dict[str, Any]:
    """Execute `source` into `out`; return the outcome (never raises for the learner's faults)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.read(str(source), as_version=4)
    client = NotebookClient(
        nb,
        timeout=cell_timeout,
        kernel_name="python3",
        allow_errors=True,  # as nbgrader does: one failing answer must not stop the rest
        # As nbgrader does: a cell over its limit is interrupted, shows an error, and the
        # notebook goes on (a loop in one answer costs that answer, not the whole lab).
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": TIMEOUT_ENAME,
            "evalue": f"stopped at the {cell_timeout}s cell time limit",
            "traceback": [f"\x1b[31m✘ stopped at the {cell_timeout}s cell time limit\x1b[0m"],
        },
        resources={"metadata": {"path": str(Path.cwd())}},
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
    )
    outcome: dict[str, Any] = {"status": "finished", "reached": -1, "cell": None, "message": ""}
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    try:
        with client.setup_kernel():
            for index in code_cells:
                cell = nb.cells[index]
                outcome["reached"] = index
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError:  # the kernel did not even take the interrupt
                    cell.metadata[STATUS_KEY] = True
                    outcome.update(status="timeout", cell=index, message="cell time limit")
                    break
                cell.metadata[STATUS_KEY] = True
                # The interrupt shows as KeyboardInterrupt when the kernel takes it in time.
                if any(o.get("ename") in _STOPPED for o in cell.outputs):
                    outcome.setdefault("interrupted", []).append(index)
                _save(nb, out)
    except DeadKernelError as err:
        outcome.update(status="kernel-died", cell=outcome["reached"], message=_first_line(err))
    except Exception as err:  # the kernel would not start, or nbclient broke: say so, briefly
        outcome.update(status="error", cell=outcome["reached"], message=_first_line(err))
    _save(nb, out)
    stopped = outcome.get("interrupted")
    if stopped and outcome["status"] == "finished":
        outcome["message"] = f"cell {', '.join(map(str, stopped))} stopped at the cell time limit"
    return outcome


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (inside the sandbox)."""
    parser = argparse.ArgumentParser(prog="notebook_runner")
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--cell-timeout", type=int, default=300)
    args = parser.parse_args(argv)
    os.environ.setdefault("NBGRADER_EXECUTION", "autograde")
    outcome = run(args.source, args.out, cell_timeout=args.cell_timeout)
    print(json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
