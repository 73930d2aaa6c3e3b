"""Fences around the namespaces kubelab hands to learners, workshop participants and submissions.

Every namespace kubelab creates for a lab is fenced before anyone works in it:

- `namespace_fence`: Pod Security labels, a ResourceQuota and a LimitRange sized from the labs;
- `admission`: a ValidatingAdmissionPolicy that refuses weakening any of that from inside;
- `fairness`: API Priority and Fairness, so one participant's flood queues behind its own
  requests, not everyone's;
- `records`: which namespaces kubelab made, kept where their occupants cannot edit it;
- `cleanup`: deleting a namespace until it is really gone, whatever finalizers were added.

RBAC (what a confined subject may do) is `kubelab.access`.
"""
