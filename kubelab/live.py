"""Showing something that changes while a person waits: in place in a notebook, as lines elsewhere.

The notebook views (rollouts, ordered creation, autoscaling plots) all poll the cluster and
show each sample. In a Jupyter kernel the output is one display replaced in place; in a terminal,
or under nbconvert and nbval, each sample is one printed line, so logs stay readable.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

S = TypeVar("S")


def in_notebook() -> bool:
    """Tell whether we run inside a Jupyter kernel (which can update a display in place)."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def shower(
    render_html: Callable[[S, str], str], render_line: Callable[[S], str]
) -> Callable[[S, str], None]:
    """Return show(sample, note): replace an HTML display in a notebook, else print a line."""
    if in_notebook():
        from IPython.display import HTML, display

        handle: Any = display(HTML(""), display_id=True)  # type: ignore[no-untyped-call]

        def show_html(sample: S, note: str) -> None:
            if handle is not None:
                handle.update(HTML(render_html(sample, note)))  # type: ignore[no-untyped-call]

        return show_html

    def show_line(sample: S, note: str) -> None:
        print(render_line(sample) + (f"  ({note})" if note else ""), flush=True)

    return show_line
