"""When a training session must stop early: a signal, or the time budget running out."""

from __future__ import annotations

import os
import signal
import time
from types import FrameType
from typing import Any

# 128 + signal number, the shell convention.
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopSignals:
    """SIGINT/SIGTERM ask the session to stop after the current environment step (with a
    checkpoint of that moment). A second signal exits at once: every write is atomic, so
    nothing committed can be damaged."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for signum in EXIT_CODES:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            os._exit(EXIT_CODES.get(signal.Signals(signum), 130))
        self.received = signum

    @property
    def exit_code(self) -> int:
        assert self.received is not None
        return EXIT_CODES[signal.Signals(self.received)]

    @property
    def name(self) -> str:
        assert self.received is not None
        return signal.Signals(self.received).name


class TimeBudget:
    """``--max-hours``: stop before starting an episode that would not end in time.

    The next episode is estimated to last as long as the slowest of the last five, plus a
    margin for the checkpoint that ends it.
    """

    def __init__(self, max_hours: float | None, started: float | None = None) -> None:
        self.deadline = None if max_hours is None else (started or time.monotonic()) + max_hours * 3600.0
        self.started = started or time.monotonic()
        self.durations: list[float] = []

    def episode_ended(self, seconds: float) -> None:
        self.durations.append(seconds)

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def allows_another_episode(self) -> bool:
        remaining = self.remaining()
        if remaining is None:
            return True
        recent = self.durations[-5:]
        estimate = max(recent) * 1.1 if recent else 0.0
        return remaining > estimate

    def elapsed(self) -> float:
        return time.monotonic() - self.started
