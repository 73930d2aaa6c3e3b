"""The one exception type a user may see.

Anything the user can fix (a missing tool, a busy port, a cluster that is not up) is raised as
`KubelabError`; the CLI prints its message as one line and exits with code 2. Every other
exception is a bug in kubelab, never the learner's fault.
"""


class KubelabError(Exception):
    """A problem the user can fix, described in one line."""

    exit_code = 2

    def _render_traceback_(self) -> list[str]:
        """Show one line instead of a traceback when this is raised in a notebook (IPython hook)."""
        return [f"\033[31mkubelab: {self}\033[0m"]
