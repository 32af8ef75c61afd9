"""Acting with a trained model outside training, one episode of one (unvectorized) env at a time.

``model.predict(obs, deterministic=True)`` is all most algorithms need. Observations are first
normalized and frame-stacked as in training (VecNormalize, ``frame_stack``). RecurrentPPO also
needs its LSTM state carried from step to step and reset at each episode's start, and MaskablePPO
the env's current action mask; the registry declares which algorithm needs which.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.common.vec_env.stacked_observations import StackedObservations

from atheria_cli.agents.registry import ALGORITHM_SPECS


class ModelActor:
    """Deterministic actions of ``model`` on ``env``; call :meth:`start_episode` after each reset."""

    def __init__(
        self,
        model: BaseAlgorithm,
        env: gym.Env,
        normalizer: VecNormalize | None = None,
        stacker: StackedObservations | None = None,
    ) -> None:
        spec = ALGORITHM_SPECS.get(type(model).__name__)
        self.model, self.env, self.normalizer, self.stacker = model, env, normalizer, stacker
        # what the model is fed: the env's observations, stacked as in training
        self.observation_space = stacker.stacked_observation_space if stacker is not None else env.observation_space
        self.recurrent = spec is not None and spec.recurrent
        self.masked = spec is not None and spec.needs_action_masks
        self._state: Any = None
        self._episode_start = np.ones((1,), dtype=bool)
        self._first_step = True

    def start_episode(self) -> None:
        self._state = None
        self._episode_start = np.ones((1,), dtype=bool)
        self._first_step = True

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Actions for a batch of one raw observation."""
        model_input: np.ndarray | dict[str, np.ndarray] = obs
        if self.normalizer is not None and self.normalizer.norm_obs:
            model_input = self.normalizer.normalize_obs(obs)
        if self.stacker is not None:
            first, self._first_step = self._first_step, False
            done = np.zeros(1, dtype=bool)
            model_input = self.stacker.reset(model_input) if first else self.stacker.update(model_input, done, [{}])[0]
        kwargs: dict[str, Any] = {}
        if self.recurrent:
            kwargs.update(state=self._state, episode_start=self._episode_start)
        if self.masked:
            kwargs["action_masks"] = np.asarray(self.env.get_wrapper_attr("action_masks")())[None]
        actions, state = self.model.predict(model_input, deterministic=True, **kwargs)
        if self.recurrent:
            self._state, self._episode_start = state, np.zeros((1,), dtype=bool)
        return actions
