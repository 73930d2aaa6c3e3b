"""One grader module per lab (``labNN_slug.py``); learners load one with ``graders.load``.

from kubelab import graders
grader = graders.load("02-deployment")
grader.check_all()
graders.progress()  # every lab's saved score, as a table
"""

from kubelab.grading.notebook import LabGrader, TaskFailed, load
from kubelab.grading.overview import progress

__all__ = ["LabGrader", "TaskFailed", "load", "progress"]
