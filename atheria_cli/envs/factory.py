"""Build the vectorized training environment of an experiment from its ``env`` config."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from functools import partial
from typing import Any

import gymnasium as gym
from gymnasium.wrappers import TimeLimit
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper, VecFrameStack, VecNormalize

from atheria_cli.config import EnvConfig
from atheria_cli.envs.recorder import ResetRecorder
from atheria_cli.errors import ConfigError


def env_creator(env_id: str) -> Callable[..., gym.Env]:
    """A callable ``(**kwargs) -> gym.Env`` for a registered id or a ``package.module:ClassName``.

    Raises :class:`ConfigError` naming ``env.id`` when neither resolves.
    """
    if env_id in gym.registry:
        return partial(gym.make, env_id)
    if ":" in env_id:
        module_name, _, attribute = env_id.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"env.id: cannot import module {module_name!r} of {env_id!r}: {exc}") from None
        target = getattr(module, attribute, None)
        if isinstance(target, type) and issubclass(target, gym.Env):
            return target
        if f"{attribute}" in gym.registry:  # "module:Env-v0": the import registered it
            return partial(gym.make, attribute)
        raise ConfigError(f"env.id: {module_name!r} has no gymnasium.Env class or registered id {attribute!r}")
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ConfigError(f"env.id: unknown Gymnasium environment {env_id!r}{hint}")


def make_env(config: EnvConfig) -> gym.Env:
    """One environment instance: the env, its time limit, SB3's Monitor and the reset recorder."""
    create = env_creator(config.id)
    kwargs: dict[str, Any] = dict(config.kwargs)
    try:
        if isinstance(create, partial) and create.func is gym.make:
            if config.max_episode_steps is not None:
                kwargs["max_episode_steps"] = config.max_episode_steps
            env = create(**kwargs)
        else:
            env = create(**kwargs)
            if config.max_episode_steps is not None:
                env = TimeLimit(env, max_episode_steps=config.max_episode_steps)
    except ConfigError:
        raise
    except Exception as exc:  # the env's own constructor rejected the kwargs
        raise ConfigError(f"env.kwargs: {config.id} cannot be created: {type(exc).__name__}: {exc}") from None
    return ResetRecorder(Monitor(env))


def make_vec_env(config: EnvConfig, gamma: float | None = None) -> VecEnv:
    """``n_envs`` copies in a DummyVecEnv, wrapped in VecNormalize when ``normalize`` is set and
    then in VecFrameStack when ``frame_stack`` is (rl-zoo3's order: frames are stacked normalized).

    VecNormalize's discount defaults to the agent's ``gamma`` so returns are scaled consistently.
    Pass an agent's env (``ExperimentConfig.env_of``): agents may override the experiment's.
    """
    vec_env: VecEnv = DummyVecEnv([partial(make_env, config) for _ in range(config.n_envs)])
    if config.normalize:
        options = dict(config.normalize_kwargs)
        if gamma is not None:
            options.setdefault("gamma", gamma)
        try:
            vec_env = VecNormalize(vec_env, **options)
        except (TypeError, ValueError, AssertionError) as exc:
            raise ConfigError(f"env.normalize_kwargs: {exc}") from None
    if config.frame_stack is not None:
        vec_env = VecFrameStack(vec_env, n_stack=config.frame_stack)
    return vec_env


def _wrapper_chain(vec_env: VecEnv) -> list[VecEnv]:
    chain = [vec_env]
    while isinstance(chain[-1], VecEnvWrapper):
        chain.append(chain[-1].venv)
    return chain


def base_vec_env(vec_env: VecEnv) -> DummyVecEnv:
    """The DummyVecEnv under the optional VecNormalize and VecFrameStack."""
    inner = _wrapper_chain(vec_env)[-1]
    assert isinstance(inner, DummyVecEnv)
    return inner


def vec_normalize_of(vec_env: VecEnv) -> VecNormalize | None:
    return next((env for env in _wrapper_chain(vec_env) if isinstance(env, VecNormalize)), None)


def frame_stack_of(vec_env: VecEnv) -> VecFrameStack | None:
    return next((env for env in _wrapper_chain(vec_env) if isinstance(env, VecFrameStack)), None)
