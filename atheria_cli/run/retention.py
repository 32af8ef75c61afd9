"""Which checkpoints a ``train.keep`` policy keeps (torch-free).

Kept: the last K, the best N by a metric, every M-th episode, and anything the caller protects
(the checkpoint the session resumed from, the newest commit). Everything else may go, but only
after the newest checkpoint is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from atheria_cli.config import KeepPolicy
from atheria_cli.metrics import Quantity, ranked_best, value_of
from atheria_cli.run.formats import CheckpointEntry, EpisodeRecord


def kept_checkpoints(
    committed: list[CheckpointEntry],
    policy: KeepPolicy,
    records: Iterable[EpisodeRecord],
    main: Quantity,
    protected: Iterable[str] = (),
    evaluated: Callable[[str], dict[int, float]] | None = None,
) -> list[CheckpointEntry]:
    """``evaluated(metric)``: episode -> evaluation mean (reports.evaluations.evaluation_scores);
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
        keep.update(entry.file for entry in _best(ordered, policy, records, main, evaluated))
    return [entry for entry in ordered if entry.file in keep]


def _whole_episode(entry: CheckpointEntry) -> bool:
    return not entry.partial


def _best(
    ordered: list[CheckpointEntry],
    policy: KeepPolicy,
    records: Iterable[EpisodeRecord],
    main: Quantity,
    evaluated: Callable[[str], dict[int, float]] | None,
) -> list[CheckpointEntry]:
    """The best whole-episode checkpoints: by evaluation when the run has any, else by the
    training episode they close."""
    name = policy.metric or main.name
    goal = policy.goal or (main.goal if name == main.name else "max")
    scores: dict[int, float | None] = dict(evaluated(name)) if evaluated is not None else {}
    values = scores or {record.episode: value_of(record, name) for record in records}
    whole = [entry for entry in ordered if _whole_episode(entry)]
    return ranked_best(whole, lambda entry: values.get(entry.episode), goal, lambda entry: entry.episode)[: policy.best]
