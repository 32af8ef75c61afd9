"""Evaluations during training (``train.eval``) as the reports use them (torch-free).

An evaluation scores a checkpoint on fixed seeds with the policy acting as deployed, so where a
run has evaluations they, not the (exploring, differently seeded) training episodes, say which
checkpoint is best and how good an agent is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from atheria_cli.run.formats import CheckpointEntry, EvaluationRecord, History, Stat


def committed_evaluations(history: History, latest: CheckpointEntry | None) -> list[EvaluationRecord]:
    """The evaluations committed by ``latest`` or before (history.json may run one commit ahead)."""
    if latest is None:
        return []
    return [item for item in history.evaluations if item.episode <= latest.episode and item.timesteps <= latest.timesteps]


def stat_of(evaluation: EvaluationRecord, name: str) -> Stat | None:
    if name == "reward":
        return evaluation.reward
    return evaluation.metrics.get(name)


def evaluation_scores(history: History, name: str, latest: CheckpointEntry | None = None) -> dict[int, float]:
    """Episode of each evaluated checkpoint -> its evaluation mean of ``name`` (reward or a
    metric); empty when the run has no evaluation. What ``--checkpoint best`` and retention's
    ``best`` rank by when present."""
    evaluations = history.evaluations if latest is None else committed_evaluations(history, latest)
    scores = {}
    for item in evaluations:
        stat = stat_of(item, name)
        if stat is not None and stat.mean is not None and math.isfinite(stat.mean):
            scores[item.episode] = stat.mean
    return scores


def pooled(evaluations: Sequence[EvaluationRecord], name: str) -> tuple[float, float, int] | None:
    """Mean, population std and episode count of ``name`` over every episode of ``evaluations``,
    recovered from each evaluation's mean and std (weighted by its episode count)."""
    parts = [
        (item.episodes, stat.mean, stat.std or 0.0)
        for item in evaluations
        if (stat := stat_of(item, name)) and stat.mean is not None
    ]
    count = sum(size for size, _, _ in parts)
    if not count:
        return None
    mean = math.fsum(size * value for size, value, _ in parts) / count
    second = math.fsum(size * (std * std + value * value) for size, value, std in parts) / count
    return mean, math.sqrt(max(second - mean * mean, 0.0)), count
