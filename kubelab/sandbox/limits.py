"""What one sandbox run may use, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one sandbox run may use."""

    wall_seconds: float = 600
    cpu_seconds: int = 900  # per process (RLIMIT_CPU)
    memory_bytes: int = 3 * 2**30  # per process (RLIMIT_AS) and, with a cgroup, in total
    processes: int = 512  # tasks, threads included (cgroup pids.max, else RLIMIT_NPROC)
    cpus: float = 1.0  # CPU share (cgroup only)
    file_bytes: int = 2**30  # largest file it may write (RLIMIT_FSIZE)


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Outcome:
    """How a sandboxed run ended."""

    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    seconds: float
