"""The training session: for each agent of a :class:`TrainPlan`, run episodes and commit them.

For each agent the story is: take its lock, build its trainer, restore the checkpoint
the plan chose (resume) or reset (fresh), then step until the requested number of episodes has
ended, committing a checkpoint every ``save_every`` episodes, at the session's last episode,
every ``save_every_steps`` steps, and at once on SIGINT/SIGTERM, each commit followed by
retention and, every few commits, the mirror. The time budget stops the session between
episodes, with everything committed.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from atheria_cli import __version__
from atheria_cli.agents.checkpoint import checkpoint_payload, encode_checkpoint, read_checkpoint, restore_checkpoint
from atheria_cli.config import ExperimentConfig, config_to_dict
from atheria_cli.errors import ConfigDriftError, RunExistsError, TrainingDivergedError
from atheria_cli.reports.evaluations import evaluation_scores
from atheria_cli.run.formats import CheckpointEntry, EpisodeRecord, EvaluationRecord, History, Metadata, RunConfig, SessionRecord
from atheria_cli.run.locking import AgentLock
from atheria_cli.run.mirror import Mirror
from atheria_cli.run.retention import kept_checkpoints, ranked_by
from atheria_cli.run.segments import live_rows
from atheria_cli.run.store import AgentStore, now_iso
from atheria_cli.trainers import DEFAULT_KIND, Trainer, kind_named, kind_of
from atheria_cli.training.episodes import EpisodeClock, episode_record
from atheria_cli.training.evaluator import evaluation_due
from atheria_cli.training.fork import ForkSource, ForkStart, fork_start
from atheria_cli.training.hooks import Hooks, session_hooks
from atheria_cli.training.planning import AgentPlan, TrainPlan, still_current
from atheria_cli.training.stopping import StopSignals, TimeBudget

if TYPE_CHECKING:
    from atheria_cli.trainers.foreign import ForeignCheckpoint
    from atheria_cli.trainers.sb3.adopt import AdoptSource


class TrainObserver(Protocol):
    """How the training core reports progress; the CLI renders it, tests may record it."""

    def agent_started(self, agent: str, first_episode: int, episodes: int | None, resumed_from: str | None) -> None: ...

    def episode_finished(self, agent: str, record: EpisodeRecord) -> None: ...

    def evaluation_finished(self, agent: str, record: EvaluationRecord) -> None: ...

    def checkpoint_committed(self, agent: str, entry: CheckpointEntry) -> None: ...

    def resources(self, agent: str, line: str) -> None: ...

    def agent_finished(self, agent: str) -> None: ...

    def warn(self, message: str) -> None: ...


@dataclass
class AgentResult:
    agent: str
    episodes: list[EpisodeRecord] = field(default_factory=list)
    moved_to: object | None = None
    last_checkpoint: CheckpointEntry | None = None


@dataclass
class TrainOutcome:
    results: list[AgentResult]
    stopped_by: str | None = None  # "SIGINT", "SIGTERM" or "time budget"
    exit_code: int = 0


@dataclass
class AgentSession:
    """What one agent's session tracks between steps (the hooks read and extend it)."""

    plan: TrainPlan
    name: str
    store: AgentStore
    trainer: Trainer
    history: History
    metadata: Metadata
    record: SessionRecord
    run_config: RunConfig
    resumed_from: CheckpointEntry | None
    budget: TimeBudget
    uncommitted: list[EpisodeRecord] = field(default_factory=list)
    recorded: list[EpisodeRecord] = field(default_factory=list)
    commits: int = 0
    last_entry: CheckpointEntry | None = None
    last_commit_timesteps: int = -1
    hooks: Hooks = field(default_factory=lambda: Hooks([]))


def run_training(plan: TrainPlan, observer: TrainObserver) -> TrainOutcome:
    for notice in plan.notices:
        observer.warn(notice)
    locks = [AgentLock(plan.config.run_dir, agent.name) for agent in plan.agents]
    outcome = TrainOutcome(results=[])
    budget = TimeBudget(plan.max_hours)
    acquired: list[AgentLock] = []
    created = _missing_folders(plan.config.run_dir)  # the locks create them
    try:
        for lock in locks:
            lock.acquire()
            acquired.append(lock)
        changed = [agent.name for agent in plan.agents if not still_current(agent)]
        if changed:
            raise RunExistsError(f"{', '.join(changed)}: the run changed on disk while this command was starting; run it again")
        with StopSignals() as signals:
            for agent_plan in plan.agents:
                if signals.received is not None:  # arrived between two agents
                    break
                result = train_one_agent(plan, agent_plan, observer, signals, budget, outcome)
                outcome.results.append(result)
                if outcome.stopped_by:
                    break
            if signals.received is not None and not outcome.stopped_by:
                outcome.stopped_by, outcome.exit_code = signals.name, signals.exit_code
    finally:
        for lock in acquired:
            lock.release()
        _remove_if_empty(created)  # a session that wrote nothing (a setting SB3's setup refused) leaves nothing
    return outcome


def _raised_in(exc: BaseException, package: str) -> bool:
    """Whether any frame ``exc`` passed through belongs to ``package`` (torch.distributions
    validates its parameters: NaN actions raise a ValueError there)."""
    trace = exc.__traceback__
    while trace is not None:
        if str(trace.tb_frame.f_globals.get("__name__", "")).startswith(package):
            return True
        trace = trace.tb_next
    return False


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (the run is there) or already gone
            return


def train_one_agent(
    plan: TrainPlan,
    agent_plan: AgentPlan,
    observer: TrainObserver,
    signals: StopSignals,
    budget: TimeBudget,
    outcome: TrainOutcome,
) -> AgentResult:
    """One agent's session (build, restore, step, commit), its lock already held by the caller:
    :func:`run_training` here, or a job process of :mod:`atheria_cli.training.jobs`."""
    config, name, store = plan.config, agent_plan.name, agent_plan.store
    result = AgentResult(agent=name)
    resume_from = agent_plan.resume_from
    # Built before any disk change: a setting that only the trainer's setup rejects writes nothing.
    trainer = kind_of(config, name).build_trainer(config, name, plan.device)
    if agent_plan.fork is not None:  # so is a fork's state that this config cannot load
        fork = agent_plan.fork
        _restore(name, trainer, fork.store, fork.entry, observer, remedy="fork into an agent whose settings the state fits")
    if agent_plan.move_aside:
        result.moved_to = store.move_aside()
        observer.warn(f"{name}: previous run moved to {result.moved_to}")
    if agent_plan.move_mirror_aside:
        assert config.train.mirror is not None
        moved = Mirror(config.train.mirror.to, config.experiment, name).move_aside()
        if moved:
            observer.warn(f"{name}: the mirrored run moved to {moved}")
    if agent_plan.pull_mirror:
        resume_from = _pull_mirror(config, name, store, observer)
    session: AgentSession | None = None
    completed = False
    try:
        session = _start(plan, name, trainer, store, resume_from, observer, budget, agent_plan.fork, agent_plan.adopt)
        session.hooks = session_hooks(session)
        session.hooks.start(session, observer)
        _run_episodes_or_diverge(session, observer, signals, outcome)
        completed = True
        result.episodes, result.last_checkpoint = session.recorded, session.last_entry
    finally:
        try:
            if session is not None:
                session.hooks.close(session, observer, completed=completed)  # the mirror's last push
        finally:
            trainer.close()
    observer.agent_finished(name)
    return result


def _run_episodes_or_diverge(session: AgentSession, observer: TrainObserver, signals: StopSignals, outcome: TrainOutcome) -> None:
    try:
        _run_episodes(session, observer, signals, outcome)
    except ValueError as exc:
        if not _raised_in(exc, "torch.distributions"):
            raise
        raise TrainingDivergedError(
            f"agents.{session.name}: training diverged in episode {session.history.total_episodes + 1}: the policy's outputs "
            "are no longer finite (NaN or inf); lower the learning rate or scale the rewards "
            f"(the run keeps its last checkpoint: {session.last_entry.file if session.last_entry else 'none yet'})"
        ) from None


def _start(
    plan: TrainPlan,
    name: str,
    trainer: Trainer,
    store: AgentStore,
    resume_from: CheckpointEntry | None,
    observer: TrainObserver,
    budget: TimeBudget,
    fork: ForkSource | None = None,
    adopt: AdoptSource | ForeignCheckpoint | None = None,
) -> AgentSession:
    """Restore the planned checkpoint, or reset for a new run (adopting an SB3 zip or another program's checkpoint)."""
    config = plan.config
    started: ForkStart | None = None
    if fork is not None:  # its state is restored already (train_one_agent, before any disk change)
        started = fork_start(fork, store)
        history, metadata = (
            History(agent=name, total_episodes=fork.entry.episode),
            _new_metadata(config, name, trainer, plan.device),
        )
        history.evaluations, metadata.replay_segments = started.evaluations, started.segments
    elif resume_from is None:
        trainer.start_fresh()
        history, metadata = History(agent=name), _new_metadata(config, name, trainer, plan.device)
        if adopt is not None:
            trainer.adopt(adopt)
            metadata.adopted_from = adopt.origin
    else:
        _restore(name, trainer, store, resume_from, observer)
        history = store.history_up_to(store.history(), resume_from.episode, resume_from.timesteps)
        metadata = _superseded_dropped(name, store, resume_from, observer)
    _warn_if_threads_changed(name, history, observer)
    record = SessionRecord(
        session_timestamp=now_iso(),
        start_episode=history.total_episodes + 1,
        end_episode=history.total_episodes,
        episodes_count=0,
        device=plan.device,
        duration_seconds=0.0,
        start_timesteps=trainer.timesteps,
        end_timesteps=trainer.timesteps,
        resumed_from=resume_from.file if resume_from else None,
        atheria_version=__version__,
        threads=torch.get_num_threads(),
        forked_from=fork.origin if fork is not None else None,
        adopted_from=adopt.origin if adopt is not None else None,
        exact=adopt is None,
    )
    history.trainings.append(record)
    observer.agent_started(name, record.start_episode, plan.episodes, record.resumed_from)
    return AgentSession(
        plan=plan,
        name=name,
        store=store,
        trainer=trainer,
        history=history,
        metadata=metadata,
        record=record,
        run_config=RunConfig(config=config_to_dict(config)),
        resumed_from=resume_from,
        budget=budget,
        last_commit_timesteps=trainer.timesteps,
        uncommitted=started.episodes if started is not None else [],  # a fork's first commit writes the source's episodes
    )


def _superseded_dropped(name: str, store: AgentStore, resume_from: CheckpointEntry, observer: TrainObserver) -> Metadata:
    """The run's metadata without what is newer than the checkpoint resumed (damaged ones we fell
    back from): its checkpoints at the next commit; its snapshots at once, committed and
    deleted, before training takes them again (a committed snapshot is never overwritten)."""
    metadata = store.metadata()
    newer = [
        entry for entry in metadata.checkpoints if (entry.timesteps, entry.episode) > (resume_from.timesteps, resume_from.episode)
    ]
    metadata.checkpoints = [entry for entry in metadata.checkpoints if entry not in newer]
    # Its counters as of that checkpoint too: the snapshots' write below may be the last one before
    # a session that fails to start, and metadata.json must not describe the checkpoints dropped.
    metadata.last_episode, metadata.total_timesteps = resume_from.episode, resume_from.timesteps
    later = [entry for entry in metadata.snapshots if entry.episode > resume_from.episode]
    if later:
        removed = store.forget_snapshots(metadata, later)
        observer.warn(f"{name}: {', '.join(removed)} came after {resume_from.file} and are removed; training takes them again")
    return metadata


def _warn_if_threads_changed(name: str, history: History, observer: TrainObserver) -> None:
    before = history.trainings[-1].threads if history.trainings else None
    now = torch.get_num_threads()
    if before is not None and before != now:
        observer.warn(
            f"{name}: resuming with {now} torch thread(s) instead of {before}; float results may differ from an uninterrupted run"
        )


def _restore(
    name: str,
    trainer: Trainer,
    source: AgentStore,
    entry: CheckpointEntry,
    observer: TrainObserver,
    remedy: str = "revert the change or use --fresh",
) -> None:
    payload = read_checkpoint(source.layout.root / entry.file, expected_sha256=entry.sha256)
    try:
        report = restore_checkpoint(trainer, payload, source.read_segment)
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as exc:
        # Shapes or structure differ: a config change (--allow-config-change) the checkpoint cannot follow.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigDriftError(f"{name}: {entry.file} cannot be restored into this config ({first}); {remedy}") from None
    if report.generators_not_restored:
        observer.warn(f"{name}: {report.generators_not_restored}; the resumed run will not be bit-identical")
    if report.not_reproducible:
        observer.warn(
            f"{name}: the environment's reset did not reproduce the checkpoint's observation "
            f"(env {report.not_reproducible}); the resumed run will not be bit-identical"
        )
    if report.restarted:
        observer.warn(
            f"{name}: env(s) {report.restarted} were mid-episode at the checkpoint and cannot restore their state; "
            "they start a new episode"
        )


def _run_episodes(session: AgentSession, observer: TrainObserver, signals: StopSignals, outcome: TrainOutcome) -> None:
    plan, trainer = session.plan, session.trainer
    train_config = plan.config.train
    clock, started = EpisodeClock(trainer.parallel_episodes), time.perf_counter()
    while plan.episodes is None or session.record.episodes_count < plan.episodes:
        step = trainer.step()
        finished = np.flatnonzero(step.dones)
        for index in finished:
            record = episode_record(
                episode=session.history.total_episodes + 1,
                timesteps=trainer.timesteps,
                seconds=clock.lap(int(index)),
                info=step.infos[index],
                metrics=plan.config.metrics_of(session.name),
                env_id=plan.config.env_id_of(session.name) or f"agents.{session.name}",
            )
            _record_episode(session, record, observer)
            session.hooks.episode(session, record, observer)
        if signals.received is not None:
            _commit(session, started, observer, partial=not len(finished))
            outcome.stopped_by, outcome.exit_code = signals.name, signals.exit_code
            return
        if len(finished) and _episode_checkpoint_due(session, len(finished)):
            _commit(session, started, observer, partial=False)
        elif train_config.save_every_steps and _steps_checkpoint_due(session, train_config.save_every_steps):
            _commit(session, started, observer, partial=not len(finished))
        if len(finished) and plan.until_timesteps is not None and trainer.timesteps >= plan.until_timesteps:
            if session.uncommitted:
                _commit(session, started, observer, partial=False)
            return
        if len(finished) and not session.budget.allows_another_episode():
            if session.uncommitted:
                _commit(session, started, observer, partial=False)
            outcome.stopped_by = "time budget"
            observer.warn(
                f"{session.name}: stopping before the time budget runs out (after episode {session.history.total_episodes})"
            )
            return


def _record_episode(session: AgentSession, record: EpisodeRecord, observer: TrainObserver) -> None:
    session.uncommitted.append(record)
    session.recorded.append(record)
    session.history.total_episodes = record.episode
    session.record.episodes_count += 1
    session.budget.episode_ended(record.seconds)
    observer.episode_finished(session.name, record)


def _episode_checkpoint_due(session: AgentSession, just_finished: int) -> bool:
    """Every ``save_every`` episodes (by episode number) and always at the session's end."""
    plan = session.plan
    if plan.episodes is not None and session.record.episodes_count >= plan.episodes:
        return True
    if plan.until_timesteps is not None and session.trainer.timesteps >= plan.until_timesteps:
        return True
    every, total = session.plan.config.train.save_every, session.history.total_episodes
    evaluation = session.plan.config.train.eval
    if evaluation is not None and evaluation_due(evaluation.every, total - just_finished, total):
        return True  # an evaluation is committed with the checkpoint it evaluates
    return any(episode % every == 0 for episode in range(total - just_finished + 1, total + 1))


def _steps_checkpoint_due(session: AgentSession, every: int) -> bool:
    """A multiple of ``every`` timesteps was crossed since the last commit."""
    now = session.trainer.timesteps
    return now // every > max(session.last_commit_timesteps, 0) // every


def _commit(session: AgentSession, started: float, observer: TrainObserver, *, partial: bool) -> None:
    """Replay segment, checkpoint, episodes, history, metadata (the commit); then retention."""
    trainer, store = session.trainer, session.store
    record, history, metadata = session.record, session.history, session.metadata
    session.hooks.before_commit(session, observer)  # first: the session's duration includes an evaluation
    episode, timesteps = history.total_episodes, trainer.timesteps
    record.end_episode, record.end_timesteps = episode, timesteps
    record.duration_seconds = round(time.perf_counter() - started, 3)
    file = store.checkpoint_file(episode, timesteps, partial)
    journal = trainer.replay_journal()
    segment = None
    if journal is not None:
        pending = journal.pending(file)
        segment = store.write_segment(*pending) if pending else None
        journal.saved(segment)
    payload = checkpoint_payload(
        trainer,
        agent=metadata.agent,
        algo=metadata.algo,
        episode=episode,
        partial=partial,
        created=now_iso(),
        run_config=json.dumps(session.run_config.config),
        versions=library_versions(trainer.kind),
    )
    metadata.last_episode, metadata.total_timesteps, metadata.device = episode, timesteps, session.plan.device
    entry = store.commit(
        checkpoint_bytes=encode_checkpoint(payload),
        entry_episode=episode,
        timesteps=timesteps,
        partial=partial,
        history=history,
        new_episodes=session.uncommitted,
        metadata=metadata,
        run_config=session.run_config,
        replay_rows=live_rows(journal.rows_total, journal.capacity) if journal is not None else None,
        new_segment=segment,
    )
    committed_episodes = session.uncommitted
    session.uncommitted, session.last_entry, session.last_commit_timesteps = [], entry, timesteps
    session.commits += 1
    _apply_retention(session)
    store.prune_replay(metadata)
    if session.commits == 1:
        store.remove_leftovers(metadata)
        for problem in trainer.state_warnings():
            observer.warn(f"{session.name}: {problem}")
    observer.checkpoint_committed(session.name, entry)
    session.hooks.committed(session, entry, committed_episodes, observer)


def _apply_retention(session: AgentSession) -> None:
    policy = session.plan.config.train.keep
    if policy is None:
        return
    protected = [session.resumed_from.file] if session.resumed_from else []
    # Only "best" needs the episode records; reading them is O(run length).
    records = session.store.episodes(session.history) if policy.best else []
    kept = kept_checkpoints(
        session.metadata.checkpoints,
        policy,
        records,
        ranked_by(session.plan.config),
        protected=protected,
        evaluated=lambda name: evaluation_scores(session.history, name),
    )
    dropped = [entry for entry in session.metadata.checkpoints if entry not in kept]
    session.store.forget(session.metadata, dropped)


def _pull_mirror(config: ExperimentConfig, name: str, store: AgentStore, observer: TrainObserver) -> CheckpointEntry:
    assert config.train.mirror is not None
    store.layout.root.mkdir(parents=True, exist_ok=True)
    Mirror(config.train.mirror.to, config.experiment, name).pull(store.layout.root)
    entry, fallbacks = store.newest_intact_checkpoint()
    for fallback in fallbacks:
        observer.warn(f"{name}: {fallback}")
    return entry


def _new_metadata(config: ExperimentConfig, name: str, trainer: Trainer, device: str) -> Metadata:
    created = now_iso()
    fields: dict[str, Any] = {
        "agent": name,
        "algo": config.algo_of(name),
        "policy": config.agents[name].policy,
        "env_id": config.env_id_of(name),
        "experiment": config.experiment,
        "last_episode": 0,
        "total_timesteps": 0,
        "device": device,
        **trainer.describe(),
        "versions": library_versions(trainer.kind),
        "created": created,
        "updated": created,
    }
    origin = config.zoo_origin(name)
    if origin is not None:  # an extra field of metadata.json (extra="allow"), see docs/file-layout.md
        fields["zoo"] = origin
    return Metadata.model_validate(fields)


def library_versions(kind: str = DEFAULT_KIND) -> dict[str, str]:
    """The versions a run records (metadata, checkpoints): atheria's, then its trainer kind's."""
    return {
        "atheria": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        **kind_named(kind).library_versions(),
    }
