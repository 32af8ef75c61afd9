"""Capture and restore everything an SB3 model carries between environment steps.

What goes in is declared by SB3 itself (``_get_torch_save_params``: the policy, every
optimizer, SAC's entropy coefficient) plus the counters and per-step state that SB3's own
``save`` leaves out (``_last_obs``, exploration noise, DQN's target-update counter). Values
are tensors and plain containers only, so checkpoints load with ``weights_only=True``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import OrnsteinUhlenbeckActionNoise, VectorizedActionNoise
from stable_baselines3.common.save_util import recursive_getattr
from stable_baselines3.common.utils import get_device

from atheria_cli.agents.tensors import to_arrays, to_tensors

COUNTERS = (
    "num_timesteps",
    "_episode_num",
    "_n_updates",
    "_n_calls",
    "_current_progress_remaining",
    "exploration_rate",
)


def capture_model(model: BaseAlgorithm) -> dict[str, Any]:
    state_dict_names, variable_names = model._get_torch_save_params()
    return {
        "state_dicts": {name: recursive_getattr(model, name).state_dict() for name in state_dict_names},
        "variables": {name: recursive_getattr(model, name).detach().clone() for name in variable_names},
        "counters": {name: getattr(model, name) for name in COUNTERS if hasattr(model, name)},
        "last_obs": to_tensors(model._last_obs),
        "last_episode_starts": to_tensors(model._last_episode_starts),
        "last_original_obs": to_tensors(getattr(model, "_last_original_obs", None)),
        "ep_info_buffer": [_plain_info(info) for info in (model.ep_info_buffer or ())],
        "ep_success_buffer": [bool(value) for value in (model.ep_success_buffer or ())],
        "sde_noise": _capture_sde_noise(model),
        "action_noise": _capture_action_noise(model),
    }


def restore_model(model: BaseAlgorithm, state: dict[str, Any], *, with_step_state: bool = True) -> None:
    """Load parameters, optimizers and counters; with ``with_step_state`` also the last
    observation, episode-start flags, episode statistics and exploration noise."""
    device = get_device(model.device)
    for name, state_dict in state["state_dicts"].items():
        recursive_getattr(model, name).load_state_dict(state_dict)
    with torch.no_grad():
        for name, value in state["variables"].items():
            # In place: the optimizer holds a reference to this very tensor.
            recursive_getattr(model, name).copy_(value.to(device))
    for name, value in state["counters"].items():
        setattr(model, name, value)
    if not with_step_state:
        return
    model._last_obs = to_arrays(state["last_obs"])
    model._last_episode_starts = to_arrays(state["last_episode_starts"])
    if state["last_original_obs"] is not None:
        model._last_original_obs = to_arrays(state["last_original_obs"])
    # Both deques exist once the model is set up (SB3 types them Optional for before).
    assert model.ep_info_buffer is not None and model.ep_success_buffer is not None
    model.ep_info_buffer.clear()
    model.ep_info_buffer.extend(state["ep_info_buffer"])
    model.ep_success_buffer.clear()
    model.ep_success_buffer.extend(state["ep_success_buffer"])
    _restore_sde_noise(model, state["sde_noise"])
    _restore_action_noise(model, state["action_noise"])


def _plain_info(info: dict[str, Any]) -> dict[str, Any]:
    return {str(key): (value.item() if isinstance(value, np.generic) else value) for key, value in info.items()}


def _sde_distribution(model: BaseAlgorithm) -> Any:
    holder = getattr(model, "actor", None) or model.policy
    return getattr(holder, "action_dist", None)


def _capture_sde_noise(model: BaseAlgorithm) -> dict[str, torch.Tensor] | None:
    distribution = _sde_distribution(model)
    if not getattr(model, "use_sde", False) or not hasattr(distribution, "exploration_mat"):
        return None
    return {
        "exploration_mat": distribution.exploration_mat.detach().clone(),
        "exploration_matrices": distribution.exploration_matrices.detach().clone(),
    }


def _restore_sde_noise(model: BaseAlgorithm, noise: dict[str, torch.Tensor] | None) -> None:
    if noise is None:
        return
    distribution = _sde_distribution(model)
    device = get_device(model.device)
    distribution.exploration_mat = noise["exploration_mat"].to(device)
    distribution.exploration_matrices = noise["exploration_matrices"].to(device)
    # The weights distribution is re-derivable from log_std, which the policy state holds.


def _noises(model: BaseAlgorithm) -> list[Any]:
    noise = model.action_noise if hasattr(model, "action_noise") else None
    if noise is None:
        return []
    return list(noise.noises) if isinstance(noise, VectorizedActionNoise) else [noise]


def _capture_action_noise(model: BaseAlgorithm) -> list[torch.Tensor | None]:
    return [
        torch.from_numpy(np.array(noise.noise_prev)) if isinstance(noise, OrnsteinUhlenbeckActionNoise) else None
        for noise in _noises(model)
    ]


def _restore_action_noise(model: BaseAlgorithm, saved: list[torch.Tensor | None]) -> None:
    for noise, value in zip(_noises(model), saved, strict=True):
        if value is not None:
            noise.noise_prev = value.numpy()
