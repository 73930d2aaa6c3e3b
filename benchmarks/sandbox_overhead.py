"""Print what the grading sandbox (kubelab.sandbox) adds to a run's wall time.

    .venv/bin/python benchmarks/sandbox_overhead.py [--runs 10]

Times `python -c pass` run directly and in a sandbox, then a one-cell notebook executed with
nbclient (a Jupyter kernel started and stopped) directly and in a sandbox with the default limits.
Direct and sandboxed runs alternate, so a change in the machine's load affects both alike; the
median and the fastest of --runs are printed. No cluster is needed; the API relay is not started.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kubelab import sandbox

NOTEBOOK = """
import nbclient, nbformat
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
nbclient.NotebookClient(nb, kernel_name="python3", timeout=60).execute()
assert nb.cells[0].outputs[0]["text"] == "42\\n", nb.cells[0].outputs
"""


def _time(once: Callable[[], None]) -> float:
    start = time.perf_counter()
    once()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    sandbox.check_available()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)

        def direct(code: str) -> Callable[[], None]:
            def once() -> None:
                subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)

            return once

        def boxed(code: str) -> Callable[[], None]:
            def once() -> None:
                argv = [sys.executable, "-c", code]
                out = sandbox.run(argv, workdir=work, api_server=None, env=sandbox.base_env())
                if out.returncode != 0:
                    raise SystemExit(f"sandboxed run failed: {out.stderr.strip()}")

            return once

        for label, code in (("python -c pass", "pass"), ("1-cell notebook (nbclient)", NOTEBOOK)):
            plain, inside = [], []
            for _ in range(args.runs):
                plain.append(_time(direct(code)))
                inside.append(_time(boxed(code)))
            overhead = statistics.median(inside) - statistics.median(plain)
            print(
                f"{label:28} direct {_ms(plain)}   sandboxed {_ms(inside)}"
                f"   overhead {overhead * 1000:5.0f} ms (medians, {args.runs} runs each)"
            )


def _ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:5.0f} ms (fastest {min(times) * 1000:5.0f})"


if __name__ == "__main__":
    main()
