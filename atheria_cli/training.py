"""The training session: plan it (validate everything, write nothing), then train each agent.

For each agent the story is: build the env and model, restore the latest checkpoint (resume)
or reset (fresh), step until the requested number of episodes has ended, checkpointing every
``save_every`` episodes and at the last one, and record episodes and the session in history.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gymnasium
import numpy as np
import stable_baselines3
import torch

from atheria_cli import __version__
from atheria_cli.agents.loops import TrainingLoop, make_loop
from atheria_cli.agents.registry import build_model, resolved_hyperparams, validate_hyperparams
from atheria_cli.agents.snapshot import capture_training_state, restore_training_state
from atheria_cli.checkpoint import encode_checkpoint, read_checkpoint
from atheria_cli.config import ExperimentConfig, config_to_dict
from atheria_cli.devices import resolve_device
from atheria_cli.envs.factory import make_vec_env
from atheria_cli.episodes import EpisodeClock, episode_record
from atheria_cli.errors import DamagedFileError, RunExistsError, UsageError
from atheria_cli.formats import CheckpointEntry, EpisodeRecord, History, Metadata, RunConfig, SessionRecord
from atheria_cli.layout import AgentLayout
from atheria_cli.store import AgentStore, RunState, file_sha256, now_iso

# Config sections whose change makes a resumed run a different experiment ({agent}: its own).
DRIFT_KEYS = ("env", "seed", "agents.{agent}", "train.schedule_timesteps")


class TrainObserver(Protocol):
    """How the training core reports progress; the CLI renders it, tests may record it."""

    def agent_started(self, agent: str, first_episode: int, episodes: int, resumed_from: str | None) -> None: ...

    def episode_finished(self, agent: str, record: EpisodeRecord) -> None: ...

    def checkpoint_committed(self, agent: str, entry: CheckpointEntry) -> None: ...

    def agent_finished(self, agent: str) -> None: ...

    def warn(self, message: str) -> None: ...


@dataclass(frozen=True)
class AgentPlan:
    name: str
    store: AgentStore
    resume_from: CheckpointEntry | None
    move_aside: bool


@dataclass(frozen=True)
class TrainPlan:
    config: ExperimentConfig
    episodes: int
    device: str
    agents: tuple[AgentPlan, ...]
    notices: tuple[str, ...] = ()


@dataclass
class AgentResult:
    agent: str
    episodes: list[EpisodeRecord] = field(default_factory=list)
    moved_to: Path | None = None
    last_checkpoint: CheckpointEntry | None = None


def plan_training(
    config: ExperimentConfig,
    *,
    agents: Sequence[str] = (),
    episodes: int | None = None,
    resume: bool = False,
    fresh: bool = False,
) -> TrainPlan:
    """Validate a training request against the config and the disk; writes nothing.

    Builds each agent's env and model once, so a bad env id or hyperparameter is reported
    before any agent trains.
    """
    if resume and fresh:
        raise UsageError("--resume and --fresh cannot be combined: --resume continues a run, --fresh moves it aside")
    count = config.train.episodes if episodes is None else episodes
    if count < 1:
        raise UsageError(f"--episodes must be at least 1 (got {count})")
    selected = _select_agents(config, agents)
    device = resolve_device(config.device)
    notices: list[str] = []
    plans = []
    for name in selected:
        store = AgentStore(AgentLayout.of(config.run_dir, name))
        plan, notice = _plan_agent(name, store, resume=resume, fresh=fresh)
        plans.append(plan)
        if notice:
            notices.append(notice)
    for name in selected:
        _check_buildable(config, name, device)
    return TrainPlan(config=config, episodes=count, device=device, agents=tuple(plans), notices=tuple(notices))


def run_training(plan: TrainPlan, observer: TrainObserver) -> list[AgentResult]:
    for notice in plan.notices:
        observer.warn(notice)
    return [_train_agent(plan, agent, observer) for agent in plan.agents]


# --- planning ---------------------------------------------------------------------------------


def _select_agents(config: ExperimentConfig, requested: Sequence[str]) -> list[str]:
    known = list(config.agents)
    unknown = [name for name in requested if name not in config.agents]
    if unknown:
        raise UsageError(f"unknown agent {unknown[0]!r}: the experiment has {', '.join(known)}")
    return [name for name in known if name in requested] if requested else known


def _plan_agent(name: str, store: AgentStore, *, resume: bool, fresh: bool) -> tuple[AgentPlan, str | None]:
    state = store.state()
    root = store.layout.root
    if state is RunState.EMPTY:
        notice = f"{name}: no checkpoint in {root}, starting fresh" if resume else None
        return AgentPlan(name, store, resume_from=None, move_aside=False), notice
    if fresh:
        return AgentPlan(name, store, resume_from=None, move_aside=True), None
    if state is RunState.UNCOMMITTED:
        raise RunExistsError(
            f"{name}: {root} holds files but no committed checkpoint; use --fresh to move it aside and start over"
        )
    latest = store.metadata().latest
    assert latest is not None
    if not resume:
        raise RunExistsError(
            f"{name} already has {latest.episode} episode(s) in {root} (last checkpoint {latest.file}); "
            "use --resume to continue or --fresh to move it aside and start over"
        )
    _verify_entry(store, latest)
    store.history()  # a damaged history is reported now, before anything trains
    return AgentPlan(name, store, resume_from=latest, move_aside=False), None


def _verify_entry(store: AgentStore, entry: CheckpointEntry) -> None:
    path = store.layout.root / entry.file
    if not path.is_file():
        raise DamagedFileError(path, "checkpoint listed in metadata.json is missing")
    size = path.stat().st_size
    if size != entry.size:
        raise DamagedFileError(path, f"size {size} bytes differs from the {entry.size} recorded in metadata.json")
    if file_sha256(path) != entry.sha256:
        raise DamagedFileError(path, "sha256 differs from the one recorded in metadata.json")


def _check_buildable(config: ExperimentConfig, agent: str, device: str) -> None:
    env = make_vec_env(config.env, gamma=_gamma(config, agent))
    try:
        build_model(config, agent, env, device, config.seed_of(agent))
    finally:
        env.close()


def _gamma(config: ExperimentConfig, agent: str) -> float | None:
    gamma = config.agents[agent].hyperparams.get("gamma")
    return float(gamma) if isinstance(gamma, (int, float)) else None


# --- training ---------------------------------------------------------------------------------


def _train_agent(plan: TrainPlan, agent_plan: AgentPlan, observer: TrainObserver) -> AgentResult:
    config, name, store = plan.config, agent_plan.name, agent_plan.store
    result = AgentResult(agent=name)
    if agent_plan.move_aside:
        result.moved_to = store.move_aside()
        observer.warn(f"{name}: previous run moved to {result.moved_to}")

    env = make_vec_env(config.env, gamma=_gamma(config, name))
    model = build_model(config, name, env, plan.device, config.seed_of(name))
    loop = make_loop(model, config.train.schedule_timesteps)
    try:
        history, metadata = _start(config, name, loop, store, agent_plan.resume_from, plan.device, observer)
        result.episodes, result.last_checkpoint = _run_episodes(plan, name, loop, store, history, metadata, agent_plan, observer)
    finally:
        env.close()
    observer.agent_finished(name)
    return result


def _start(
    config: ExperimentConfig,
    name: str,
    loop: TrainingLoop,
    store: AgentStore,
    resume_from: CheckpointEntry | None,
    device: str,
    observer: TrainObserver,
) -> tuple[History, Metadata]:
    """Restore the latest checkpoint, or reset for a new run; returns history and metadata."""
    if resume_from is None:
        loop.start_fresh()
        return History(agent=name), _new_metadata(config, name, loop, device)
    payload = read_checkpoint(store.layout.root / resume_from.file, expected_sha256=resume_from.sha256)
    report = restore_training_state(loop, payload, store.read_segment)
    if report.not_reproducible:
        observer.warn(
            f"{name}: the environment's reset did not reproduce the checkpoint's observation "
            f"(env {report.not_reproducible}); the resumed run will not be bit-identical"
        )
    if report.restarted:
        observer.warn(f"{name}: env(s) {report.restarted} were mid-episode at the checkpoint; they start a new episode")
    _warn_on_drift(config, name, store, observer)
    history = store.history_up_to(store.history(), resume_from.episode)
    return history, store.metadata()


def _run_episodes(
    plan: TrainPlan,
    name: str,
    loop: TrainingLoop,
    store: AgentStore,
    history: History,
    metadata: Metadata,
    agent_plan: AgentPlan,
    observer: TrainObserver,
) -> tuple[list[EpisodeRecord], CheckpointEntry | None]:
    config, model = plan.config, loop.model
    first_episode = history.total_episodes + 1
    session = SessionRecord(
        session_timestamp=now_iso(),
        start_episode=first_episode,
        end_episode=first_episode - 1,
        episodes_count=0,
        device=plan.device,
        duration_seconds=0.0,
        start_timesteps=model.num_timesteps,
        end_timesteps=model.num_timesteps,
        resumed_from=agent_plan.resume_from.file if agent_plan.resume_from else None,
        atheria_version=__version__,
    )
    history.trainings.append(session)
    observer.agent_started(name, first_episode, plan.episodes, session.resumed_from)
    run_config = RunConfig(config=config_to_dict(config))
    clock, started = EpisodeClock(model.env.num_envs), time.perf_counter()
    recorded: list[EpisodeRecord] = []
    uncommitted: list[EpisodeRecord] = []
    last_entry: CheckpointEntry | None = None
    while session.episodes_count < plan.episodes:
        step = loop.step()
        finished = np.flatnonzero(step.dones)
        for index in finished:
            record = episode_record(
                episode=history.total_episodes + 1,
                timesteps=model.num_timesteps,
                seconds=clock.lap(int(index)),
                info=step.infos[index],
                metrics=config.env.metrics,
                env_id=config.env.id,
            )
            uncommitted.append(record)
            history.total_episodes = record.episode
            session.episodes_count += 1
            recorded.append(record)
            observer.episode_finished(name, record)
        if len(finished) and _checkpoint_due(history.total_episodes, len(finished), session, plan):
            session.end_episode = history.total_episodes
            session.end_timesteps = model.num_timesteps
            session.duration_seconds = round(time.perf_counter() - started, 3)
            last_entry = _commit(loop, store, history, uncommitted, metadata, run_config, plan.device)
            uncommitted = []
            observer.checkpoint_committed(name, last_entry)
    return recorded, last_entry


def _checkpoint_due(total: int, just_finished: int, session: SessionRecord, plan: TrainPlan) -> bool:
    """Every ``save_every`` episodes (by episode number) and always at the session's end."""
    if session.episodes_count >= plan.episodes:
        return True
    every = plan.config.train.save_every
    return any(episode % every == 0 for episode in range(total - just_finished + 1, total + 1))


def _commit(
    loop: TrainingLoop,
    store: AgentStore,
    history: History,
    new_episodes: list[EpisodeRecord],
    metadata: Metadata,
    run_config: RunConfig,
    device: str,
) -> CheckpointEntry:
    """Replay segment, checkpoint, history, metadata (the commit), then unneeded segments go."""
    model, episode = loop.model, history.total_episodes
    journal = getattr(loop, "journal", None)
    if journal is not None:
        pending = journal.pending(episode)
        journal.saved(store.write_segment(*pending) if pending else None)
    payload = {
        "atheria_version": __version__,
        "created": now_iso(),
        "agent": metadata.agent,
        "algo": metadata.algo,
        "episode": episode,
        "num_timesteps": int(model.num_timesteps),
        "run_config": json.dumps(run_config.config),
        "versions": library_versions(),
        **capture_training_state(loop),
    }
    metadata.last_episode = episode
    metadata.total_timesteps = int(model.num_timesteps)
    metadata.device = device
    entry = store.commit(
        checkpoint_bytes=encode_checkpoint(payload),
        entry_episode=episode,
        timesteps=int(model.num_timesteps),
        history=history,
        new_episodes=new_episodes,
        metadata=metadata,
        run_config=run_config,
        replay_segments=[segment.file for segment in journal.segments] if journal is not None else [],
    )
    store.prune_replay(metadata)
    return entry


def _new_metadata(config: ExperimentConfig, name: str, loop: TrainingLoop, device: str) -> Metadata:
    algo = config.algo_of(name)
    action_space = loop.model.action_space
    action_dim = int(np.prod(action_space.shape)) if action_space.shape else None
    given = validate_hyperparams(name, algo, config.agents[name].hyperparams, action_dim)
    created = now_iso()
    return Metadata(
        agent=name,
        algo=algo,
        policy=config.agents[name].policy,
        env_id=config.env.id,
        experiment=config.experiment,
        last_episode=0,
        total_timesteps=0,
        device=device,
        hyperparams=resolved_hyperparams(loop.model, given),
        versions=library_versions(),
        created=created,
        updated=created,
    )


def _warn_on_drift(config: ExperimentConfig, name: str, store: AgentStore, observer: TrainObserver) -> None:
    stored = store.run_config()
    if stored is None:
        return
    current = config_to_dict(config)
    keys = [key.format(agent=name) for key in DRIFT_KEYS]
    changed = [key for key in keys if _lookup(stored.config, key) != _lookup(current, key)]
    if changed:
        observer.warn(f"{name}: the config differs from the run's config.json in {', '.join(changed)}; continuing with the new one")


def _lookup(document: dict[str, Any], dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def library_versions() -> dict[str, str]:
    return {
        "atheria": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
    }
