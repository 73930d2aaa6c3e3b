"""nbgrader course configuration: each lab in labs/ is an assignment (run nbgrader from here).

    nbgrader generate_assignment 02-deployment   # release/02-deployment/, without solution/

The settings live in kubelab/course.py, so tests build the same course in a temporary folder.
"""

from pathlib import Path

from kubelab.course import configure_nbgrader

configure_nbgrader(get_config(), root=Path(__file__).resolve().parent)  # type: ignore[name-defined]  # noqa: F821
