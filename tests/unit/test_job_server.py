"""The job server starts before the command imports torch, and only when jobs run locally."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys, psutil
from atheria_cli.training.job_server import start_job_server
start_job_server({jobs}, {backend!r})
servers = [p for p in psutil.Process().children() if 'multiprocessing.forkserver' in ' '.join(p.cmdline())]
print(len(servers), 'torch' in sys.modules)
"""


def _probe(jobs: int, backend: str) -> str:
    code = PROBE.format(jobs=jobs, backend=backend)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_local_jobs_start_the_server_without_importing_torch_here() -> None:
    assert _probe(2, "local") == "1 False"


def test_one_job_or_ray_starts_no_server() -> None:
    assert _probe(1, "local") == "0 False"
    assert _probe(4, "ray") == "0 False"
