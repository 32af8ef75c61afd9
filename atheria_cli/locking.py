"""One writer per agent: an advisory lock beside the agent's folder.

``<run_dir>/.<AGENT>.lock`` is held with ``flock`` while an ``atheria train`` writes the agent.
The kernel releases it when the process dies, even by ``kill -9``, so a stale lock from a dead
process is simply taken over; the file holds the holder's pid for the error message. It lives
beside the folder, not in it, so ``--fresh`` can move the folder while the lock is held.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from atheria_cli.errors import RunLockedError


class AgentLock:
    def __init__(self, run_dir: Path, agent: str) -> None:
        self.path = Path(run_dir) / f".{agent}.lock"
        self.agent = agent
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(
                f"{self.agent} is being trained by another atheria process ({holder}); "
                f"wait for it to finish or stop it (lock {self.path})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
