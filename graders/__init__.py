"""One grader module per lab (``labNN_slug.py``); learners load one with ``graders.load``.

import graders
grader = graders.load("02-deployment")
grader.check_all()
"""

from kubelab.grading.notebook import LabGrader, TaskFailed, load

__all__ = ["LabGrader", "TaskFailed", "load"]
