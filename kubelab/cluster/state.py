"""Remember which backend runs each named cluster, so `down`, `status` and `env` need no flags.

The record lives in `kubelab.cluster_files`, below the JSON client, which reads it to find the
course cluster's kubeconfig; this module keeps the names the backends use.
"""

from __future__ import annotations

from kubelab.cluster_files import details, forget, record, recorded_backend, side_file

__all__ = ["details", "forget", "record", "recorded_backend", "side_file"]
