"""Pendulum that writes the wall-clock time and the process CPU time of its first ``step`` to
``$ATHERIA_BENCH_STAMP``.

Used by scripts/bench_startup.py to time process start to first environment step, identically
for ``atheria train`` and a plain SB3 script.
"""

from __future__ import annotations

import os
import time
from typing import Any

from gymnasium.envs.classic_control.pendulum import PendulumEnv


class StampedPendulum(PendulumEnv):
    stamped = False

    def step(self, action: Any) -> Any:
        if not StampedPendulum.stamped:
            StampedPendulum.stamped = True
            with open(os.environ["ATHERIA_BENCH_STAMP"], "w", encoding="utf-8") as stamp:
                stamp.write(f"{time.time()!r} {time.process_time()!r}")
        return super().step(action)
