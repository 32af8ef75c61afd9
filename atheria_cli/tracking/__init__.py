"""Experiment trackers (``train.tensorboard``, ``train.wandb``, ``train.mlflow``): log only what a
commit made durable.

One tracked run per atheria run, found again from ``metadata.json``'s ``run_id`` (so a resume,
even from the mirror, continues it and ``--fresh`` starts another); TensorBoard's is the run's
own ``tensorboard/`` folder. Nothing is logged while training; at each commit the session hands
over what that commit made durable: the new episode records, the new evaluations and the
trainer's values buffered since the last commit (:class:`BufferedValues`, one per tracker, at
``step = timesteps``). A crash can therefore never leave points that the resumed run logs again.
A crash between the commit and the log loses those points from the tracker only; the next
session backfills the committed episodes and evaluations from the run's files (the trainer's
values of that window are not in the files and stay lost).

Each tracker answers which step it holds last for each key (MLflow: its metric history;
W&B: see :mod:`atheria_cli.tracking.wandb_adapter`; TensorBoard: its event files, see
:mod:`atheria_cli.tracking.tensorboard_adapter`), and nothing at or below that step is logged
again for that key. Each adapter module is the only place its library is imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import StorageError
from atheria_cli.run.formats import EpisodeRecord, EvaluationRecord, Metadata
from atheria_cli.tracking.values import BufferedValues

Rows = dict[int, dict[str, float]]  # step (timesteps) -> key -> value


class Tracker(Protocol):
    """One experiment tracker behind atheria's commit-time logging.

    :param name: the name its value sink goes by, so a trainer may keep a value away from it
        (SB3's ``exclude="tensorboard"``)
    """

    name: str

    def last_steps(self) -> dict[str, int]: ...

    def log(self, rows: Rows) -> None: ...

    def close(self) -> None: ...


def episode_values(record: EpisodeRecord) -> dict[str, float]:
    values = {"episode/number": float(record.episode), "episode/length": float(record.length)}
    if record.reward is not None:
        values["episode/reward"] = record.reward
    values.update({f"episode/{name}": value for name, value in record.metrics.items() if value is not None})
    return values


def evaluation_values(evaluation: EvaluationRecord) -> dict[str, float]:
    stats = {"reward": evaluation.reward, "length": evaluation.length, **evaluation.metrics}
    values: dict[str, float] = {}
    for name, stat in stats.items():
        if stat.mean is not None:
            values[f"eval/{name}_mean"] = stat.mean
        if stat.std is not None:
            values[f"eval/{name}_std"] = stat.std
    return values


def rows_of(
    episodes: Iterable[EpisodeRecord],
    evaluations: Iterable[EvaluationRecord],
    trained: Iterable[tuple[int, dict[str, float]]] = (),
) -> Rows:
    rows: Rows = {}
    for step, values in (
        *((record.timesteps, episode_values(record)) for record in episodes),
        *((item.timesteps, evaluation_values(item)) for item in evaluations),
        *trained,
    ):
        rows.setdefault(step, {}).update(values)
    return dict(sorted(rows.items()))


def unlogged(rows: Rows, last: dict[str, int]) -> Rows:
    """``rows`` without the (key, step) points the tracker holds already."""
    kept: Rows = {}
    for step, values in rows.items():
        fresh = {key: value for key, value in values.items() if step > last.get(key, last.get("*", -1))}
        if fresh:
            kept[step] = fresh
    return kept


def flat_config(document: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """The resolved config as ``a.b.c -> value`` strings (trackers' parameter tables)."""
    flat: dict[str, str] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flat_config(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


@dataclass
class RunTracking:
    """The trackers of one agent's session, each with the trainer's values waiting for its next commit."""

    trackers: list[Tracker]
    last: list[dict[str, int]] = field(default_factory=list)
    buffers: list[BufferedValues] = field(init=False)

    def __post_init__(self) -> None:
        self.buffers = [BufferedValues(tracker.name) for tracker in self.trackers]

    def backfill(self, episodes: Sequence[EpisodeRecord], evaluations: Sequence[EvaluationRecord]) -> None:
        """What the run's files hold and a tracker lacks (a crash between a commit and its log)."""
        rows = rows_of(episodes, evaluations)
        self._log([rows] * len(self.trackers))

    def committed(self, episodes: Sequence[EpisodeRecord], evaluations: Sequence[EvaluationRecord], timesteps: int) -> None:
        self._log([rows_of(episodes, evaluations, buffer.take(timesteps)) for buffer in self.buffers])

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()

    def _log(self, rows_by_tracker: list[Rows]) -> None:
        """Each tracker its fresh rows, even when another refused; the first refusal is raised after."""
        failure: StorageError | None = None
        for tracker, last, rows in zip(self.trackers, self.last, rows_by_tracker, strict=True):
            fresh = unlogged(rows, last)
            if not fresh:
                continue
            try:
                tracker.log(fresh)
            except StorageError as exc:  # the others still log; the next session backfills this one
                failure = failure or exc
                continue
            for step, values in fresh.items():
                last.update(dict.fromkeys(values, step))
        if failure is not None:
            raise failure


def start_tracking(
    config: ExperimentConfig, metadata: Metadata, *, agent_dir: Path, resumed_timesteps: int | None
) -> RunTracking | None:
    """Open (or find again) the tracked runs of this atheria run; None when none is configured.

    :param resumed_timesteps: the timesteps of the checkpoint the session resumed from; None
        for a session that starts fresh
    """
    trackers: list[Tracker] = []
    names = {"experiment": config.experiment, "agent": metadata.agent, "run_id": metadata.run_id}
    params = {
        **flat_config({"config": _config_dict(config)}),
        **{f"versions.{key}": value for key, value in metadata.versions.items()},
    }
    if config.train.tensorboard:
        from atheria_cli.tracking.tensorboard_adapter import TensorBoardTracker

        trackers.append(TensorBoardTracker(agent_dir, resumed_timesteps))
    if config.train.mlflow is not None:
        from atheria_cli.tracking.mlflow_adapter import MlflowTracker

        trackers.append(MlflowTracker(config.train.mlflow, names, params))
    if config.train.wandb is not None:
        from atheria_cli.tracking.wandb_adapter import WandbTracker

        trackers.append(WandbTracker(config.train.wandb, names, params, str(agent_dir)))
    if not trackers:
        return None
    return RunTracking(trackers=trackers, last=[tracker.last_steps() for tracker in trackers])


def _config_dict(config: ExperimentConfig) -> dict[str, Any]:
    from atheria_cli.config import config_to_dict

    return config_to_dict(config)
