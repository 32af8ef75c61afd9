"""Forks: ``atheria train --from-checkpoint RUN/AGENT/episode_XXXX.pt --agent NEW``.

A fork is a new run (new run id) of agent NEW that starts from the whole training state of
another run's committed checkpoint (model, optimizers, buffer with its replay segments, env,
RNGs) and goes on under NEW's current config. What the state can follow may change (learning
rate, clip range, entropy coefficient, exploration: SB3 reads them from the schedules each
update); what it cannot (network, buffer size, algorithm, env id, number of envs) is refused.
The source run is only read: its replay segments are copied, never moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atheria_cli.config import ExperimentConfig, config_to_dict, config_value
from atheria_cli.errors import ConfigDriftError, RunExistsError, UsageError
from atheria_cli.run.atomic import atomic_write_bytes
from atheria_cli.run.formats import (
    CheckpointEntry,
    EpisodeRecord,
    EvaluationRecord,
    ForkOrigin,
    Metadata,
    SegmentEntry,
)
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.store import AgentStore, RunState
from atheria_cli.trainers import kind_of

# Config fields the restored state cannot follow. The env's, as the agent trains on them: its
# own ``agents.X.env`` value, else the experiment's ``env`` value.
FIXED_ENV_FIELDS = ("id", "n_envs", "normalize", "frame_stack")
# The agent's are its trainer kind's ``fork_fixed_fields`` (atheria_cli.trainers).


@dataclass(frozen=True)
class ForkSource:
    """The committed checkpoint a fork starts from."""

    label: str  # as the user gave it
    store: AgentStore
    entry: CheckpointEntry
    metadata: Metadata

    @property
    def origin(self) -> ForkOrigin:
        return ForkOrigin(
            run_id=self.metadata.run_id,
            agent=self.metadata.agent,
            file=self.label,
            sha256=self.entry.sha256,
            episode=self.entry.episode,
            timesteps=self.entry.timesteps,
        )


@dataclass
class ForkStart:
    """What a fork's first session starts with: the source's committed episodes and
    evaluations up to the checkpoint, and the replay segments its buffer needs."""

    episodes: list[EpisodeRecord]
    evaluations: list[EvaluationRecord]
    segments: list[SegmentEntry]


def plan_fork(config: ExperimentConfig, checkpoint: Path, agents: Sequence[str], *, resume: bool, fresh: bool) -> ForkSource:
    """Check a fork request; writes nothing."""
    if resume:
        raise UsageError(
            "--from-checkpoint and --resume cannot be combined: a fork is a new run (use --fresh to replace NEW's run)"
        )
    if len(agents) != 1:
        raise UsageError("--from-checkpoint needs exactly one --agent: the (new) agent that continues from the checkpoint")
    (name,) = agents
    source = find_source(config, checkpoint)
    if source.store.layout.root.resolve() == AgentLayout.of(config.run_dir, name).root.resolve():
        raise UsageError(
            f"--from-checkpoint: {checkpoint} is {name}'s own run; a fork needs another --agent name (or use --resume)"
        )
    check_forkable(config, name, source)
    target = AgentStore(AgentLayout.of(config.run_dir, name))
    if not fresh and target.state() is not RunState.EMPTY:
        raise RunExistsError(
            f"{name} already has a run in {target.layout.root}; a fork starts a new run: use --fresh to move it aside"
        )
    return source


def source_path(config: ExperimentConfig, checkpoint: Path) -> Path:
    """The checkpoint as a path, else relative to the checkpoints folder."""
    return checkpoint if checkpoint.is_file() else Path(config.checkpoints_dir) / checkpoint


def in_a_run(config: ExperimentConfig, checkpoint: Path) -> bool:
    """Whether the checkpoint's folder is an agent's run (has a commit record): a fork's source,
    rather than another program's file."""
    return AgentLayout(source_path(config, checkpoint).parent).metadata.exists()


def find_source(config: ExperimentConfig, checkpoint: Path) -> ForkSource:
    """The checkpoint as a path, else relative to the checkpoints folder; committed and intact."""
    path = source_path(config, checkpoint)
    if not path.is_file():
        raise UsageError(f"--from-checkpoint: no such checkpoint file: {checkpoint} (nor {path})")
    store = AgentStore(AgentLayout(path.parent))
    if store.state() is not RunState.COMMITTED:
        raise UsageError(f"--from-checkpoint: {path.parent} holds no committed run")
    metadata = store.metadata()
    entry = next((item for item in metadata.checkpoints if item.file == path.name), None)
    if entry is None:
        raise UsageError(f"--from-checkpoint: {path.name} is not a committed checkpoint of {path.parent} (see its metadata.json)")
    problem = store.checkpoint_problem(entry)
    if problem is not None:
        raise UsageError(f"--from-checkpoint: {path} cannot be used: {problem}")
    return ForkSource(label=str(checkpoint), store=store, entry=entry, metadata=metadata)


def check_forkable(config: ExperimentConfig, name: str, source: ForkSource) -> None:
    algo = config.algo_of(name)
    if algo != source.metadata.algo:
        raise ConfigDriftError(
            f"{name}: algo {algo} differs from the checkpoint's {source.metadata.algo}; a fork keeps the algorithm"
        )
    stored = source.store.run_config()
    if stored is None:
        return
    current = config_to_dict(config)
    fixed = kind_of(config, name).fork_fixed_fields
    before_values = _fixed_values(stored.config, source.metadata.agent, fixed)
    after_values = _fixed_values(current, name, fixed)
    for label, before in before_values.items():
        after = after_values[label]
        if before != after:
            raise ConfigDriftError(
                f"{name}: {label} {after!r} differs from the checkpoint's {before!r}; the training state cannot follow "
                "that change (a fork may change learning rate, clip range, entropy coefficient, exploration)"
            )


def fork_start(source: ForkSource, target: AgentStore) -> ForkStart:
    """Copy the replay segments the checkpoint needs into the new run (before its first commit
    lists them) and read the source's committed episodes and evaluations up to the checkpoint."""
    entry = source.entry
    history = source.store.history_up_to(source.store.history(), entry.episode, entry.timesteps)
    segments = [segment for segment in source.metadata.replay_segments if segment.needed_by(entry)]
    target.layout.root.mkdir(parents=True, exist_ok=True)
    for segment in segments:
        atomic_write_bytes(target.layout.root / segment.file, (source.store.layout.root / segment.file).read_bytes())
    return ForkStart(
        episodes=source.store.episodes(history),
        evaluations=list(history.evaluations),
        segments=[SegmentEntry(**segment.model_dump()) for segment in segments],
    )


def _fixed_values(document: dict[str, Any], agent: str, agent_fields: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The fields a fork cannot change, by label, as ``agent`` of this run config trains with them
    (``agent_fields``: label and path under the agent's section)."""
    values = {}
    for key in FIXED_ENV_FIELDS:
        own = config_value(document, f"agents.{agent}.env.{key}")
        values[f"env.{key}"] = own if own is not None else config_value(document, f"env.{key}")
    for label, path in agent_fields:
        values[label] = config_value(document, f"agents.{agent}.{path}")
    return values
