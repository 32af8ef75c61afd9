"""A wrapper that remembers how the last ``reset`` was made, so a resume can replay it.

SB3's vectorized envs reset an environment inside the ``step`` that ends its episode. A
checkpoint taken at that moment must restore an environment that has *just been reset*;
Gymnasium environments draw their reset from ``np_random``, so replaying the reset with the
same seed, or the same generator state, reproduces it exactly.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym


class ResetRecorder(gym.Wrapper):
    """Records the seed and the RNG state an environment's last reset started from."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.last_reset: dict[str, Any] | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        self.last_reset = {
            "seed": seed,
            "options": copy.deepcopy(options),
            "rng": copy.deepcopy(self.env.unwrapped.np_random.bit_generator.state),
        }
        return self.env.reset(seed=seed, options=options)

    def replay_reset(self, record: dict[str, Any]) -> Any:
        """Reset exactly as recorded: same seed, or the same generator state without a seed."""
        if record["seed"] is None:
            self.env.unwrapped.np_random.bit_generator.state = copy.deepcopy(record["rng"])
        return self.reset(seed=record["seed"], options=record.get("options"))
