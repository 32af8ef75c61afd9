"""SB3's training loops, one environment step at a time.

``model.learn`` can only stop from a callback, and a callback that stops at an episode's last
step does so *before* that transition is stored and trained on. atheria needs to stop exactly
after it, so these loops replay SB3's ``collect_rollouts`` + ``train`` sequence step by step,
with the same calls in the same order, and keep the little state that lives between steps
(position in the current rollout or training chunk) so a checkpoint can carry it.

One loop per algorithm family, as SB3 itself has: on-policy (A2C, PPO, TRPO) and off-policy
(SAC, TD3, DDPG, DQN, TQC, QRDQN, CrossQ); MaskablePPO and RecurrentPPO, whose own
``collect_rollouts`` differ, override the on-policy loop's hooks.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.utils import obs_as_tensor, should_collect_more_steps

from atheria_cli.agents.buffers import ROLLOUT_ARRAYS, capture_rollout, restore_rollout
from atheria_cli.agents.replay import ReplayJournal, SegmentReader
from atheria_cli.trainers.base import StepResult

__all__ = [
    "MaskablePPOLoop",
    "OffPolicyLoop",
    "OnPolicyLoop",
    "RecurrentPPOLoop",
    "StepResult",
    "TrainingLoop",
    "loop_class",
    "make_loop",
]


class TrainingLoop:
    """Drives one SB3 model's training, one vectorized environment step per :meth:`step`."""

    def __init__(self, model: BaseAlgorithm, schedule_timesteps: int) -> None:
        self.model = model
        self.schedule_timesteps = schedule_timesteps
        # Steps since each env's last reset: 0 means it sits at the start of an episode.
        # (SB3 tracks episode starts for on-policy algorithms only.)
        self.episode_steps = np.zeros(model.env.num_envs, dtype=np.int64)
        self._prepare_model()

    def _count_steps(self, dones: np.ndarray) -> None:
        self.episode_steps += 1
        self.episode_steps[np.asarray(dones, dtype=bool)] = 0

    def base_state_dict(self) -> dict[str, Any]:
        return {"episode_steps": torch.from_numpy(self.episode_steps.copy())}

    def load_base_state_dict(self, state: dict[str, Any]) -> None:
        self.episode_steps = state["episode_steps"].numpy().copy()

    def _prepare_model(self) -> None:
        """What ``model._setup_learn`` does, minus resetting the env and logging to files."""
        model = self.model
        model.set_logger(Logger(folder=None, output_formats=[]))
        model.start_time = time.time_ns()
        model.ep_info_buffer = deque(maxlen=model._stats_window_size)
        model.ep_success_buffer = deque(maxlen=model._stats_window_size)
        model._total_timesteps = self.schedule_timesteps
        model._num_timesteps_at_start = 0

    def start_fresh(self) -> None:
        """First reset of a new run (seeded by SB3's ``env.seed`` at construction)."""
        model = self.model
        if model.action_noise is not None:
            model.action_noise.reset()
        model._last_obs = model.env.reset()
        model._last_episode_starts = np.ones((model.env.num_envs,), dtype=bool)
        if model._vec_normalize_env is not None:
            model._last_original_obs = model._vec_normalize_env.get_original_obs()

    def update_progress(self) -> None:
        """SB3's progress-remaining over the configured horizon, floored at 0."""
        done = float(self.model.num_timesteps) / float(self.schedule_timesteps)
        self.model._current_progress_remaining = max(0.0, 1.0 - done)

    def step(self) -> StepResult:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def buffer_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_buffer_state(self, state: dict[str, Any], read_segment: SegmentReader) -> None:
        raise NotImplementedError


class OnPolicyLoop(TrainingLoop):
    """A2C, PPO, TRPO: fill the rollout buffer step by step; train when it is full.

    Subclasses override the hooks where their own ``collect_rollouts`` differs from SB3's.
    """

    model: OnPolicyAlgorithm
    # The rollout buffer's per-row arrays that a checkpoint carries.
    rollout_arrays: tuple[str, ...] = ROLLOUT_ARRAYS

    def __init__(self, model: OnPolicyAlgorithm, schedule_timesteps: int) -> None:
        super().__init__(model, schedule_timesteps)
        self.iteration = 0

    def _start_rollout(self) -> None:
        model = self.model
        model.policy.set_training_mode(False)
        model.rollout_buffer.reset()
        if model.use_sde:
            model.policy.reset_noise(model.env.num_envs)

    def _act(self, obs_tensor: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Actions, values and log-probabilities for the last observation (under no_grad)."""
        actions, values, log_probs = self.model.policy(obs_tensor)
        return actions, values, log_probs

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        """The policy's actions as the env takes them."""
        model = self.model
        if not isinstance(model.action_space, spaces.Box):
            return actions
        if model.policy.squash_output:
            return model.policy.unscale_action(actions)
        return np.clip(actions, model.action_space.low, model.action_space.high)

    def _terminal_value(self, index: int, terminal_obs: Any) -> torch.Tensor:
        """Value of a truncated episode's last observation (SB3 #633)."""
        obs_tensor = self.model.policy.obs_to_tensor(terminal_obs)[0]
        with torch.no_grad():
            return self.model.policy.predict_values(obs_tensor)[0]

    def _last_values(self, new_obs: Any, dones: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return self.model.policy.predict_values(obs_as_tensor(new_obs, self.model.device))

    def _add_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments of this algorithm's ``rollout_buffer.add``."""
        return {}

    def _after_add(self) -> None:
        """Per-step state the algorithm advances after storing the step."""

    def step(self) -> StepResult:
        model, buffer, env = self.model, self.model.rollout_buffer, self.model.env
        n_steps = buffer.pos
        if n_steps == 0:
            self._start_rollout()
        if model.use_sde and model.sde_sample_freq > 0 and n_steps % model.sde_sample_freq == 0:
            model.policy.reset_noise(env.num_envs)

        with torch.no_grad():
            actions_tensor, values, log_probs = self._act(obs_as_tensor(model._last_obs, model.device))
        actions = actions_tensor.cpu().numpy()
        new_obs, rewards, dones, infos = env.step(self._env_actions(actions))
        model.num_timesteps += env.num_envs
        model._update_info_buffer(infos, dones)

        if isinstance(model.action_space, spaces.Discrete):
            actions = actions.reshape(-1, 1)
        for idx, done in enumerate(dones):
            if done and infos[idx].get("terminal_observation") is not None and infos[idx].get("TimeLimit.truncated", False):
                rewards[idx] += model.gamma * self._terminal_value(idx, infos[idx]["terminal_observation"])

        buffer.add(model._last_obs, actions, rewards, model._last_episode_starts, values, log_probs, **self._add_kwargs())
        model._last_obs = new_obs
        model._last_episode_starts = dones
        self._after_add()

        if buffer.full:
            last_values = self._last_values(new_obs, dones)
            buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
            self.iteration += 1
            self.update_progress()
            model.train()
            buffer.reset()
        self._count_steps(dones)
        return StepResult(dones=dones, infos=infos)

    def state_dict(self) -> dict[str, Any]:
        return {"family": "on_policy", "iteration": self.iteration, **self.base_state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_base_state_dict(state)
        self.iteration = int(state["iteration"])
        # Mid-rollout the policy collects in eval mode, as SB3 set it at the rollout's start.
        self.model.policy.set_training_mode(False)

    def buffer_state(self) -> dict[str, Any]:
        return capture_rollout(self.model.rollout_buffer, self.rollout_arrays)

    def load_buffer_state(self, state: dict[str, Any], read_segment: SegmentReader) -> None:
        restore_rollout(self.model.rollout_buffer, state)


class MaskablePPOLoop(OnPolicyLoop):
    """sb3-contrib's MaskablePPO: the env's action masks go into the policy and the buffer."""

    rollout_arrays = (*ROLLOUT_ARRAYS, "action_masks")

    def __init__(self, model: OnPolicyAlgorithm, schedule_timesteps: int) -> None:
        super().__init__(model, schedule_timesteps)
        self._action_masks: np.ndarray | None = None

    def _act(self, obs_tensor: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from sb3_contrib.common.maskable.utils import get_action_masks

        env = self.model.env
        assert env is not None  # the loop drives a model built on its env
        self._action_masks = get_action_masks(env)
        actions, values, log_probs = self.model.policy(obs_tensor, action_masks=self._action_masks)
        return actions, values, log_probs

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        return actions  # MaskablePPO steps the env with the raw actions: no clipping

    def _add_kwargs(self) -> dict[str, Any]:
        return {"action_masks": self._action_masks}


class RecurrentPPOLoop(OnPolicyLoop):
    """sb3-contrib's RecurrentPPO: the LSTM states of actor and critic carry over between steps.

    RecurrentPPO's own ``save`` leaves ``_last_lstm_states`` out; the loop's checkpoint state
    carries them, so a resumed agent keeps every env's memory mid-episode.
    """

    rollout_arrays = (*ROLLOUT_ARRAYS, "hidden_states_pi", "cell_states_pi", "hidden_states_vf", "cell_states_vf")

    def __init__(self, model: OnPolicyAlgorithm, schedule_timesteps: int) -> None:
        super().__init__(model, schedule_timesteps)
        # collect_rollouts' local ``lstm_states``: a copy of the model's at the rollout's start.
        self._lstm_states: Any = model._last_lstm_states

    def _start_rollout(self) -> None:
        super()._start_rollout()
        self._lstm_states = copy.deepcopy(self.model._last_lstm_states)

    def _act(self, obs_tensor: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        model = self.model
        episode_starts = torch.tensor(model._last_episode_starts, dtype=torch.float32, device=model.device)
        actions, values, log_probs, self._lstm_states = model.policy(obs_tensor, self._lstm_states, episode_starts)
        return actions, values, log_probs

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        if isinstance(self.model.action_space, spaces.Box):
            return np.clip(actions, self.model.action_space.low, self.model.action_space.high)
        return actions

    def _terminal_value(self, index: int, terminal_obs: Any) -> torch.Tensor:
        model = self.model
        obs_tensor = model.policy.obs_to_tensor(terminal_obs)[0]
        with torch.no_grad():
            hidden, cell = self._lstm_states.vf
            state = (hidden[:, index : index + 1, :].contiguous(), cell[:, index : index + 1, :].contiguous())
            episode_starts = torch.tensor([False], dtype=torch.float32, device=model.device)
            return model.policy.predict_values(obs_tensor, state, episode_starts)[0]  # type: ignore[call-arg]

    def _last_values(self, new_obs: Any, dones: np.ndarray) -> torch.Tensor:
        model = self.model
        with torch.no_grad():
            episode_starts = torch.tensor(dones, dtype=torch.float32, device=model.device)
            return model.policy.predict_values(  # type: ignore[call-arg]
                obs_as_tensor(new_obs, model.device), self._lstm_states.vf, episode_starts
            )

    def _add_kwargs(self) -> dict[str, Any]:
        return {"lstm_states": self.model._last_lstm_states}

    def _after_add(self) -> None:
        self.model._last_lstm_states = self._lstm_states

    def state_dict(self) -> dict[str, Any]:
        states = self.model._last_lstm_states
        lstm = {part: [tensor.detach().cpu().clone() for tensor in getattr(states, part)] for part in ("pi", "vf")}
        return {**super().state_dict(), "lstm_states": lstm}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from sb3_contrib.common.recurrent.type_aliases import RNNStates

        super().load_state_dict(state)
        device = self.model.device
        pi, vf = ([tensor.to(device) for tensor in state["lstm_states"][part]] for part in ("pi", "vf"))
        self.model._last_lstm_states = RNNStates(pi=(pi[0], pi[1]), vf=(vf[0], vf[1]))
        self._lstm_states = self.model._last_lstm_states


class OffPolicyLoop(TrainingLoop):
    """SAC, TD3, DDPG, DQN: collect ``train_freq`` steps (or episodes), then train."""

    model: OffPolicyAlgorithm

    def __init__(self, model: OffPolicyAlgorithm, schedule_timesteps: int) -> None:
        super().__init__(model, schedule_timesteps)
        # Position inside the current collection chunk (SB3's collect_rollouts locals).
        self.chunk_steps = 0
        self.chunk_episodes = 0
        self.journal = ReplayJournal(model.replay_buffer)

    def _start_chunk(self) -> None:
        model = self.model
        model.policy.set_training_mode(False)
        if model.use_sde:
            model.actor.reset_noise(model.env.num_envs)

    def step(self) -> StepResult:
        model, env = self.model, self.model.env
        if self.chunk_steps == 0 and self.chunk_episodes == 0:
            self._start_chunk()
        if model.use_sde and model.sde_sample_freq > 0 and self.chunk_steps % model.sde_sample_freq == 0:
            model.actor.reset_noise(env.num_envs)

        actions, buffer_actions = model._sample_action(model.learning_starts, model.action_noise, env.num_envs)
        new_obs, rewards, dones, infos = env.step(actions)
        model.num_timesteps += env.num_envs
        self.chunk_steps += 1

        model._update_info_buffer(infos, dones)
        model._store_transition(model.replay_buffer, buffer_actions, new_obs, rewards, dones, infos)
        self.journal.row_added()
        self.update_progress()
        model._on_step()
        for idx, done in enumerate(dones):
            if done:
                self.chunk_episodes += 1
                model._episode_num += 1
                if model.action_noise is not None:
                    model.action_noise.reset(**({"indices": [idx]} if env.num_envs > 1 else {}))

        if not should_collect_more_steps(model.train_freq, self.chunk_steps, self.chunk_episodes):
            collected = self.chunk_steps * env.num_envs
            self.chunk_steps = self.chunk_episodes = 0
            if model.num_timesteps > 0 and model.num_timesteps > model.learning_starts:
                gradient_steps = model.gradient_steps if model.gradient_steps >= 0 else collected
                if gradient_steps > 0:
                    model.train(batch_size=model.batch_size, gradient_steps=gradient_steps)
        self._count_steps(dones)
        return StepResult(dones=dones, infos=infos)

    def state_dict(self) -> dict[str, Any]:
        return {
            "family": "off_policy",
            "chunk_steps": self.chunk_steps,
            "chunk_episodes": self.chunk_episodes,
            **self.base_state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_base_state_dict(state)
        self.chunk_steps = int(state["chunk_steps"])
        self.chunk_episodes = int(state["chunk_episodes"])
        self.model.policy.set_training_mode(False)

    def buffer_state(self) -> dict[str, Any]:
        return self.journal.state_dict()

    def load_buffer_state(self, state: dict[str, Any], read_segment: SegmentReader) -> None:
        self.journal.load_state_dict(state, read_segment)


# Algorithms whose collect_rollouts differs from their family's (keyed by class name, so that
# this module never imports the optional sb3-contrib).
SPECIAL_LOOPS: dict[str, type[OnPolicyLoop]] = {"MaskablePPO": MaskablePPOLoop, "RecurrentPPO": RecurrentPPOLoop}


def loop_class(model: BaseAlgorithm) -> type[TrainingLoop]:
    """The loop that drives ``model``; TypeError for an algorithm of neither family (ARS)."""
    special = SPECIAL_LOOPS.get(type(model).__name__)
    if special is not None and isinstance(model, OnPolicyAlgorithm):
        return special
    if isinstance(model, OffPolicyAlgorithm):
        return OffPolicyLoop
    if isinstance(model, OnPolicyAlgorithm):
        return OnPolicyLoop
    raise TypeError(f"unsupported algorithm family: {type(model).__name__}")


def make_loop(model: BaseAlgorithm, schedule_timesteps: int) -> TrainingLoop:
    return loop_class(model)(model, schedule_timesteps)
