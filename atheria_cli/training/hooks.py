"""The integrations of one agent's session, as hooks with one lifecycle (Lightning's
``Callback``, SB3's ``CallbackList``): evaluation, the resource monitor, the trackers
(TensorBoard, W&B, MLflow), snapshots and the mirror.

The session calls :class:`Hooks` at five points and knows no integration by name:

- ``start``: the session is restored (or fresh) and about to step;
- ``episode``: an episode ended and was recorded (not yet committed);
- ``before_commit``: a commit is about to be written; what a hook adds to the history now
  (an evaluation) is made durable by that commit;
- ``committed``: the commit is on disk, retention applied;
- ``close``: the session ends (``completed`` tells a normal end from an exception).

Each hook keeps its own state; hooks run in list order, and every ``close`` runs even when an
earlier one raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from atheria_cli.errors import StorageError, TrainerFailedError
from atheria_cli.run.formats import CheckpointEntry, EpisodeRecord, SnapshotEntry
from atheria_cli.run.layout import snapshot_file
from atheria_cli.run.mirror import Mirror
from atheria_cli.run.snapshots import encode_snapshot, kept_snapshots, snapshot_due, snapshot_entry, snapshot_payload
from atheria_cli.run.store import now_iso
from atheria_cli.tracking import RunTracking, start_tracking
from atheria_cli.training.evaluator import evaluation_due
from atheria_cli.training.monitor import ResourceMonitor, fold_readout

if TYPE_CHECKING:
    from atheria_cli.trainers.base import TrainerEvaluation
    from atheria_cli.training.session import AgentSession, TrainObserver


class SessionHook:
    """One integration; every method is a no-op unless the hook overrides it."""

    def start(self, session: AgentSession, observer: TrainObserver) -> None:
        """The session is restored (or fresh) and about to step."""

    def episode(self, session: AgentSession, record: EpisodeRecord, observer: TrainObserver) -> None:
        """An episode ended and was recorded; it is not committed yet."""

    def before_commit(self, session: AgentSession, observer: TrainObserver) -> None:
        """A commit is about to be written: what the hook adds to the history goes with it."""

    def committed(
        self, session: AgentSession, entry: CheckpointEntry, episodes: Sequence[EpisodeRecord], observer: TrainObserver
    ) -> None:
        """``entry`` is committed with ``episodes``, retention applied."""

    def close(self, session: AgentSession, observer: TrainObserver, *, completed: bool) -> None:
        """The session ends; ``completed`` is False when it ends by an exception."""


class Hooks:
    """A list of hooks called in order (SB3's ``CallbackList``)."""

    def __init__(self, hooks: Sequence[SessionHook]) -> None:
        self.hooks = list(hooks)

    def start(self, session: AgentSession, observer: TrainObserver) -> None:
        for hook in self.hooks:
            hook.start(session, observer)

    def episode(self, session: AgentSession, record: EpisodeRecord, observer: TrainObserver) -> None:
        for hook in self.hooks:
            hook.episode(session, record, observer)

    def before_commit(self, session: AgentSession, observer: TrainObserver) -> None:
        for hook in self.hooks:
            hook.before_commit(session, observer)

    def committed(
        self, session: AgentSession, entry: CheckpointEntry, episodes: Sequence[EpisodeRecord], observer: TrainObserver
    ) -> None:
        for hook in self.hooks:
            hook.committed(session, entry, episodes, observer)

    def close(self, session: AgentSession, observer: TrainObserver, *, completed: bool) -> None:
        """Every hook's ``close``, even after one raised; the first exception is raised after."""
        failure: BaseException | None = None
        for hook in self.hooks:
            try:
                hook.close(session, observer, completed=completed and failure is None)
            except BaseException as exc:  # re-raised below, after the other hooks closed
                failure = failure or exc
        if failure is not None:
            raise failure


class EvaluationHook(SessionHook):
    """``train.eval``: evaluate before the commit, which makes the evaluation durable with its checkpoint."""

    def __init__(self) -> None:
        self.evaluation: TrainerEvaluation | None = None

    def start(self, session: AgentSession, observer: TrainObserver) -> None:
        config = session.plan.config
        assert config.train.eval is not None
        self.evaluation = session.trainer.evaluation(config.train.eval)

    def before_commit(self, session: AgentSession, observer: TrainObserver) -> None:
        every, history = session.plan.config.train.eval, session.history
        if self.evaluation is None or every is None:
            return
        last = history.evaluations[-1].episode if history.evaluations else 0
        if not evaluation_due(every.every, last, history.total_episodes):
            return
        record = self.evaluation.evaluate(history.total_episodes)
        history.evaluations.append(record)
        session.record.eval_seconds = round(session.record.eval_seconds + record.seconds, 3)
        observer.evaluation_finished(session.name, record)

    def close(self, session: AgentSession, observer: TrainObserver, *, completed: bool) -> None:
        if self.evaluation is not None:
            self.evaluation.close()


class MonitorHook(SessionHook):
    """``train.monitor_every``: a resource readout every N episodes, kept in the session's record."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.monitor: ResourceMonitor | None = None

    def start(self, session: AgentSession, observer: TrainObserver) -> None:
        self.monitor = ResourceMonitor(session.plan.device)

    def episode(self, session: AgentSession, record: EpisodeRecord, observer: TrainObserver) -> None:
        count = session.record.episodes_count
        if self.monitor is None or count % self.every:
            return
        readout = self.monitor.read(session.budget.elapsed(), session.budget.remaining(), count)
        session.record.resources = fold_readout(session.record.resources, readout)  # committed with the history
        observer.resources(session.name, readout.line())


class TrackingHook(SessionHook):
    """``train.tensorboard`` / ``train.wandb`` / ``train.mlflow``: log only what a commit made
    durable; a resumed run first gets what it committed but never logged."""

    def __init__(self) -> None:
        self.tracking: RunTracking | None = None

    def start(self, session: AgentSession, observer: TrainObserver) -> None:
        resumed = session.resumed_from
        self.tracking = start_tracking(
            session.plan.config,
            session.metadata,
            agent_dir=session.store.layout.root,
            resumed_timesteps=resumed.timesteps if resumed is not None else None,
        )
        if self.tracking is None:
            return
        for buffer in self.tracking.buffers:
            session.trainer.add_value_sink(buffer)
        if resumed is not None:
            self.tracking.backfill(session.store.episodes(session.history), session.history.evaluations)

    def episode(self, session: AgentSession, record: EpisodeRecord, observer: TrainObserver) -> None:
        if self.tracking is not None:  # the training values since the last episode, at this one's step
            session.trainer.flush_values(record.timesteps)

    def committed(
        self, session: AgentSession, entry: CheckpointEntry, episodes: Sequence[EpisodeRecord], observer: TrainObserver
    ) -> None:
        if self.tracking is None:
            return
        session.trainer.flush_values(entry.timesteps)  # a commit between episode ends: the values since the last
        try:
            self.tracking.committed(list(episodes), session.history.evaluations, entry.timesteps)
        except StorageError as exc:  # like the mirror: the run is intact, the next session backfills
            observer.warn(
                f"{session.name}: tracking failed ({exc}); training goes on, the next session logs the missing episodes"
            )

    def close(self, session: AgentSession, observer: TrainObserver, *, completed: bool) -> None:
        if self.tracking is not None:
            self.tracking.close()


class SnapshotHook(SessionHook):
    """``train.snapshots``: the trainer's ``snapshot()`` after every N-th episode, written when
    that episode ends (the only moment the trainer holds its state; nothing is kept in memory)
    and committed by the next checkpoint commit, which lists it in metadata.json; then the newest
    ``keep`` are kept. A snapshot whose commit never came is removed by the next session's first
    commit, and a resumed run takes it again."""

    def __init__(self, every: int, keep: int | None) -> None:
        self.every, self.keep = every, keep
        self.pending: list[SnapshotEntry] = []  # written, not committed yet
        self.warned = False

    def episode(self, session: AgentSession, record: EpisodeRecord, observer: TrainObserver) -> None:
        if not snapshot_due(self.every, record.episode):
            return
        tensors = session.trainer.snapshot()
        if tensors is None:
            if not self.warned:
                observer.warn(f"{session.name}: the trainer returned no snapshot after episode {record.episode}; none is written")
                self.warned = True
            return
        file = snapshot_file(record.episode)
        try:
            payload = snapshot_payload(
                tensors,
                trainer=session.trainer.kind,
                agent=session.name,
                episode=record.episode,
                timesteps=record.timesteps,
                created=now_iso(),
            )
            data = encode_snapshot(payload)
        except TypeError as exc:  # what the trainer returned is no plain tensors and values
            raise TrainerFailedError(
                f"agents.{session.name}: the snapshot after episode {record.episode} cannot be written: {exc}; "
                "the committed checkpoints are intact (--resume continues from the last)"
            ) from None
        session.store.write_snapshot(session.metadata, file, data)
        self.pending.append(snapshot_entry(payload, file, data))

    def before_commit(self, session: AgentSession, observer: TrainObserver) -> None:
        """The snapshots written since the last commit go into the metadata.json it writes."""
        written = {entry.file for entry in self.pending}
        session.metadata.snapshots = [entry for entry in session.metadata.snapshots if entry.file not in written] + self.pending
        self.pending = []

    def committed(
        self, session: AgentSession, entry: CheckpointEntry, episodes: Sequence[EpisodeRecord], observer: TrainObserver
    ) -> None:
        kept = kept_snapshots(session.metadata.snapshots, self.keep)
        session.store.forget_snapshots(session.metadata, [item for item in session.metadata.snapshots if item not in kept])


class MirrorHook(SessionHook):
    """``train.mirror``: push every N commits and at the session's end; a failed copy is a
    warning, not a stop (the local run is intact and the next push retries)."""

    def __init__(self, to: str, every: int) -> None:
        self.to, self.every = to, every

    def committed(
        self, session: AgentSession, entry: CheckpointEntry, episodes: Sequence[EpisodeRecord], observer: TrainObserver
    ) -> None:
        if session.commits % self.every == 0:
            self.push(session, observer)

    def close(self, session: AgentSession, observer: TrainObserver, *, completed: bool) -> None:
        if completed and session.commits:
            self.push(session, observer)

    def push(self, session: AgentSession, observer: TrainObserver) -> None:
        try:
            Mirror(self.to, session.plan.config.experiment, session.name).push(session.store.layout.root, session.metadata)
        except StorageError as exc:
            observer.warn(f"{session.name}: mirroring failed ({exc}); training goes on, the next commit retries")


def session_hooks(session: AgentSession) -> Hooks:
    """The hooks ``session``'s config asks for, in the order they run."""
    train = session.plan.config.train
    hooks: list[SessionHook] = []
    if train.eval is not None:
        hooks.append(EvaluationHook())
    if train.monitor_every:
        hooks.append(MonitorHook(train.monitor_every))
    hooks.append(TrackingHook())
    if train.snapshots is not None:  # before the mirror: it pushes what snapshot retention kept
        hooks.append(SnapshotHook(train.snapshots.every, train.snapshots.keep))
    if train.mirror is not None:
        hooks.append(MirrorHook(train.mirror.to, train.mirror.every))
    return Hooks(hooks)
