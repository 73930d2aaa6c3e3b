"""kubelab: a Kubernetes course whose labs are graded by reading a live cluster."""

__version__ = "0.1.0"
