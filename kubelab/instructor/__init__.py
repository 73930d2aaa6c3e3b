"""Instructor grading: release labs, collect submissions, grade each in a sandbox on its own
namespace with credentials that reach nothing else, and write the gradebook and feedback.

nbgrader runs the course (its gradebook, release and autograde steps); kubelab adds the parts a
Kubernetes course needs: a namespace and confined credentials per submission, a sandbox for the
learner's notebook (kubelab/sandbox/), and scores taken from the cluster by a fresh grader run,
never from what the learner's kernel printed.
"""
