"""The objective of a trial, read from its runs' committed evaluations (torch-free).

Per seed: the mean of the metric over the last ``window`` evaluations committed at or before
episode ``upto``; then the mean over the seeds. A seed without an evaluation, or with a value
that is not finite (a diverged run), makes the objective NaN, which the driver prunes with the
reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from atheria_cli.config import ExperimentConfig
from atheria_cli.reports.evaluations import committed_evaluations, stat_of
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.seeds import replicates
from atheria_cli.run.store import AgentStore, RunState


@dataclass(frozen=True)
class TrialObjective:
    value: float  # NaN when any seed has no finite score
    seeds: dict[int, float | None]  # each seed's score
    problem: str | None = None  # why the value is NaN


def seed_score(store: AgentStore, metric: str, window: int, upto: int) -> float | None:
    """The mean of ``metric`` over the last ``window`` committed evaluations at or before
    episode ``upto`` (as many as there are, early in a trial); None when there is none, or
    one is not finite."""
    if store.state() is not RunState.COMMITTED:
        return None
    evaluations = [item for item in committed_evaluations(store.history(), store.metadata().latest) if item.episode <= upto]
    recent = evaluations[-window:]  # fewer before the trial has reached ``window`` evaluations
    if not recent:
        return None
    values = [stat.mean if (stat := stat_of(item, metric)) is not None and stat.mean is not None else math.nan for item in recent]
    mean = math.fsum(values) / len(values)
    return mean if math.isfinite(mean) else None


def trial_objective(trial_config: ExperimentConfig, agent: str, metric: str, window: int, upto: int) -> TrialObjective:
    """The objective of the trial whose config is ``trial_config`` at episode ``upto``."""
    scores: dict[int, float | None] = {}
    for seed, replicate in replicates(trial_config):
        assert seed is not None  # a trial's config always names its seeds
        scores[seed] = seed_score(AgentStore(AgentLayout.of(replicate.run_dir, agent)), metric, window, upto)
    missing = [seed for seed, score in scores.items() if score is None]
    if missing:
        return TrialObjective(
            math.nan, scores, f"seed {missing[0]}: no finite {metric} in the last {window} evaluation(s) by episode {upto}"
        )
    values = [score for score in scores.values() if score is not None]
    return TrialObjective(math.fsum(values) / len(values), scores)
