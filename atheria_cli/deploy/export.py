"""Export of a trained policy: raw observations in, environment actions out, in one of several formats.

The exported module does what ``model.predict(obs, deterministic=True)`` does *plus* what users
forget when they trace SB3 networks by hand: VecNormalize's observation normalization, and the
action post-processing (rescale a squashed action from [-1, 1] to the Box bounds, or clip an
unsquashed one; argmax for Discrete). It wraps SB3's own ``policy._predict``; each format
(``deploy/formats/``: torchscript, exported, aoti, onnx) captures that one module. The ``sb3``
format is SB3's own zip, written by ``model.save`` from the model itself. Either way the result
is loaded back and verified against ``predict`` on observations sampled from the space and from
real resets before anything is written.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium import spaces

from atheria_cli import __version__
from atheria_cli.agents.registry import export_refusal
from atheria_cli.config import ExperimentConfig
from atheria_cli.deploy.formats import DEFAULT_FILES, MODEL_FORMATS, Policy, export_format, loadable_format, model_format
from atheria_cli.deploy.sidecar import SIDECAR_SCHEMA_VERSION, sidecar_path
from atheria_cli.errors import ExportError, UsageError
from atheria_cli.run.atomic import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:  # the models exported today are SB3's; its library is imported where used
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecNormalize

TOLERANCE = 1e-5
SUPPORTED_ACTIONS = (spaces.Box, spaces.Discrete)


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


@dataclass(frozen=True)
class Verification:
    samples: int
    max_abs_diff: float
    mismatches: int


def check_exportable(model: BaseAlgorithm) -> None:
    if (refusal := export_refusal(model)) is not None:
        raise UsageError(f"cannot export {type(model).__name__}: {refusal}")
    if not isinstance(model.observation_space, spaces.Box):
        raise UsageError(f"export supports Box observations, this agent has {model.observation_space}")
    if not isinstance(model.action_space, SUPPORTED_ACTIONS):
        raise UsageError(f"export supports Box and Discrete actions, this agent has {model.action_space}")


def policy_module(model: BaseAlgorithm, normalizer: VecNormalize | None) -> ExportedPolicy:
    model.policy.set_training_mode(False)
    return ExportedPolicy(model, normalizer).eval()


def sample_observations(model: BaseAlgorithm, seed: int, count: int = 256) -> np.ndarray:
    """Half from the observation space, half from real resets of the agent's env (raw, unnormalized)."""
    space = model.observation_space
    space.seed(seed)
    from_space = [space.sample() for _ in range(count // 2)]
    from stable_baselines3.common.vec_env import VecNormalize

    env = model.get_env()
    inner = env.venv if isinstance(env, VecNormalize) else env
    from_resets = []
    for index in range(count - len(from_space)):
        inner.seed(seed + index)
        from_resets.extend(inner.reset())
    samples = np.stack(from_space + from_resets[: count - len(from_space)]).astype(space.dtype)
    return samples


def verify(policy: Policy, model: BaseAlgorithm, normalizer: VecNormalize | None, observations: np.ndarray) -> Verification:
    """Compare an exported policy with ``model.predict(obs, deterministic=True)`` on the same raw observations."""
    exported = np.asarray(policy(observations))
    model_input = normalizer.normalize_obs(observations) if normalizer is not None and normalizer.norm_obs else observations
    expected, _ = model.predict(model_input, deterministic=True)
    exported = exported.reshape(expected.shape)
    if isinstance(model.action_space, spaces.Discrete):
        mismatches = int(np.sum(exported != expected))
        return Verification(
            samples=len(observations), max_abs_diff=float(np.max(np.abs(exported - expected))), mismatches=mismatches
        )
    difference = float(np.max(np.abs(exported.astype(np.float64) - expected.astype(np.float64))))
    return Verification(samples=len(observations), max_abs_diff=difference, mismatches=int(difference > TOLERANCE))


def space_description(space: spaces.Space) -> dict[str, Any]:
    """A JSON description of a space, compared to detect a checkpoint from another env."""
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _jsonable(space.low),
            "high": _jsonable(space.high),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    return {"type": type(space).__name__, "repr": repr(space)}


def _jsonable(array: np.ndarray) -> list[Any]:
    return [
        value if np.isfinite(value) else ("inf" if value > 0 else "-inf")
        for value in np.asarray(array, dtype=np.float64).ravel().tolist()
    ]


def sidecar(
    model: BaseAlgorithm,
    *,
    format_name: str,
    agent: str,
    file: Path,
    data: bytes,
    checkpoint: Path,
    checkpoint_sha256: str,
    normalized: bool,
    verification: Verification | None,
    versions: dict[str, str],
    extra_files: dict[str, tuple[Path, bytes]] | None = None,
) -> dict[str, Any]:
    """The sidecar document (layout and reader: ``deploy/sidecar.py``, docs/file-layout.md)."""
    return {
        "schema_version": SIDECAR_SCHEMA_VERSION,
        "format": format_name,
        "file": file.name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "device": "cpu",
        "agent": agent,
        "algo": type(model).__name__,
        "observation_space": space_description(model.observation_space),
        "action_space": space_description(model.action_space),
        "input": {"dtype": str(model.observation_space.dtype), "shape": ["batch", *model.observation_space.shape]},
        "observation_normalization": normalized,
        "source_checkpoint": checkpoint.name,
        "source_sha256": checkpoint_sha256,
        "verification": None
        if verification is None
        else {
            "samples": verification.samples,
            "max_abs_diff": verification.max_abs_diff,
            "tolerance": TOLERANCE,
        },
        "versions": {**versions, "atheria": __version__},
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "extra_files": {
            role: {"file": path.name, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
            for role, (path, content) in (extra_files or {}).items()
        },
    }


def write_export(
    path: Path, data: bytes, description: dict[str, Any], extra_files: dict[str, tuple[Path, bytes]] | None = None
) -> Path:
    """The exported file and its extra files, then its sidecar ``<stem>.json`` beside it (last:
    it vouches for the others); returns the sidecar path."""
    atomic_write_bytes(path, data)
    for extra, content in (extra_files or {}).values():
        atomic_write_bytes(extra, content)
    side = sidecar_path(path)
    atomic_write_json(side, description)
    return side


@dataclass(frozen=True)
class ExportResult:
    agent: str
    format: str
    path: Path
    sidecar: Path
    checkpoint: str
    verification: Verification | None


def export_agent(
    model: BaseAlgorithm,
    *,
    format_name: str,
    agent: str,
    checkpoint: Path,
    checkpoint_sha256: str,
    output: Path,
    seed: int,
    check: bool,
    versions: dict[str, str],
    with_replay: bool = False,
) -> ExportResult:
    """Export, load the result back and verify it (unless told not to), then write it and its sidecar.

    The format writes into a temporary folder; nothing is written beside the run when verification fails.
    """
    from stable_baselines3.common.vec_env import VecNormalize

    check_exportable(model)
    loadable_format(format_name).require()
    env = model.get_env()
    normalizer = env if isinstance(env, VecNormalize) else None
    observations = sample_observations(model, seed)
    with tempfile.TemporaryDirectory(prefix="atheria-export-") as staging:
        staged = Path(staging) / output.name
        policy, extras = _build(model, normalizer, format_name, staged, observations, with_replay=with_replay)
        verification = verify(policy(), model, normalizer, observations) if check else None
        data = staged.read_bytes()
        extra_files = {role: (output.with_name(path.name), path.read_bytes()) for role, path in extras.items()}
    if verification is not None and verification.mismatches:
        unit = (
            "actions differ"
            if isinstance(model.action_space, spaces.Discrete)
            else f"max |difference| {verification.max_abs_diff:.3g} > {TOLERANCE}"
        )
        raise ExportError(
            f"{agent}: the exported {format_name} policy disagrees with model.predict on {verification.samples} observations "
            f"({unit}); nothing written"
        )
    normalized = normalizer is not None and normalizer.norm_obs
    description = sidecar(
        model,
        format_name=format_name,
        agent=agent,
        file=output,
        data=data,
        checkpoint=checkpoint,
        checkpoint_sha256=checkpoint_sha256,
        normalized=normalized,
        verification=verification,
        versions=versions,
        extra_files=extra_files,
    )
    side = write_export(output, data, description, extra_files)
    if format_name in MODEL_FORMATS:
        # An extra file of an earlier export that this one did not write (--with-replay then
        # without) belongs to another checkpoint: the sidecar no longer vouches for it.
        for role, stale in model_format(format_name).extra_files(output).items():
            if role not in extra_files:
                stale.unlink(missing_ok=True)
    return ExportResult(
        agent=agent, format=format_name, path=output, sidecar=side, checkpoint=checkpoint.name, verification=verification
    )


def _build(
    model: BaseAlgorithm,
    normalizer: VecNormalize | None,
    format_name: str,
    staged: Path,
    observations: np.ndarray,
    *,
    with_replay: bool,
) -> tuple[Callable[[], Policy], dict[str, Path]]:
    """Write the format to ``staged``: a loader of the written policy, and the extra files written beside."""
    if format_name in MODEL_FORMATS:
        writer = model_format(format_name)
        extras = writer.write(model, normalizer, staged, with_replay=with_replay)
        return (lambda: writer.policy(staged, type(model))), extras
    exporter = export_format(format_name)
    exporter.build(policy_module(model, normalizer), torch.as_tensor(observations[:8]), staged)
    return (lambda: exporter.load(staged)), {}


def export_experiment(
    config: ExperimentConfig,
    agents: list[str],
    checkpoint_spec: str,
    output: Path | None,
    check: bool,
    formats: list[str],
    with_replay: bool = False,
) -> list[ExportResult]:
    """``atheria export`` / ``export-jit``: export each agent's selected checkpoint (all agents when none named).

    Each format in ``formats`` is written: to ``output`` for the first, beside it (``<stem>_<format>``)
    for the others, or to the format's default file in the agent's folder.
    """
    from atheria_cli.deploy.loading import load_agent
    from atheria_cli.deploy.selection import select_checkpoint
    from atheria_cli.envs.factory import make_vec_env
    from atheria_cli.run.layout import AgentLayout
    from atheria_cli.run.store import AgentStore
    from atheria_cli.training.planning import select_agents
    from atheria_cli.training.session import library_versions

    selected = select_agents(config, agents)
    if output is not None and len(selected) > 1:
        raise UsageError("--output names one file: give exactly one AGENT with it")
    for name in formats:
        loadable_format(name).require()
    if with_replay and formats != ["sb3"]:
        raise UsageError("--with-replay writes SB3's replay-buffer file: only with --format sb3")
    if output is not None and not output.parent.is_dir():
        raise UsageError(f"--output: folder {output.parent} does not exist")
    if with_replay:
        _check_replay_buffers(config, selected)
    plans = []
    for agent in selected:
        store = AgentStore(AgentLayout.of(config.run_dir, agent))
        plans.append((agent, store, select_checkpoint(store, agent, checkpoint_spec, config)))
    results = []
    for agent, store, entry in plans:
        if config.env_of(agent).frame_stack is not None:
            raise UsageError(
                f"{agent}: a frame-stacked policy (frame_stack) cannot be exported yet; evaluate it with `atheria eval`"
            )
        path = store.layout.root / entry.file
        model = load_agent(path)
        env = make_vec_env(config.env_of(agent))
        try:
            check_same_spaces(agent, entry.file, model, env.observation_space, env.action_space)
        finally:
            env.close()
        for index, name in enumerate(formats):
            target = _target(store.layout.root, output, name, first=index == 0)
            results.append(
                export_agent(
                    model,
                    format_name=name,
                    agent=agent,
                    checkpoint=path,
                    checkpoint_sha256=entry.sha256,
                    output=target,
                    seed=config.seed,
                    check=check,
                    versions=library_versions(),
                    with_replay=with_replay,
                )
            )
    return results


def _check_replay_buffers(config: ExperimentConfig, agents: list[str]) -> None:
    """--with-replay: every agent must have a replay buffer (checked before any agent is exported)."""
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    from atheria_cli.agents.registry import algorithm_class

    for agent in agents:
        if not issubclass(algorithm_class(config.algo_of(agent)), OffPolicyAlgorithm):
            raise UsageError(f"--with-replay: {agent} ({config.algo_of(agent)}) is on-policy and has no replay buffer")


def _target(agent_dir: Path, output: Path | None, format_name: str, *, first: bool) -> Path:
    if output is None:
        return agent_dir / DEFAULT_FILES[format_name]
    if first:
        return output
    suffix = Path(DEFAULT_FILES[format_name]).suffix
    return output.with_name(f"{output.stem.removesuffix('_jit')}_{format_name}{suffix}")


def check_same_spaces(
    agent: str, source: str, model: BaseAlgorithm, observation_space: spaces.Space, action_space: spaces.Space
) -> None:
    """A checkpoint trained on another environment cannot act in this one."""
    for kind, theirs, ours in (
        ("observation", model.observation_space, observation_space),
        ("action", model.action_space, action_space),
    ):
        if space_description(theirs) != space_description(ours):
            raise UsageError(f"{agent}: {source} was trained with {kind} space {theirs}, but the config's env has {ours}")
