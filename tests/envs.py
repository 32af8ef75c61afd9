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
        reward = -(self._level**2)
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


class MaskedTargetEnv(gym.Env):
    """Pick the target action among those the mask allows (for MaskablePPO).

    Each step draws a target and, from the env's own generator, which other actions are
    invalid; ``action_masks()`` says which are allowed. The observation is the target one-hot
    followed by the mask. Reward 1 for the target, -1 for a masked action, else 0;
    ``info["masked_actions"]`` counts the masked actions taken this episode. It truncates
    itself after ``steps`` steps.
    """

    metadata = {"render_modes": []}  # noqa: RUF012
    ACTIONS: ClassVar[int] = 4

    def __init__(self, steps: int = 20) -> None:
        self.steps = steps
        self.observation_space = spaces.Box(0.0, 1.0, shape=(2 * self.ACTIONS,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.ACTIONS)
        self._step = 0
        self._target = 0
        self._mask = np.ones(self.ACTIONS, dtype=bool)
        self._masked_actions = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._step = 0
        self._masked_actions = 0
        self._draw()
        return self._observation(), {"masked_actions": 0}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = int(action)
        reward = 1.0 if action == self._target else (-1.0 if not self._mask[action] else 0.0)
        self._masked_actions += int(not self._mask[action])
        self._step += 1
        self._draw()
        return self._observation(), reward, False, self._step >= self.steps, {"masked_actions": self._masked_actions}

    def action_masks(self) -> np.ndarray:
        return self._mask.copy()

    def _draw(self) -> None:
        self._target = int(self.np_random.integers(self.ACTIONS))
        self._mask = self.np_random.random(self.ACTIONS) < 0.5
        self._mask[self._target] = True

    def _observation(self) -> np.ndarray:
        one_hot = np.zeros(self.ACTIONS, dtype=np.float32)
        one_hot[self._target] = 1.0
        return np.concatenate([one_hot, self._mask.astype(np.float32)])
