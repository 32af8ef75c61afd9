"""``atheria compare`` over seeds: one row per agent, each seed's score, and how sure we are.

Torch-free and NumPy-free at import (the bootstrap of :mod:`.statistics` imports NumPy when it runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import UsageError
from atheria_cli.metrics import Quantity, Verdict, best, quantity_named, versus_baseline
from atheria_cli.reports.compare import CompareRow, agent_score, reference_rows
from atheria_cli.reports.runs import AgentRun, read_run
from atheria_cli.reports.statistics import FEW_SEEDS, RESAMPLES, SeedStatistics, probability_of_improvement, seed_statistics
from atheria_cli.run.seeds import run_seeds, seed_config


@dataclass(frozen=True)
class SeedScore:
    seed: int
    state: str
    score: float | None  # see seed_score
    episodes: int  # episodes that went into the score
    last_episode: int | None
    # As in CompareRow: "evaluation" when the seed's evaluations scored it, then counting them.
    source: Literal["episodes", "evaluation"] = "episodes"
    evaluations: int = 0


@dataclass(frozen=True)
class SeedsRow:
    agent: str
    seeds: list[SeedScore]
    statistics: SeedStatistics | None  # over the seeds that have a score
    # Versus the baseline, on the mean over seeds: positive is better whatever the goal.
    improvement: float | None = None
    improvement_percent: float | None = None
    verdict: Verdict | None = None
    beats_best: float | None = None  # P(a seed of this agent beats a seed of the best agent)

    @property
    def scores(self) -> list[float]:
        return [seed.score for seed in self.seeds if seed.score is not None]


@dataclass(frozen=True)
class SeedsCompareReport:
    experiment: str
    metric: Quantity
    window: int
    baseline: float | None
    seeds: list[int]
    agents: list[SeedsRow]
    best_agent: str | None
    references: list[CompareRow] = field(default_factory=list)
    resamples: int = RESAMPLES
    few_seeds: bool = False  # fewer than FEW_SEEDS seeds: the intervals are wide
    eval_window: int = 1  # evaluations pooled per seed, where a seed's run has them


def seed_score(run: AgentRun, metric: Quantity, window: int, eval_window: int = 1) -> tuple[float | None, int, int | None]:
    """A seed's score, with how many episodes went into it and the last episode scored: the
    score of its run by the rule single-run ``compare`` uses (:func:`.compare.agent_score`)."""
    score = agent_score(run, metric, window, eval_window)
    return (score.mean, score.episodes, score.last_episode) if score is not None else (None, 0, None)


def seeds_compare_report(
    config: ExperimentConfig, *, window: int = 10, metric: str | None = None, eval_window: int = 1
) -> SeedsCompareReport:
    if window < 1:
        raise UsageError(f"--window must be at least 1 (got {window})")
    if eval_window < 1:
        raise UsageError(f"--eval-window must be at least 1 (got {eval_window})")
    quantity = quantity_named(config, metric)
    baseline = config.baseline.get(quantity.name)
    seeds = run_seeds(config)
    rows = [_agent_row(config, agent, seeds, quantity, window, eval_window, baseline) for agent in config.agents]
    best = _best(rows, quantity)
    if best is not None:
        best_scores = next(row.scores for row in rows if row.agent == best)
        rows = [_with_beats_best(row, best_scores, quantity) for row in rows]
    return SeedsCompareReport(
        experiment=config.experiment,
        metric=quantity,
        window=window,
        baseline=baseline,
        seeds=seeds,
        agents=rows,
        best_agent=best,
        references=reference_rows(config, quantity, baseline),
        few_seeds=len(seeds) < FEW_SEEDS,
        eval_window=eval_window,
    )


def _agent_row(
    config: ExperimentConfig,
    agent: str,
    seeds: list[int],
    metric: Quantity,
    window: int,
    eval_window: int,
    baseline: float | None,
) -> SeedsRow:
    scores = []
    for seed in seeds:
        run = read_run(seed_config(config, seed), agent)
        score = agent_score(run, metric, window, eval_window)
        if score is None:
            scores.append(SeedScore(seed, run.state, None, 0, None))
        else:
            scores.append(
                SeedScore(seed, run.state, score.mean, score.episodes, score.last_episode, score.source, score.evaluations)
            )
    values = [each.score for each in scores if each.score is not None]
    if not values:
        return SeedsRow(agent, scores, None)
    statistics = seed_statistics(values)
    return SeedsRow(agent, scores, statistics, *versus_baseline(statistics.mean, baseline, metric.goal))


def _best(rows: list[SeedsRow], metric: Quantity) -> str | None:
    """The agent with the best mean over its seeds; the same rule as the single-run comparison
    (:func:`atheria_cli.reports.compare.best_agent`), ties included: the later row wins."""
    order = {row.agent: index for index, row in enumerate(rows)}
    winner = best(rows, lambda row: row.statistics.mean if row.statistics else None, metric.goal, lambda row: order[row.agent])
    return winner.agent if winner else None


def _with_beats_best(row: SeedsRow, best_scores: list[float], metric: Quantity) -> SeedsRow:
    if not row.scores:
        return row
    chance = probability_of_improvement(row.scores, best_scores, metric.goal)
    return SeedsRow(row.agent, row.seeds, row.statistics, row.improvement, row.improvement_percent, row.verdict, chance)
