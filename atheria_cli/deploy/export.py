"""TorchScript export of a trained policy: raw observations in, environment actions out.

The exported module does what ``model.predict(obs, deterministic=True)`` does *plus* what users
forget when they trace SB3 networks by hand: VecNormalize's observation normalization, and the
action post-processing (rescale a squashed action from [-1, 1] to the Box bounds, or clip an
unsquashed one; argmax for Discrete). It is traced from SB3's own ``policy._predict``, then
verified against ``predict`` on observations sampled from the space and from real resets.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from atheria_cli import __version__
from atheria_cli.agents.registry import export_refusal
from atheria_cli.run.atomic import atomic_write_bytes, atomic_write_json
from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import ExportError, UsageError

JIT_SIDECAR_SCHEMA_VERSION = 1
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


def trace(model: BaseAlgorithm, normalizer: VecNormalize | None, examples: np.ndarray) -> torch.jit.ScriptModule:
    model.policy.set_training_mode(False)
    module = ExportedPolicy(model, normalizer).eval()
    with torch.no_grad(), warnings.catch_warnings():
        # torch.distributions' argument checks are data-dependent Python branches; they are
        # constant for a deterministic policy, and verify() checks the traced result anyway.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return torch.jit.trace(module, torch.as_tensor(examples[:8]), check_trace=False)


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


def verify(module: torch.jit.ScriptModule, model: BaseAlgorithm, normalizer: VecNormalize | None, observations: np.ndarray) -> Verification:
    """Compare the module with ``model.predict(obs, deterministic=True)`` on the same raw observations."""
    with torch.no_grad():
        exported = module(torch.as_tensor(observations)).cpu().numpy()
    model_input = normalizer.normalize_obs(observations) if normalizer is not None and normalizer.norm_obs else observations
    expected, _ = model.predict(model_input, deterministic=True)
    exported = exported.reshape(expected.shape)
    if isinstance(model.action_space, spaces.Discrete):
        mismatches = int(np.sum(exported != expected))
        return Verification(samples=len(observations), max_abs_diff=float(np.max(np.abs(exported - expected))), mismatches=mismatches)
    difference = float(np.max(np.abs(exported.astype(np.float64) - expected.astype(np.float64))))
    return Verification(samples=len(observations), max_abs_diff=difference, mismatches=int(difference > TOLERANCE))


def module_bytes(module: torch.jit.ScriptModule) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    return buffer.getvalue()


def load_module(data: bytes) -> torch.jit.ScriptModule:
    return torch.jit.load(io.BytesIO(data), map_location="cpu")


def space_description(space: spaces.Space) -> dict[str, Any]:
    """A JSON description of a space, compared to detect a checkpoint from another env."""
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype), "low": _jsonable(space.low), "high": _jsonable(space.high)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    return {"type": type(space).__name__, "repr": repr(space)}


def _jsonable(array: np.ndarray) -> list[Any]:
    return [value if np.isfinite(value) else ("inf" if value > 0 else "-inf") for value in np.asarray(array, dtype=np.float64).ravel().tolist()]


def sidecar(model: BaseAlgorithm, *, agent: str, checkpoint: Path, checkpoint_sha256: str, normalized: bool,
            verification: Verification | None, versions: dict[str, str]) -> dict[str, Any]:
    return {
        "schema_version": JIT_SIDECAR_SCHEMA_VERSION,
        "format": "atheria-jit",
        "agent": agent,
        "algo": type(model).__name__,
        "observation_space": space_description(model.observation_space),
        "action_space": space_description(model.action_space),
        "input": {"dtype": str(model.observation_space.dtype), "shape": ["batch", *model.observation_space.shape]},
        "observation_normalization": normalized,
        "source_checkpoint": checkpoint.name,
        "source_sha256": checkpoint_sha256,
        "verification": None if verification is None else {
            "samples": verification.samples, "max_abs_diff": verification.max_abs_diff, "tolerance": TOLERANCE,
        },
        "versions": {**versions, "atheria": __version__},
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_export(path: Path, data: bytes, description: dict[str, Any]) -> Path:
    """The module, then its sidecar ``<name>.json`` beside it; returns the sidecar path."""
    atomic_write_bytes(path, data)
    side = path.with_suffix(".json")
    atomic_write_json(side, description)
    return side


def read_sidecar(module_path: Path) -> dict[str, Any] | None:
    side = module_path.with_suffix(".json")
    if not side.exists():
        return None
    return json.loads(side.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class ExportResult:
    agent: str
    path: Path
    sidecar: Path
    checkpoint: str
    verification: Verification | None
    onnx: Path | None


def export_agent(
    model: BaseAlgorithm,
    *,
    agent: str,
    checkpoint: Path,
    checkpoint_sha256: str,
    output: Path,
    seed: int,
    check: bool,
    onnx: bool,
    versions: dict[str, str],
) -> ExportResult:
    """Trace, verify (unless told not to), then write the module, its sidecar and optional ONNX.

    Nothing is written when verification fails.
    """
    check_exportable(model)
    env = model.get_env()
    normalizer = env if isinstance(env, VecNormalize) else None
    observations = sample_observations(model, seed)
    data = module_bytes(trace(model, normalizer, observations))
    verification = verify(load_module(data), model, normalizer, observations) if check else None
    if verification is not None and verification.mismatches:
        unit = "actions differ" if isinstance(model.action_space, spaces.Discrete) else f"max |difference| {verification.max_abs_diff:.3g} > {TOLERANCE}"
        raise ExportError(
            f"{agent}: the exported module disagrees with model.predict on {verification.samples} observations "
            f"({unit}); nothing written"
        )
    normalized = normalizer is not None and normalizer.norm_obs
    description = sidecar(model, agent=agent, checkpoint=checkpoint, checkpoint_sha256=checkpoint_sha256,
                          normalized=normalized, verification=verification, versions=versions)
    side = write_export(output, data, description)
    onnx_path = _write_onnx(load_module(data), observations, output.with_suffix(".onnx")) if onnx else None
    return ExportResult(agent=agent, path=output, sidecar=side, checkpoint=checkpoint.name, verification=verification, onnx=onnx_path)


def onnx_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnx") is not None


def _write_onnx(module: torch.jit.ScriptModule, observations: np.ndarray, path: Path) -> Path:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        _onnx_export(module, observations, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _onnx_export(module: torch.jit.ScriptModule, observations: np.ndarray, buffer: io.BytesIO) -> None:
    torch.onnx.export(
        module, (torch.as_tensor(observations[:8]),), buffer,
        input_names=["obs"], output_names=["action"], dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}},
        dynamo=False,
    )


def export_experiment(
    config: ExperimentConfig, agents: list[str], checkpoint_spec: str, output: Path | None, check: bool, onnx: bool
) -> list[ExportResult]:
    """``atheria export-jit``: export each agent's selected checkpoint (all agents when none named)."""
    from atheria_cli.envs.factory import make_vec_env
    from atheria_cli.run.layout import AgentLayout
    from atheria_cli.deploy.loading import load_agent
    from atheria_cli.training.planning import select_agents
    from atheria_cli.deploy.selection import select_checkpoint
    from atheria_cli.run.store import AgentStore
    from atheria_cli.training.session import library_versions

    selected = select_agents(config, agents)
    if output is not None and len(selected) > 1:
        raise UsageError("--output names one file: give exactly one AGENT with it")
    if onnx and not onnx_available():
        raise UsageError("--onnx needs the onnx package: pip install 'atheria-cli[onnx]'")
    if output is not None and not output.parent.is_dir():
        raise UsageError(f"--output: folder {output.parent} does not exist")
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
        target = output or store.layout.root / "model_jit.pt"
        results.append(
            export_agent(model, agent=agent, checkpoint=path, checkpoint_sha256=entry.sha256, output=target,
                         seed=config.seed, check=check, onnx=onnx, versions=library_versions())
        )
    return results


def check_same_spaces(agent: str, source: str, model: BaseAlgorithm, observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """A checkpoint trained on another environment cannot act in this one."""
    for kind, theirs, ours in (("observation", model.observation_space, observation_space), ("action", model.action_space, action_space)):
        if space_description(theirs) != space_description(ours):
            raise UsageError(f"{agent}: {source} was trained with {kind} space {theirs}, but the config's env has {ours}")
