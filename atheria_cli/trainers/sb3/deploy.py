"""An SB3 checkpoint's policy for ``atheria export`` and ``atheria eval`` (the sb3 kind's
:class:`~atheria_cli.trainers.base.Deployable`).

The exported module does what ``model.predict(obs, deterministic=True)`` does *plus* what users
forget when they trace SB3 networks by hand: VecNormalize's observation normalization, and the
action post-processing (rescale a squashed action from [-1, 1] to the Box bounds, or clip an
unsquashed one; argmax for Discrete). It wraps SB3's own ``policy._predict``. The ``sb3`` model
format is SB3's own zip, written by ``model.save`` from the model itself (the file names of its
extra files: :mod:`atheria_cli.deploy.formats.sb3`).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.common.vec_env.stacked_observations import StackedObservations

from atheria_cli.agents.acting import ModelActor
from atheria_cli.agents.registry import algorithm_class, export_refusal
from atheria_cli.config import ExperimentConfig
from atheria_cli.deploy.episodes import CheckpointEvaluation, play_episode
from atheria_cli.deploy.export import check_same_spaces, space_description
from atheria_cli.deploy.formats import ModuleExport
from atheria_cli.deploy.formats.sb3 import REPLAY_BUFFER, VEC_NORMALIZE, extra_file
from atheria_cli.envs.factory import make_env, make_vec_env, vec_normalize_of
from atheria_cli.errors import UsageError
from atheria_cli.trainers.base import ExportSubject

if TYPE_CHECKING:
    from atheria_cli.trainers.base import Deployable

SUPPORTED_ACTIONS = (spaces.Box, spaces.Discrete)
EXAMPLES = 8  # observations the module formats trace or export with (the batch stays dynamic)

Policy = Callable[[np.ndarray], np.ndarray]


class _ObservationNormalizer(torch.nn.Module):
    """VecNormalize's ``normalize_obs``, in float64 like its NumPy original."""

    def __init__(self, mean: np.ndarray, var: np.ndarray, epsilon: float, clip: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float64)))
        self.register_buffer("std", torch.sqrt(torch.as_tensor(np.asarray(var, dtype=np.float64)) + epsilon))
        self.clip = float(clip)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        normalized = torch.clamp((obs.to(torch.float64) - self.mean) / self.std, -self.clip, self.clip)
        return normalized.to(torch.float32)


class _DeterministicPolicy(torch.nn.Module):
    def __init__(self, policy: torch.nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy._predict(obs, deterministic=True)


class ExportedPolicy(torch.nn.Module):
    """``forward(obs: [batch, *obs_shape]) -> actions: [batch, *action_shape]``."""

    def __init__(self, model: BaseAlgorithm, normalizer: VecNormalize | None) -> None:
        super().__init__()
        self.normalize = normalizer is not None and normalizer.norm_obs
        if self.normalize:
            assert normalizer is not None
            self.normalizer = _ObservationNormalizer(
                normalizer.obs_rms.mean, normalizer.obs_rms.var, normalizer.epsilon, normalizer.clip_obs
            )
        self.core = _DeterministicPolicy(model.policy)
        space = model.action_space
        self.box = isinstance(space, spaces.Box)
        self.squashed = bool(self.box and model.policy.squash_output)
        low, high = (space.low, space.high) if self.box else (np.zeros(1), np.zeros(1))
        self.register_buffer("low", torch.as_tensor(np.asarray(low, dtype=np.float32)))
        self.register_buffer("high", torch.as_tensor(np.asarray(high, dtype=np.float32)))
        self.action_shape = tuple(space.shape or ())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            obs = self.normalizer(obs)
        actions = self.core(obs)
        if not self.box:
            return actions
        actions = actions.reshape((-1,) + self.action_shape)
        if self.squashed:
            return self.low + 0.5 * (actions + 1.0) * (self.high - self.low)
        return torch.maximum(torch.minimum(actions, self.high), self.low)


def policy_module(model: BaseAlgorithm, normalizer: VecNormalize | None) -> ExportedPolicy:
    model.policy.set_training_mode(False)
    return ExportedPolicy(model, normalizer).eval()


def sample_observations(model: BaseAlgorithm, seed: int, count: int = 256) -> np.ndarray:
    """Half from the observation space, half from real resets of the agent's env (raw, unnormalized)."""
    space = model.observation_space
    space.seed(seed)
    from_space = [space.sample() for _ in range(count // 2)]
    env = model.get_env()
    inner = env.venv if isinstance(env, VecNormalize) else env
    from_resets = []
    for index in range(count - len(from_space)):
        inner.seed(seed + index)
        from_resets.extend(inner.reset())
    samples = np.stack(from_space + from_resets[: count - len(from_space)]).astype(space.dtype)
    return samples


def write_zip(model: BaseAlgorithm, normalizer: VecNormalize | None, path: Path, *, with_replay: bool) -> dict[str, Path]:
    """SB3's ``save`` (and ``save_replay_buffer``, ``VecNormalize.save``): role -> extra file written."""
    model.save(path)
    extras: dict[str, Path] = {}
    if with_replay:
        if not isinstance(model, OffPolicyAlgorithm):
            raise UsageError(f"--with-replay: {type(model).__name__} has no replay buffer (on-policy)")
        extras[REPLAY_BUFFER] = extra_file(path, REPLAY_BUFFER)
        model.save_replay_buffer(extras[REPLAY_BUFFER])
    if normalizer is not None:
        extras[VEC_NORMALIZE] = extra_file(path, VEC_NORMALIZE)
        normalizer.save(str(extras[VEC_NORMALIZE]))
    return extras


def zip_policy(path: Path, algorithm: type[BaseAlgorithm]) -> Policy:
    """``algorithm.load(path)``'s deterministic ``predict``, on observations normalized as the
    ``<stem>_vecnormalize.pkl`` beside it says (when there is one)."""
    try:
        model = algorithm.load(path, device="cpu")
    except Exception as exc:  # SB3's load raises zip, pickle, key and shape errors alike for a bad file
        raise UsageError(f"{path} is not an SB3 {algorithm.__name__} zip ({_first_line(exc)})") from None
    normalizer = _normalizer(extra_file(path, VEC_NORMALIZE))

    def act(obs: np.ndarray) -> np.ndarray:
        seen = normalizer.normalize_obs(obs) if normalizer is not None and normalizer.norm_obs else obs
        actions, _ = model.predict(seen, deterministic=True)
        return actions

    return act


def zip_policy_of(path: Path, algo: str) -> Policy:
    """``eval --export`` of an SB3 zip whose sidecar names ``algo``."""
    return zip_policy(path, algorithm_class(algo))


def _normalizer(path: Path) -> VecNormalize | None:
    if not path.is_file():
        return None
    # What VecNormalize.load does, minus set_venv: normalize_obs needs only the statistics.
    with path.open("rb") as handle:
        normalizer = pickle.load(handle)  # noqa: S301 - our own file, its sha256 checked by the caller
    if not isinstance(normalizer, VecNormalize):
        raise UsageError(f"{path} is not SB3's VecNormalize statistics")
    return normalizer


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SB3Deployable:
    """An SB3 model restored from a checkpoint, with the VecNormalize statistics it was trained with."""

    def __init__(self, model: BaseAlgorithm) -> None:
        env = model.get_env()
        self.model = model
        self.normalizer = env if isinstance(env, VecNormalize) else None
        self.algo = type(model).__name__
        self.observation_space = model.observation_space
        self.action_space = model.action_space
        self.normalizes_observations = self.normalizer is not None and self.normalizer.norm_obs

    def check_export(self, config: ExperimentConfig, agent: str, source: str, format_name: str) -> None:
        """A frame-stacked policy, one trained on other spaces than the config's env, an algorithm
        that refuses (:func:`~atheria_cli.agents.registry.export_refusal`), spaces export does not
        support (any format: the same policy is checked for each)."""
        del format_name
        if config.env_of(agent).frame_stack is not None:
            raise UsageError(
                f"{agent}: a frame-stacked policy (frame_stack) cannot be exported yet; evaluate it with `atheria eval`"
            )
        env = make_vec_env(config.env_of(agent))
        try:
            check_same_spaces(agent, source, self._spaces(), (env.observation_space, env.action_space))
        finally:
            env.close()
        if (refusal := export_refusal(self.model)) is not None:
            raise UsageError(f"cannot export {self.algo}: {refusal}")
        if not isinstance(self.observation_space, spaces.Box):
            raise UsageError(f"export supports Box observations, this agent has {self.observation_space}")
        if not isinstance(self.action_space, SUPPORTED_ACTIONS):
            raise UsageError(f"export supports Box and Discrete actions, this agent has {self.action_space}")

    def export_subject(self, seed: int) -> ExportSubject:
        """The policy module (``forward(obs) -> action``, any batch size), verified against
        ``model.predict`` on observations from the space and from real resets."""
        observations = sample_observations(self.model, seed)
        actions = self.predict(observations)
        capture = ModuleExport(
            module=policy_module(self.model, self.normalizer),
            examples=(torch.as_tensor(observations[:EXAMPLES]),),
            input_names=("obs",),
            output_names=("action",),
            dynamic_batch=True,
        )
        description = {
            "observation_space": space_description(self.observation_space),
            "action_space": space_description(self.action_space),
            "input": {"dtype": str(self.observation_space.dtype), "shape": ["batch", *self.observation_space.shape]},
            "observation_normalization": self.normalizes_observations,
            "inputs": [{"name": "obs", "dtype": str(observations.dtype), "shape": ["batch", *observations.shape[1:]]}],
            "outputs": [{"name": "action", "dtype": str(actions.dtype), "shape": ["batch", *actions.shape[1:]]}],
        }
        return ExportSubject(
            capture=capture,
            samples=[(observations,)],
            expected=[(actions,)],
            exact=isinstance(self.action_space, spaces.Discrete),
            sample_count=len(observations),
            sample_noun="observations",
            reference="model.predict",
            what="policy",
            description=description,
        )

    def predict(self, observations: np.ndarray) -> np.ndarray:
        normalizer = self.normalizer
        model_input = normalizer.normalize_obs(observations) if normalizer is not None and normalizer.norm_obs else observations
        expected, _ = self.model.predict(model_input, deterministic=True)
        return np.asarray(expected)

    def write_model_format(self, format_name: str, path: Path, *, with_replay: bool) -> dict[str, Path]:
        assert format_name == "sb3", f"the sb3 trainer kind writes no {format_name} model format"
        return write_zip(self.model, self.normalizer, path, with_replay=with_replay)

    def model_format_policy(self, format_name: str, path: Path) -> Policy:
        assert format_name == "sb3", f"the sb3 trainer kind writes no {format_name} model format"
        return zip_policy(path, type(self.model))

    def evaluate(self, config: ExperimentConfig, agent: str, source: str, episodes: int, seed: int) -> CheckpointEvaluation:
        """Deterministic episodes on a fresh env of the config, seeded ``seed``, ``seed + 1``, ..."""
        env = make_env(config.environment)
        try:
            actor = self.actor(env, config.env_of(agent).frame_stack)
            check_same_spaces(agent, source, self._spaces(), (actor.observation_space, env.action_space))
            return CheckpointEvaluation(episodes=[play_episode(env, actor, seed + index, config) for index in range(episodes)])
        finally:
            env.close()

    def actor(self, env: gym.Env, frame_stack: int | None) -> ModelActor:
        stacker = StackedObservations(1, frame_stack, env.observation_space) if frame_stack is not None else None
        trained_env = self.model.get_env()
        normalizer = vec_normalize_of(trained_env) if trained_env is not None else None
        return ModelActor(self.model, env, normalizer, stacker)

    def _spaces(self) -> tuple[spaces.Space, spaces.Space]:
        return self.observation_space, self.action_space


def deployable(payload: dict[str, Any], path: Path) -> SB3Deployable:
    """The checkpoint's model (:func:`atheria_cli.trainers.sb3.load_model`), on the CPU."""
    from atheria_cli.trainers.sb3 import load_model

    return SB3Deployable(load_model(payload, path, "cpu"))


def keeps_replay_buffer(config: ExperimentConfig, agent: str) -> bool:
    return issubclass(algorithm_class(config.algo_of(agent)), OffPolicyAlgorithm)


if TYPE_CHECKING:  # mypy checks here that SB3Deployable meets the Deployable protocol

    def _meets_the_protocol(deployed: SB3Deployable) -> Deployable:
        return deployed
