"""Kubernetes resource quantities ("250m", "512Mi") as numbers, to compare requests and limits.

The parser is `kubelab.objects.quantity`, in the bottom layer beside the client so lab kits use it
without importing the engine; `parse` keeps the name graders import.
"""

from __future__ import annotations

from kubelab.objects import quantity as parse

__all__ = ["parse"]
