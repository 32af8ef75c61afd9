"""Which checkpoints a ``train.keep`` policy keeps (torch-free).

Kept: the last K, the best N by a metric, every M-th episode, and anything the caller protects
(the checkpoint the session resumed from, the newest commit). Everything else may go, but only
after the newest checkpoint is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from atheria_cli.config import ExperimentConfig, KeepPolicy
from atheria_cli.metrics import Quantity, quantity_named, ranked_best, value_of
from atheria_cli.run.formats import CheckpointEntry, EpisodeRecord


def ranked_by(config: ExperimentConfig) -> Quantity:
    """What ``train.keep.best`` ranks by: ``keep.metric`` (default the main metric), in the
    direction ``keep.goal`` names, else in that metric's own goal from ``env.metrics``."""
    policy = config.train.keep
    quantity = quantity_named(config, policy.metric if policy is not None else None)
    if policy is not None and policy.goal is not None:
        return Quantity(quantity.name, policy.goal)
    return quantity


def kept_checkpoints(
    committed: list[CheckpointEntry],
    policy: KeepPolicy,
    records: Iterable[EpisodeRecord],
    ranked: Quantity,
    protected: Iterable[str] = (),
    evaluated: Callable[[str], dict[int, float]] | None = None,
) -> list[CheckpointEntry]:
    """The checkpoints ``policy`` keeps. ``best`` ranks by ``ranked`` (name and goal, from
    :func:`ranked_by`), not by ``policy.metric``: only the config knows a metric's goal.

    ``evaluated(metric)``: episode -> evaluation mean (reports.evaluations.evaluation_scores);
    where it gives any, ``best`` ranks the evaluated checkpoints by it instead of by training episodes."""
    ordered = sorted(committed, key=lambda entry: (entry.timesteps, entry.episode))
    keep = set(protected)
    if ordered:
        keep.add(ordered[-1].file)
    if policy.last:
        keep.update(entry.file for entry in ordered[-policy.last :])
    if policy.every:
        keep.update(entry.file for entry in ordered if entry.episode % policy.every == 0 and _whole_episode(entry))
    if policy.best:
        keep.update(entry.file for entry in _best(ordered, policy.best, records, ranked, evaluated))
    return [entry for entry in ordered if entry.file in keep]


def _whole_episode(entry: CheckpointEntry) -> bool:
    return not entry.partial


def _best(
    ordered: list[CheckpointEntry],
    count: int,
    records: Iterable[EpisodeRecord],
    ranked: Quantity,
    evaluated: Callable[[str], dict[int, float]] | None,
) -> list[CheckpointEntry]:
    """The ``count`` best whole-episode checkpoints: by evaluation when the run has any, else by
    the training episode they close."""
    scores: dict[int, float | None] = dict(evaluated(ranked.name)) if evaluated is not None else {}
    values = scores or {record.episode: value_of(record, ranked.name) for record in records}
    whole = [entry for entry in ordered if _whole_episode(entry)]
    return ranked_best(whole, lambda entry: values.get(entry.episode), ranked.goal, lambda entry: entry.episode)[:count]
