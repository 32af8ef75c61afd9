"""An SB3 model's evaluation during training (``train.eval``): K episodes on a separate env, outside training.

Every evaluation runs on its own DummyVecEnv (one env), seeded ``seed``, ``seed + 1``, ... for
its K episodes, with the training VecNormalize's observation statistics copied and frozen
(``training=False``, ``norm_reward=False``). It draws from the global generators (a
stochastic policy samples from torch's), so their states are captured before and restored
after, and reseeded from ``seed`` in between: the evaluation neither consumes training
randomness nor depends on it, which keeps a resumed run identical to an uninterrupted one.
"""

from __future__ import annotations

import copy
import random
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from atheria_cli.agents.rng import capture_global_rng, restore_global_rng
from atheria_cli.config import EnvConfig, EvalConfig
from atheria_cli.envs.factory import make_env, vec_normalize_of
from atheria_cli.run.formats import EvaluationRecord, Stat
from atheria_cli.training.episodes import metric_value


class Evaluator:
    """Runs the evaluations of one agent's session; its env lives as long as the session."""

    def __init__(self, env_config: EnvConfig, eval_config: EvalConfig) -> None:
        self.env_config, self.eval_config = env_config, eval_config
        self._env: VecEnv | None = None

    def evaluate(self, model: BaseAlgorithm, episode: int) -> EvaluationRecord:
        started = time.perf_counter()
        seeds = [self.eval_config.seed + index for index in range(self.eval_config.episodes)]
        with _isolated_rng(self.eval_config.seed), _isolated_space_rng(model), _inference_mode(model):
            env = self._prepared_env(model)
            results = [self._episode(env, model, seed) for seed in seeds]
        names = [metric.name for metric in self.env_config.metrics]
        return EvaluationRecord(
            episode=episode,
            timesteps=int(model.num_timesteps),
            episodes=len(seeds),
            seeds=seeds,
            deterministic=self.eval_config.deterministic,
            seconds=round(time.perf_counter() - started, 3),
            reward=_stat([reward for reward, _, _ in results]),
            length=_stat([float(length) for _, length, _ in results]),
            metrics={
                name: _stat([value for _, _, metrics in results if (value := metrics.get(name)) is not None]) for name in names
            },
        )

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None

    def _prepared_env(self, model: BaseAlgorithm) -> VecEnv:
        training_env = model.get_env()
        training = vec_normalize_of(training_env) if training_env is not None else None
        if self._env is None:
            inner = DummyVecEnv([lambda: make_env(self.env_config)])
            self._env = _frozen_like(inner, training) if training is not None else inner
        normalizer = vec_normalize_of(self._env)
        if normalizer is not None and training is not None:
            # A copy: the training statistics go on moving, this evaluation's stay frozen.
            normalizer.obs_rms = copy.deepcopy(training.obs_rms)
        return self._env

    def _episode(self, env: VecEnv, model: BaseAlgorithm, seed: int) -> tuple[float, int, dict[str, float | None]]:
        env.seed(seed)
        obs = env.reset()
        total, length = 0.0, 0
        while True:
            action, _ = model.predict(obs, deterministic=self.eval_config.deterministic)  # type: ignore[arg-type]
            obs, rewards, dones, infos = env.step(action)
            total += float(rewards[0])
            length += 1
            if dones[0]:
                info = infos[0]
                metrics = {metric.name: metric_value(info, metric.name, self.env_config.id) for metric in self.env_config.metrics}
                return total, length, metrics


def _frozen_like(inner: VecEnv, training: VecNormalize) -> VecNormalize:
    """Normalizes observations as ``training`` does; never updates its statistics, raw rewards."""
    return VecNormalize(
        inner,
        training=False,
        norm_obs=training.norm_obs,
        norm_reward=False,
        clip_obs=training.clip_obs,
        epsilon=training.epsilon,
        norm_obs_keys=training.norm_obs_keys,
    )


def _stat(values: list[float]) -> Stat:
    finite = [value for value in values if value is not None and np.isfinite(value)]
    if not finite:
        return Stat(mean=None, std=None)
    return Stat(mean=statistics.fmean(finite), std=statistics.pstdev(finite))


@contextmanager
def _isolated_rng(seed: int) -> Iterator[None]:
    saved = capture_global_rng()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        restore_global_rng(saved)


@contextmanager
def _isolated_space_rng(model: BaseAlgorithm) -> Iterator[None]:
    """DQN's stochastic ``predict`` samples the training action space (its generator is part of
    the training state): keep that generator as it was. Read ``_np_random``, as reading
    ``np_random`` would seed a space that has no generator yet."""
    space = model.action_space
    generator = getattr(space, "_np_random", None)
    saved = copy.deepcopy(generator.bit_generator.state) if generator is not None else None
    try:
        yield
    finally:
        if generator is None:
            space._np_random = None  # type: ignore[assignment]
        else:
            generator.bit_generator.state = saved
            space._np_random = generator


@contextmanager
def _inference_mode(model: BaseAlgorithm) -> Iterator[None]:
    """``predict`` switches the policy to eval mode; the training loop expects it as it was."""
    was_training = model.policy.training
    try:
        yield
    finally:
        model.policy.set_training_mode(was_training)
