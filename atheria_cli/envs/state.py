"""Capture and restore the training environment at a checkpoint.

A checkpoint is taken between two vectorized steps. An environment whose episode just ended
has been reset inside that step: resume replays that reset (same seed or generator state) and
continues exactly. An environment in the middle of an episode (``n_envs > 1``, or a checkpoint
taken on a signal or by ``save_every_steps``) continues exactly when it implements the state
protocol (:mod:`atheria_cli.envs.protocol`); otherwise resume starts a new episode for it, and its
unfinished episode is neither counted nor recorded (its transitions stay in an off-policy
replay buffer; an on-policy partial rollout treats it as ended there).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium.wrappers import TimeLimit
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecNormalize

from atheria_cli.agents.tensors import to_arrays, to_tensors
from atheria_cli.envs.factory import base_vec_env, frame_stack_of, vec_normalize_of
from atheria_cli.envs.protocol import supports_state
from atheria_cli.envs.recorder import ResetRecorder


@dataclass
class EnvRestoreReport:
    """What resuming did to each environment."""

    restarted: list[int] = field(default_factory=list)  # mid-episode envs that start a new episode
    continued: list[int] = field(default_factory=list)  # mid-episode envs restored exactly
    not_reproducible: list[int] = field(default_factory=list)  # replayed reset gave another observation


def _vec_env(model: BaseAlgorithm) -> VecEnv:
    env = model.get_env()
    assert env is not None, "atheria builds every model with its env"
    return env


def capture_env(model: BaseAlgorithm, at_episode_start: np.ndarray) -> dict[str, Any]:
    vec_env = _vec_env(model)
    recorders = _recorders(vec_env)
    return {
        "resets": [copy.deepcopy(recorder.last_reset) for recorder in recorders],
        "mid_episode": [
            None if started else _capture_mid_episode(recorder)
            for recorder, started in zip(recorders, at_episode_start, strict=True)
        ],
        "action_space_rng": copy.deepcopy(model.action_space.np_random.bit_generator.state),
        "vec_normalize": _capture_vec_normalize(vec_normalize_of(vec_env)),
        # The stacked frames are part of each env's state: the policy sees them next step.
        "frame_stack": _capture_frame_stack(frame_stack_of(vec_env)),
    }


def restore_env(model: BaseAlgorithm, state: dict[str, Any], at_episode_start: np.ndarray) -> EnvRestoreReport:
    """Bring the freshly built env of ``model`` to the checkpoint's moment.

    ``at_episode_start[i]`` says env ``i`` had just been reset when the checkpoint was taken.
    Call after the model state is restored (this reads and adjusts ``_last_obs``).
    """
    vec_env = _vec_env(model)
    inner = base_vec_env(vec_env)
    normalizer, stack = vec_normalize_of(vec_env), frame_stack_of(vec_env)
    report = EnvRestoreReport()
    if stack is not None:
        _restore_frame_stack(stack, state.get("frame_stack"))
    # The raw (unnormalized, unstacked) last observation: VecNormalize keeps it for every algorithm,
    # while SB3 tracks ``_last_original_obs`` for off-policy ones only.
    if normalizer is not None:
        raw_last = to_arrays(state["vec_normalize"]["old_obs"])
    elif stack is not None:
        raw_last = _newest_frames(stack, model._last_obs)
    else:
        raw_last = model._last_obs
    assert isinstance(model._last_episode_starts, np.ndarray)  # set by the loop's start or restore
    for index, (recorder, record) in enumerate(zip(_recorders(vec_env), state["resets"], strict=True)):
        obs, info = recorder.replay_reset(record)
        inner.reset_infos[index] = info
        mid_episode = state.get("mid_episode", [None] * len(state["resets"]))[index]
        if at_episode_start[index]:
            if not _same_obs(obs, raw_last, index):
                report.not_reproducible.append(index)
        elif mid_episode is not None and supports_state(recorder):
            _restore_mid_episode(recorder, mid_episode)
            report.continued.append(index)
        else:
            report.restarted.append(index)
            _set_row(raw_last, index, obs)
            model._last_episode_starts[index] = True
    inner._reset_seeds()
    inner._reset_options()
    model.action_space.np_random.bit_generator.state = copy.deepcopy(state["action_space_rng"])
    if normalizer is not None:
        _restore_vec_normalize(normalizer, state["vec_normalize"])
        if report.restarted:
            normalizer.returns[report.restarted] = 0.0
            normalizer.old_obs = raw_last
            model._last_obs = normalizer.normalize_obs(raw_last)
            if model._last_original_obs is not None:
                model._last_original_obs = raw_last
    if stack is not None and report.restarted:
        frames = normalizer.normalize_obs(raw_last) if normalizer is not None else raw_last
        _restart_stacks(stack, frames, report.restarted)
        model._last_obs = stack.stacked_obs.stacked_obs.copy()
    return report


def _capture_frame_stack(stack: VecFrameStack | None) -> Any:
    return None if stack is None else to_tensors(copy.deepcopy(stack.stacked_obs.stacked_obs))


def _restore_frame_stack(stack: VecFrameStack, saved: Any) -> None:
    if saved is None:
        raise ValueError("the checkpoint has no stacked frames, but this env stacks them (frame_stack)")
    stack.stacked_obs.stacked_obs = to_arrays(saved)


def _newest_frames(stack: VecFrameStack, stacked: Any) -> np.ndarray:
    """The last frame of each env's stack (Box observations): what the env itself returned."""
    stacker = stack.stacked_obs
    width = stacker.stacked_shape[stacker.repeat_axis] // stacker.n_stack
    if stacker.channels_first:
        return np.array(stacked[:, -width:, ...])
    return np.array(stacked[..., -width:])


def _restart_stacks(stack: VecFrameStack, frames: Any, restarted: list[int]) -> None:
    """Stacks of envs that start a new episode: zeros and the new first frame, as SB3's reset does."""
    stacker = stack.stacked_obs
    for index in restarted:
        stacker.stacked_obs[index] = 0
        if stacker.channels_first:
            stacker.stacked_obs[index, -frames.shape[1] :, ...] = frames[index]
        else:
            stacker.stacked_obs[index, ..., -frames.shape[-1] :] = frames[index]


def _wrappers(env: Any) -> list[Any]:
    chain = []
    while env is not None:
        chain.append(env)
        env = getattr(env, "env", None)
    return chain


def _capture_mid_episode(recorder: ResetRecorder) -> dict[str, Any] | None:
    """The env's own state and its wrappers' counters, when the env implements the protocol."""
    if not supports_state(recorder):
        return None
    wrappers: dict[str, Any] = {}
    for wrapper in _wrappers(recorder):
        if isinstance(wrapper, TimeLimit):
            assert wrapper._elapsed_steps is not None  # set by reset: this env is mid-episode
            wrappers["time_limit_elapsed"] = int(wrapper._elapsed_steps)
        elif isinstance(wrapper, Monitor):
            wrappers["monitor_rewards"] = [float(reward) for reward in wrapper.rewards]
    return {"env": to_tensors(recorder.unwrapped.get_state()), "wrappers": wrappers}  # type: ignore[attr-defined]  # protocol checked


def _restore_mid_episode(recorder: ResetRecorder, saved: dict[str, Any]) -> None:
    recorder.unwrapped.set_state(to_arrays(saved["env"]))  # type: ignore[attr-defined]  # supports_state checked
    for wrapper in _wrappers(recorder):
        if isinstance(wrapper, TimeLimit) and "time_limit_elapsed" in saved["wrappers"]:
            wrapper._elapsed_steps = saved["wrappers"]["time_limit_elapsed"]
        elif isinstance(wrapper, Monitor) and "monitor_rewards" in saved["wrappers"]:
            wrapper.rewards = list(saved["wrappers"]["monitor_rewards"])
            wrapper.needs_reset = False


def _recorders(vec_env: VecEnv) -> list[ResetRecorder]:
    recorders = base_vec_env(vec_env).envs
    assert all(isinstance(env, ResetRecorder) for env in recorders), "env was not built by atheria's factory"
    return recorders  # type: ignore[return-value]


def _same_obs(obs: Any, stacked: Any, index: int) -> bool:
    if isinstance(obs, dict):
        return all(np.array_equal(np.asarray(obs[key]), stacked[key][index]) for key in obs)
    return np.array_equal(np.asarray(obs), stacked[index])


def _set_row(stacked: Any, index: int, obs: Any) -> None:
    if isinstance(stacked, dict):
        for key in stacked:
            stacked[key][index] = obs[key]
    else:
        stacked[index] = obs


def _rms_state(rms: Any) -> Any:
    if isinstance(rms, dict):
        return {key: _rms_state(value) for key, value in rms.items()}
    return {"mean": to_tensors(np.asarray(rms.mean)), "var": to_tensors(np.asarray(rms.var)), "count": float(rms.count)}


def _load_rms(rms: Any, state: Any) -> None:
    if isinstance(rms, dict):
        for key, value in rms.items():
            _load_rms(value, state[key])
        return
    assert isinstance(rms, RunningMeanStd)
    rms.mean = to_arrays(state["mean"])
    rms.var = to_arrays(state["var"])
    rms.count = state["count"]


def _capture_vec_normalize(normalizer: VecNormalize | None) -> dict[str, Any] | None:
    if normalizer is None:
        return None
    return {
        "obs_rms": _rms_state(normalizer.obs_rms) if normalizer.norm_obs else None,
        "ret_rms": _rms_state(normalizer.ret_rms),
        "returns": to_tensors(np.asarray(normalizer.returns)),
        "old_obs": to_tensors(normalizer.old_obs),
        "old_reward": to_tensors(np.asarray(normalizer.old_reward)),
    }


def _restore_vec_normalize(normalizer: VecNormalize, state: dict[str, Any] | None) -> None:
    if state is None:
        return
    if state["obs_rms"] is not None:
        _load_rms(normalizer.obs_rms, state["obs_rms"])
    _load_rms(normalizer.ret_rms, state["ret_rms"])
    normalizer.returns = to_arrays(state["returns"])
    normalizer.old_obs = to_arrays(state["old_obs"])
    normalizer.old_reward = to_arrays(state["old_reward"])


def load_normalizer_statistics(vec_env: VecEnv, state: dict[str, Any]) -> None:
    """Only the running statistics, frozen: for inference and export."""
    normalizer = vec_normalize_of(vec_env)
    saved = state.get("vec_normalize")
    if normalizer is None or saved is None:
        return
    if saved["obs_rms"] is not None:
        _load_rms(normalizer.obs_rms, saved["obs_rms"])
    _load_rms(normalizer.ret_rms, saved["ret_rms"])
    normalizer.training = False
    normalizer.norm_reward = False
