"""Export of a trained policy: raw observations in, environment actions out, in one of several formats.

What is exported is the checkpoint's :class:`~atheria_cli.trainers.base.Deployable`, which its
trainer kind (named in the checkpoint's header) provides: for SB3 (:mod:`atheria_cli.trainers.sb3.deploy`)
a module that does what ``model.predict(obs, deterministic=True)`` does *plus* what users forget
when they trace SB3 networks by hand (VecNormalize's observation normalization, the action
post-processing). Each format (``deploy/formats/``: torchscript, exported, aoti, onnx) captures
that one module; a *model format* (``sb3``: SB3's own zip) is written by the trainer kind from
its model. Either way the result is loaded back and verified against the policy's own
deterministic actions on observations sampled from the space and from real resets before
anything is written.
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
from atheria_cli.config import ExperimentConfig
from atheria_cli.deploy.formats import DEFAULT_FILES, MODEL_FORMATS, Policy, export_format, loadable_format, model_format
from atheria_cli.deploy.sidecar import SIDECAR_SCHEMA_VERSION, sidecar_path
from atheria_cli.errors import ExportError, UsageError
from atheria_cli.run.atomic import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    from atheria_cli.trainers.base import Deployable

TOLERANCE = 1e-5
SUPPORTED_ACTIONS = (spaces.Box, spaces.Discrete)


@dataclass(frozen=True)
class Verification:
    samples: int
    max_abs_diff: float
    mismatches: int


def check_exportable(deployed: Deployable) -> None:
    if (refusal := deployed.export_refusal()) is not None:
        raise UsageError(f"cannot export {deployed.algo}: {refusal}")
    if not isinstance(deployed.observation_space, spaces.Box):
        raise UsageError(f"export supports Box observations, this agent has {deployed.observation_space}")
    if not isinstance(deployed.action_space, SUPPORTED_ACTIONS):
        raise UsageError(f"export supports Box and Discrete actions, this agent has {deployed.action_space}")


def verify(policy: Policy, deployed: Deployable, observations: np.ndarray) -> Verification:
    """Compare an exported policy with the deployable's own deterministic actions (``model.predict``
    for SB3) on the same raw observations."""
    exported = np.asarray(policy(observations))
    expected = deployed.predict(observations)
    exported = exported.reshape(expected.shape)
    if isinstance(deployed.action_space, spaces.Discrete):
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
    deployed: Deployable,
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
        "algo": deployed.algo,
        "observation_space": space_description(deployed.observation_space),
        "action_space": space_description(deployed.action_space),
        "input": {"dtype": str(deployed.observation_space.dtype), "shape": ["batch", *deployed.observation_space.shape]},
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
    deployed: Deployable,
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
    check_exportable(deployed)
    loadable_format(format_name).require()
    observations = deployed.sample_observations(seed)
    with tempfile.TemporaryDirectory(prefix="atheria-export-") as staging:
        staged = Path(staging) / output.name
        policy, extras = _build(deployed, format_name, staged, observations, with_replay=with_replay)
        verification = verify(policy(), deployed, observations) if check else None
        data = staged.read_bytes()
        extra_files = {role: (output.with_name(path.name), path.read_bytes()) for role, path in extras.items()}
    if verification is not None and verification.mismatches:
        unit = (
            "actions differ"
            if isinstance(deployed.action_space, spaces.Discrete)
            else f"max |difference| {verification.max_abs_diff:.3g} > {TOLERANCE}"
        )
        raise ExportError(
            f"{agent}: the exported {format_name} policy disagrees with model.predict on {verification.samples} observations "
            f"({unit}); nothing written"
        )
    description = sidecar(
        deployed,
        format_name=format_name,
        agent=agent,
        file=output,
        data=data,
        checkpoint=checkpoint,
        checkpoint_sha256=checkpoint_sha256,
        normalized=deployed.normalizes_observations,
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
    deployed: Deployable, format_name: str, staged: Path, observations: np.ndarray, *, with_replay: bool
) -> tuple[Callable[[], Policy], dict[str, Path]]:
    """Write the format to ``staged``: a loader of the written policy, and the extra files written beside."""
    if format_name in MODEL_FORMATS:
        extras = deployed.write_model_format(format_name, staged, with_replay=with_replay)
        return (lambda: deployed.model_format_policy(format_name, staged)), extras
    exporter = export_format(format_name)
    exporter.build(deployed.policy_module(), torch.as_tensor(observations[:8]), staged)
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
    from atheria_cli.deploy.loading import read_trained_checkpoint
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
        entry = select_checkpoint(store, agent, checkpoint_spec, config)
        trained = read_trained_checkpoint(store.layout.root / entry.file)
        trained.require(agent, "export")  # every agent's, before the first is exported
        plans.append((agent, store, entry, trained))
    results = []
    for agent, store, entry, trained in plans:
        if config.env_of(agent).frame_stack is not None:
            raise UsageError(
                f"{agent}: a frame-stacked policy (frame_stack) cannot be exported yet; evaluate it with `atheria eval`"
            )
        path = store.layout.root / entry.file
        deployed = trained.deployable()
        env = make_vec_env(config.env_of(agent))
        try:
            check_same_spaces(agent, entry.file, deployed, env.observation_space, env.action_space)
        finally:
            env.close()
        for index, name in enumerate(formats):
            target = _target(store.layout.root, output, name, first=index == 0)
            results.append(
                export_agent(
                    deployed,
                    format_name=name,
                    agent=agent,
                    checkpoint=path,
                    checkpoint_sha256=entry.sha256,
                    output=target,
                    seed=config.seed,
                    check=check,
                    versions=library_versions(trained.kind.name),
                    with_replay=with_replay,
                )
            )
    return results


def _check_replay_buffers(config: ExperimentConfig, agents: list[str]) -> None:
    """--with-replay: every agent must have a replay buffer (checked before any agent is exported)."""
    from atheria_cli.trainers import kind_of

    for agent in agents:
        if not kind_of(config, agent).has_replay_buffer(config, agent):
            raise UsageError(f"--with-replay: {agent} ({config.algo_of(agent)}) is on-policy and has no replay buffer")


def _target(agent_dir: Path, output: Path | None, format_name: str, *, first: bool) -> Path:
    if output is None:
        return agent_dir / DEFAULT_FILES[format_name]
    if first:
        return output
    suffix = Path(DEFAULT_FILES[format_name]).suffix
    return output.with_name(f"{output.stem.removesuffix('_jit')}_{format_name}{suffix}")


def check_same_spaces(
    agent: str, source: str, deployed: Deployable, observation_space: spaces.Space, action_space: spaces.Space
) -> None:
    """A checkpoint trained on another environment cannot act in this one."""
    for kind, theirs, ours in (
        ("observation", deployed.observation_space, observation_space),
        ("action", deployed.action_space, action_space),
    ):
        if space_description(theirs) != space_description(ours):
            raise UsageError(f"{agent}: {source} was trained with {kind} space {theirs}, but the config's env has {ours}")
