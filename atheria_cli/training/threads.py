"""How the machine is shared between jobs: torch threads per job, and GPUs round-robin.

Pure functions (no torch): the caller passes what it knows about the machine.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_job(configured: int | None, jobs: int, cores: int | None = None) -> int | None:
    """``train.threads`` if set; torch's own default (None) when sequential; else a fair share.

    Several jobs each using every core would oversubscribe the machine and slow all of them.
    """
    if configured is not None:
        return configured
    if jobs <= 1:
        return None
    return max(1, (cores or usable_cores()) // jobs)


def devices_for_jobs(device: str, jobs: int, gpus: int) -> list[str]:
    """Job i's device: plain ``cuda`` with several GPUs spreads jobs round-robin over them;
    anything else (``cpu``, ``cuda:1``, one GPU) is every job's device."""
    if device != "cuda" or gpus < 2:
        return [device] * jobs
    return [f"cuda:{index % gpus}" for index in range(jobs)]
