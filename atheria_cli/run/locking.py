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

from atheria_cli.errors import RunLockedError, StorageError


class AgentLock:
    def __init__(self, run_dir: Path, agent: str) -> None:
        self.path = Path(run_dir) / f".{agent}.lock"
        self.agent = agent
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self._fd = self._lock()
        except OSError as exc:
            raise StorageError(f"cannot create the lock {self.path}: {exc.strerror or exc}") from exc

    def _lock(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
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
            # The holder we waited for may have unlinked the file between our open and flock:
            # then we hold a lock on a deleted file, and must lock the file now at the path.
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        return fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
