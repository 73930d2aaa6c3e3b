"""Run untrusted code (a learner's notebook, a fresh `kubelab check`) in a bubblewrap sandbox.

Instructor bulk grading executes every submission, and a hostile one must harm nothing. `run`
starts the payload under bubblewrap (``bwrap``, Debian package ``bubblewrap``) with:

- Filesystem: ``/`` is not bound. Read-only: /usr (with the /bin, /sbin, /lib* links), /etc minus
  what other users may not read (shadow files, private keys), this Python (``sys.base_prefix``),
  its venv (``sys.prefix``) and kubelab's package, graders and labs (checkout or wheel) at
  their own paths, every ``labs/*/solution`` replaced by an empty directory. `HOME` is a fresh
  tmpfs, and so are /tmp and /dev/shm (each at most half of `Limits.memory_bytes`); the caller's
  work directory is bound read-write at `WORK` and is the cwd; `ro_files` adds read-only files
  (e.g. a confined kubeconfig at `KUBECONFIG`). Everything else is read-only, and the
  instructor's files (course folder, gradebook, ~/.cache/kubelab with the admin kubeconfigs,
  other submissions) are simply not there.
- Namespaces: all new (user, pid, net, ipc, uts, cgroup), no capabilities, no nested user
  namespaces, a new session, and exactly the environment `env`, nothing inherited.
- Network: loopback only. With `api_server` set, `kubelab.sandbox.pump` listens inside on the
  server's own 127.0.0.1:PORT (so the kubeconfig's URL and the certificate's IP SAN still hold)
  and forwards each connection over a Unix socket to a thread here that connects it to the real
  server; TLS passes through untouched. With `gateway` set (kind: where the cluster's Gateway
  answers, `kubelab.cluster_record`), a second relay listens on 127.0.0.1 at the Gateway's port
  (`inside_url` says where), so lab 05's grader can send its real requests. Nothing else (etcd,
  JupyterLab, other hosts, the internet) is reachable.
- Limits (`Limits`): the wall clock kills the whole sandbox (bwrap's pid namespace dies with its
  first process); each process gets RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE and no core dumps; one
  fresh cgroup per run (v2, or the v1 pids/memory/cpu hierarchies) caps its tasks, its total
  memory (tmpfs included) and its CPU share, and is removed afterwards. Parallel runs each get
  their own, so one cannot starve another.
  Without a writable cgroup (a non-root instructor) RLIMIT_NPROC caps the processes instead: on
  Linux >= 5.14 it counts per user namespace, so it stops a fork bomb without touching the
  instructor's or another sandbox's count (older kernels count all of the instructor's
  processes). Memory is then bounded per process only, and the CPU share not at all. Root ignores
  RLIMIT_NPROC, so as root a writable cgroup is required (`check_available` says so).

API::

    check_available() -> None            # raise a one-line KubelabError when it cannot work
    base_env(**extra) -> dict[str, str]  # PATH (venv bin first), HOME, LANG, TMPDIR, plus extra
    run(argv, *, workdir, api_server, env, ro_files=None, limits=DEFAULT_LIMITS) -> Outcome
    HOME, WORK, KUBECONFIG               # in-sandbox paths: throwaway home, work dir (the cwd),
                                         # where to bind a learner's kubeconfig

`Outcome.returncode` is the payload's exit code (128+N if signal N killed it, e.g. 137 after an
out-of-memory kill) or None when the wall limit stopped it (`timed_out`); stdout and stderr keep
their last 64 KiB. A kubeconfig given in `ro_files` must be self-contained (its CA embedded as
certificate-authority-data): the files it might point to are not in the sandbox. Not bounded:
how many files the payload writes into its work directory (each at most `Limits.file_bytes`), so
give it one on a filesystem that may fill up. Linux only.
"""

from kubelab.sandbox.filesystem import HOME, KUBECONFIG, WORK, _filesystem
from kubelab.sandbox.limits import DEFAULT_LIMITS, Limits, Outcome
from kubelab.sandbox.relay import inside_url
from kubelab.sandbox.run import base_env, check_available, run

__all__ = [
    "DEFAULT_LIMITS",
    "HOME",
    "KUBECONFIG",
    "WORK",
    "Limits",
    "Outcome",
    "_filesystem",
    "base_env",
    "check_available",
    "inside_url",
    "run",
]
