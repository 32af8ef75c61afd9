"""Evaluations during training (``train.eval``) as the reports use them (torch-free).

An evaluation scores a checkpoint on fixed seeds with the policy acting as deployed, so where a
run has evaluations they, not the (exploring, differently seeded) training episodes, say which
checkpoint is best and how good an agent is.
"""

from __future__ import annotations

import math

# stat_of and pooled live with the scoring rule in metrics; imported here under their old home too.
from atheria_cli.metrics import pooled as pooled
from atheria_cli.metrics import stat_of as stat_of
from atheria_cli.run.formats import CheckpointEntry, EvaluationRecord, History


def committed_evaluations(history: History, latest: CheckpointEntry | None) -> list[EvaluationRecord]:
    """The evaluations committed by ``latest`` or before (history.json may run one commit ahead)."""
    if latest is None:
        return []
    return [item for item in history.evaluations if item.episode <= latest.episode and item.timesteps <= latest.timesteps]


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
