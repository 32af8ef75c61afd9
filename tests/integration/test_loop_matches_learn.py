"""atheria's step loop trains bit-identically to SB3's own ``model.learn``.

The README promises "the same calls in the same order" as ``learn``; this keeps the promise
true when SB3 moves. The SB3 side is built with SB3's own ``make_vec_env`` and constructor,
not atheria's factory: the two sides share nothing but the seed and the hyperparameters. Schedules are constant
(atheria's horizon is ``train.schedule_timesteps``, ``learn``'s is ``total_timesteps``), and
episode lengths are chosen so an episode boundary falls where ``learn`` would stop.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env

from tests.conftest import tiny_config
from tests.integration.helpers import last_payload, train

pytestmark = pytest.mark.integration

EPISODE_STEPS = 50
EPISODES = 3
NET = {"net_arch": [16]}
CASES: dict[str, tuple[type[BaseAlgorithm], str, dict[str, Any]]] = {
    # On-policy: one rollout per episode, so learn's rollout boundary is an episode boundary.
    "PPO": (PPO, "Pendulum-v1", {"n_steps": EPISODE_STEPS, "batch_size": 25, "n_epochs": 2, "policy_kwargs": NET}),
    "A2C": (A2C, "Pendulum-v1", {"n_steps": 10, "policy_kwargs": NET}),
    # Off-policy: learn trains after every train_freq steps once learning_starts is passed.
    "SAC": (SAC, "Pendulum-v1", {"learning_starts": 20, "batch_size": 16, "buffer_size": 1000, "policy_kwargs": NET}),
    "DQN": (
        DQN,
        "CartPole-v1",
        {
            "learning_starts": 20,
            "batch_size": 16,
            "buffer_size": 1000,
            "train_freq": 1,
            "target_update_interval": 10,
            "exploration_initial_eps": 0.1,
            "exploration_final_eps": 0.1,  # a constant schedule
            "policy_kwargs": NET,
        },
    ),
}


def _sb3_model(algo: type[BaseAlgorithm], env_id: str, hyperparams: dict[str, Any]) -> BaseAlgorithm:
    env = make_vec_env(lambda: gym.make(env_id, max_episode_steps=EPISODE_STEPS), n_envs=1)
    return algo("MlpPolicy", env, seed=0, device="cpu", verbose=0, **hyperparams)


@pytest.mark.parametrize("name", list(CASES))
def test_atheria_loop_equals_sb3_learn(tmp_path: Path, name: str) -> None:
    # Deep copies: SB3 fills policy_kwargs in place (A2C adds its RMSprop optimizer).
    algo, env_id, hyperparams = CASES[name][0], CASES[name][1], copy.deepcopy(CASES[name][2])
    env = {"id": env_id, "max_episode_steps": EPISODE_STEPS}
    config = tiny_config({name: {"hyperparams": copy.deepcopy(hyperparams)}}, env=env)
    train(config, tmp_path, episodes=EPISODES)
    payload = last_payload(tmp_path, name)
    timesteps = payload["num_timesteps"]
    if issubclass(algo, (PPO, A2C)):
        assert timesteps % hyperparams["n_steps"] == 0, "the comparison needs atheria to stop on a rollout boundary"
    reference = _sb3_model(algo, env_id, copy.deepcopy(hyperparams))
    initial = {key: value.clone() for key, value in reference.policy.state_dict().items()}
    reference.learn(total_timesteps=timesteps)
    assert reference.num_timesteps == timesteps
    ours = payload["model"]["state_dicts"]["policy"]
    theirs = reference.policy.state_dict()
    assert set(ours) == set(theirs)
    differing = [key for key in theirs if not torch.equal(ours[key], theirs[key].cpu())]
    assert not differing, f"{name}: policy tensors differ from model.learn: {differing}"
    # Both must actually have trained: the weights moved away from their initial values.
    assert any(not torch.equal(initial[key], theirs[key]) for key in theirs)
