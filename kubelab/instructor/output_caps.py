"""Outputs capped in bytes, per cell and per notebook, before nbgrader stores them.

nbgrader's own `LimitOutput` counts lines, so one line of 40 MB passes it, into the autograded
notebook and every feedback page made from it. `LimitOutputBytes` keeps each cell's outputs up to
`max_cell_bytes`, and the notebook's up to `max_notebook_bytes` (cells in order), and puts a short
stream output where it cut, naming the cap, so the learner's feedback says what happened. Grade
cells are left alone: their outputs are kubelab's scorecards (small, and what nbgrader scores).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer

CELL_BYTES = 256 * 1024  # a scorecard is ~5 KB, a plot ~100 KB
NOTEBOOK_BYTES = 2 * 2**20  # a lab notebook, run, is well under 1 MiB
RESOURCE_KEY = "kubelab_truncated"  # resources[...]: what was cut, as `Cut.to_dict()`s


@dataclass(frozen=True)
class Cut:
    """What one cell lost: it printed `printed` bytes, of which `kept` stayed."""

    cell: int  # index in the notebook
    printed: int
    kept: int
    cap: int
    per: str  # "cell" | "notebook": which cap cut it

    def note(self) -> str:
        """Return the line the learner sees in place of what was cut."""
        if self.per == "cell":
            return (
                f"output truncated: this cell printed {self.printed:,} bytes; kubelab keeps at "
                f"most {self.cap:,} per cell"
            )
        return (
            f"output truncated: this cell printed {self.printed:,} bytes after the notebook's "
            f"outputs reached the cap; kubelab keeps at most {self.cap:,} per notebook"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the cut as JSON-ready data."""
        return asdict(self)


def output_bytes(output: Any) -> int:
    """Return the size of one output as stored in the notebook."""
    return len(json.dumps(output, ensure_ascii=False).encode())


def _shortened(output: NotebookNode, room: int) -> NotebookNode | None:
    """Return a stream output cut to fit `room` bytes, or None when it is not a stream."""
    if output.get("output_type") != "stream":
        return None  # an image or HTML cut in half is noise: drop it whole
    text = output.get("text", "")
    text = "".join(text) if isinstance(text, list) else str(text)
    overhead = output_bytes({**output, "text": ""})
    budget = max(room - overhead, 0)
    kept = text.encode()[:budget].decode(errors="ignore")
    while kept and output_bytes({**output, "text": kept}) > room:  # JSON escapes grow it
        kept = kept[: len(kept) * 3 // 4]
    if not kept:
        return None
    shortened: NotebookNode = nbformat.v4.new_output("stream", name=output["name"], text=kept)
    return shortened


def _fit(outputs: list[NotebookNode], room: int) -> tuple[list[NotebookNode], int]:
    """Return the outputs that fit in `room` bytes (in order) and their size."""
    kept: list[NotebookNode] = []
    used = 0
    for output in outputs:
        size = output_bytes(output)
        if used + size <= room:
            kept.append(output)
            used += size
            continue
        part = _shortened(output, room - used)
        if part is not None:
            kept.append(part)
            used += output_bytes(part)
        break
    return kept, used


def _note(cut: Cut) -> NotebookNode:
    note: NotebookNode = nbformat.v4.new_output("stream", name="stdout", text=cut.note() + "\n")
    return note


def cap_outputs(
    nb: NotebookNode,
    *,
    per_cell: int = CELL_BYTES,
    per_notebook: int = NOTEBOOK_BYTES,
    skip: Callable[[NotebookNode], bool] = lambda _cell: False,
) -> list[Cut]:
    """Cap every code cell's outputs in place (cells where `skip` is true are left whole);
    return what was cut."""
    cuts: list[Cut] = []
    left = per_notebook
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code" or skip(cell) or not cell.get("outputs"):
            continue
        printed = sum(output_bytes(o) for o in cell.outputs)
        room, per, cap = min(per_cell, left), "cell", per_cell
        if left < per_cell:
            per, cap = "notebook", per_notebook
        if printed <= room:
            left -= printed
            continue
        kept, used = _fit(cell.outputs, room)
        cut = Cut(index, printed, used, cap, per)
        cell.outputs = [*kept, _note(cut)]
        left -= used
        cuts.append(cut)
    return cuts


def is_grade_cell(cell: NotebookNode) -> bool:
    """Tell whether nbgrader scores this cell."""
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


class LimitOutputBytes(NbGraderPreprocessor):  # type: ignore[misc]
    """nbgrader preprocessor: cap outputs in bytes per cell and per notebook (grade cells kept).

    Configure it as any nbgrader preprocessor, e.g. ``c.LimitOutputBytes.max_cell_bytes``.
    """

    max_cell_bytes = Integer(
        CELL_BYTES, help="Bytes of output kept per cell; the rest is cut, with a note"
    ).tag(config=True)
    max_notebook_bytes = Integer(
        NOTEBOOK_BYTES, help="Bytes of output kept per notebook, cells in order"
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any) -> tuple[NotebookNode, Any]:
        """Cap the notebook's outputs; record what was cut in resources[RESOURCE_KEY]."""
        cuts = cap_outputs(
            nb,
            per_cell=self.max_cell_bytes,
            per_notebook=self.max_notebook_bytes,
            skip=is_grade_cell,
        )
        for cut in cuts:
            self.log.warning("Cell %d: %s", cut.cell, cut.note())
        resources[RESOURCE_KEY] = [c.to_dict() for c in cuts]
        return nb, resources
