"""Tiny Gymnasium environments for tests, used as ``env.id: "tests.envs:ClassName"``."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class EmissionsEnv(gym.Env):
    """Keep a drifting level near zero; every step emits CO2 in proportion to the effort.

    20 steps per episode (it truncates itself, no TimeLimit needed). The reward is minus the
    squared level; ``info["co2_kg"]`` holds the episode's emissions so far, so the final step's
    info carries the episode total that atheria records as a metric.
    """

    metadata = {"render_modes": []}  # noqa: RUF012  (gymnasium's own envs declare it the same way)
    STEPS: ClassVar[int] = 20

    def __init__(self, steps: int = STEPS) -> None:
        self.steps = steps
        self.observation_space = spaces.Box(-10.0, 10.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._level = 0.0
        self._step = 0
        self._co2 = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._level = float(self.np_random.uniform(-1.0, 1.0))
        self._step = 0
        self._co2 = 0.0
        return self._observation(), {"co2_kg": 0.0}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        effort = float(np.clip(action, -1.0, 1.0)[0])
        self._level = float(np.clip(self._level + 0.3 * effort + self.np_random.normal(0.0, 0.1), -10.0, 10.0))
        self._step += 1
        self._co2 += 10.0 * abs(effort) + 1.0
        reward = -self._level**2
        return self._observation(), reward, False, self._step >= self.steps, {"co2_kg": self._co2}

    def _observation(self) -> np.ndarray:
        return np.array([self._level, self._step / self.steps], dtype=np.float32)


class CrashOnceEnv(EmissionsEnv):
    """EmissionsEnv that raises once, after ``after_steps`` steps, in the run whose first reset
    had seed ``crash_seed``: one job of a multi-seed experiment crashes, the others do not.
    ``marker`` is created when it crashes, so a resumed run goes on."""

    def __init__(self, crash_seed: int = 1, after_steps: int = 30, marker: str = "crashed") -> None:
        super().__init__()
        self.crash_seed, self.after_steps, self.marker = crash_seed, after_steps, marker
        self._first_seed: int | None = None
        self._steps_taken = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        if self._first_seed is None and seed is not None:
            self._first_seed = seed
        return super().reset(seed=seed, options=options)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._steps_taken += 1
        if self._first_seed == self.crash_seed and self._steps_taken > self.after_steps and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise RuntimeError("injected crash")
        return super().step(action)
