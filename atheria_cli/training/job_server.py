"""Where ``--jobs N`` processes come from: a forkserver that imports torch and SB3 once (torch-free).

Each job is a fork of that server instead of a fresh interpreter importing torch and SB3 again.
Safe to fork: the server is single-threaded, has run no torch operation (so no OpenMP pool
exists) and has never touched CUDA. :func:`start_job_server` starts it before this process
imports torch itself, so that on a machine with a free core the server's imports overlap the
command's own imports and planning instead of following them.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
from typing import Any

# The SB3 trainer is imported on first build, not by the session: preload it for the children.
JOB_PRELOAD = ["atheria_cli.training.jobs", "atheria_cli.trainers.sb3", "stable_baselines3"]


def job_context() -> Any:
    """The multiprocessing context jobs start in: a preloaded forkserver where the platform has one
    (Linux, macOS), else spawn (Windows). Both give a child no state of this process but its arguments."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(JOB_PRELOAD)
    return context


def start_job_server(jobs: int, backend: str) -> None:
    """Start the job server now when this command will run jobs in local processes.

    Only a hint: nothing is written, a command that then fails at planning leaves nothing behind
    (the server exits with this process), and jobs start the server themselves where this was
    not called.
    """
    if jobs > 1 and backend == "local" and "forkserver" in multiprocessing.get_all_start_methods():
        job_context()
        multiprocessing.forkserver.ensure_running()
