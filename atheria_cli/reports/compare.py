"""``atheria compare``: agents (and reference policies) side by side on one metric."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import DamagedFileError, UsageError
from atheria_cli.metrics import Goal, Quantity, RunScore, Verdict, best, quantity_named, run_score, versus_baseline
from atheria_cli.reports.evaluations import committed_evaluations
from atheria_cli.reports.runs import AgentRun, read_run
from atheria_cli.run.layout import REFERENCES_DIR
from atheria_cli.run.store import RunState


@dataclass(frozen=True)
class CompareRow:
    agent: str
    state: RunState
    episodes: int  # how many of the last-window episodes have a value
    first_episode: int | None
    last_episode: int | None
    mean: float | None
    std: float | None  # population standard deviation over the window
    # Versus the baseline: positive is better whatever the goal.
    improvement: float | None
    improvement_percent: float | None
    verdict: Verdict | None
    kind: Literal["agent", "reference"] = "agent"  # reference: a rule-based policy scored by `atheria eval`
    # "evaluation": mean ± std over the episodes of the last evaluation(s) (train.eval), which
    # first_episode/last_episode then name; "episodes": over the last training episodes.
    source: Literal["episodes", "evaluation"] = "episodes"
    evaluations: int = 0


@dataclass(frozen=True)
class CompareReport:
    experiment: str
    metric: Quantity
    window: int
    baseline: float | None
    agents: list[CompareRow]
    best_agent: str | None
    eval_window: int = 1


def compare_report(
    config: ExperimentConfig, *, window: int = 10, metric: str | None = None, eval_window: int = 1
) -> CompareReport:
    if window < 1:
        raise UsageError(f"--window must be at least 1 (got {window})")
    if eval_window < 1:
        raise UsageError(f"--eval-window must be at least 1 (got {eval_window})")
    quantity = quantity_named(config, metric)
    baseline = config.baseline.get(quantity.name)
    rows = [compare_row(read_run(config, agent), quantity, window, baseline, eval_window) for agent in config.agents]
    best = best_agent(rows, quantity.goal)
    rows += reference_rows(config, quantity, baseline)
    return CompareReport(config.experiment, quantity, window, baseline, rows, best, eval_window)


def reference_rows(config: ExperimentConfig, metric: Quantity, baseline: float | None) -> list[CompareRow]:
    """Reference policies scored by ``atheria eval <name>`` (``<run_dir>/references/<name>.json``)."""
    folder = config.run_dir / REFERENCES_DIR
    rows = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            summary = document["summary"].get(metric.name) or {}
            count = len(document["seeds"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DamagedFileError(path, f"unreadable reference score: {exc}") from None
        mean, std = summary.get("mean"), summary.get("std")
        gain, percent, judged = versus_baseline(mean, baseline, metric.goal)
        rows.append(
            CompareRow(
                agent=path.stem,
                state=RunState.COMMITTED,
                episodes=count,
                first_episode=None,
                last_episode=None,
                mean=mean,
                std=std,
                improvement=gain,
                improvement_percent=percent,
                verdict=judged,
                kind="reference",
            )
        )
    return rows


def compare_row(run: AgentRun, metric: Quantity, window: int, baseline: float | None, eval_window: int = 1) -> CompareRow:
    score = agent_score(run, metric, window, eval_window)
    if score is None:
        return CompareRow(run.agent, run.state, 0, None, None, None, None, None, None, None)
    gain, percent, judged = versus_baseline(score.mean, baseline, metric.goal)
    return CompareRow(
        agent=run.agent,
        state=run.state,
        episodes=score.episodes,
        first_episode=score.first_episode,
        last_episode=score.last_episode,
        mean=score.mean,
        std=score.std,
        improvement=gain,
        improvement_percent=percent,
        verdict=judged,
        source=score.source,
        evaluations=score.evaluations,
    )


def agent_score(run: AgentRun, metric: Quantity, window: int, eval_window: int = 1) -> RunScore | None:
    """The score of one agent's run (:func:`atheria_cli.metrics.run_score`, the one rule that
    ``compare`` of a run and over seeds share): its committed evaluations, else its episodes."""
    evaluations = committed_evaluations(run.history, run.latest) if run.history is not None else []
    return run_score(run.records, evaluations, metric.name, window=window, eval_window=eval_window)


def best_agent(rows: Sequence[CompareRow], goal: Goal) -> str | None:
    """The agent with the best mean; ties go to the later row (the same rule as episodes)."""
    agents = [row for row in rows if row.kind == "agent"]
    order = {row.agent: index for index, row in enumerate(agents)}
    winner = best(agents, lambda row: row.mean, goal, lambda row: order[row.agent])
    return winner.agent if winner else None
