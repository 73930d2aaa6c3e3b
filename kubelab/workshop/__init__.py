"""Workshops: one cluster, many participants, each confined to their own copies of the labs.

`kubelab workshop up` makes every participant's lab namespaces and a kubeconfig holding a user
certificate that reaches only those; `status` is the leader's live board of everyone's scores;
`down` removes what `up` made. Nothing here is imported by a learner's `kubelab check` except
`scores`, which posts a check's result to the board.
"""
