"""What is measured and which way is better: the one home of the main metric, improvement over
a baseline, the better/worse verdict, "best" with its single tie rule and the score of a run.

``status``, ``compare``, ``eval``, the training summary, retention's ``best`` and
``--checkpoint best`` all judge episodes through this module, so they can never disagree on
which episode is the best one; ``compare`` of one run and over seeds score a run through
:func:`run_score`, so they can never score it differently. Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

from atheria_cli.errors import UsageError

if TYPE_CHECKING:
    from atheria_cli.config import ExperimentConfig
    from atheria_cli.run.formats import EpisodeRecord, EvaluationRecord, Stat

Goal = Literal["min", "max"]
Verdict = Literal["better", "worse", "same"]
REWARD = "reward"
T = TypeVar("T")


@dataclass(frozen=True)
class Quantity:
    """Reward or a configured metric, with the direction that counts as better."""

    name: str
    goal: Goal


def quantities(config: ExperimentConfig) -> list[Quantity]:
    """Reward (always ``max``) then every configured metric (``env.metrics``, or the trainer
    agents' ``metrics``), in config order."""
    return [Quantity(REWARD, "max"), *(Quantity(metric.name, metric.goal) for metric in config.metrics)]


def main_quantity(config: ExperimentConfig) -> Quantity:
    """The first configured metric, else reward: what agents are ranked and judged by."""
    measured = quantities(config)
    return measured[1] if len(measured) > 1 else measured[0]


def quantity_named(config: ExperimentConfig, name: str | None) -> Quantity:
    """The quantity called ``name`` (the main one when None); unknown names are a usage error."""
    if name is None:
        return main_quantity(config)
    measured = quantities(config)
    for quantity in measured:
        if quantity.name == name:
            return quantity
    known = ", ".join(quantity.name for quantity in measured)
    raise UsageError(f"unknown metric {name!r}: the experiment records {known}")


def value_of(record: EpisodeRecord, name: str) -> float | None:
    """The record's value of ``name``; None when missing or not finite."""
    value = record.reward if name == REWARD else record.metrics.get(name)
    return value if value is not None and math.isfinite(value) else None


def improvement(value: float, reference: float, goal: Goal) -> float:
    """How much better ``value`` is than ``reference``: positive is better, whatever the goal."""
    return value - reference if goal == "max" else reference - value


def percent_of(change: float, reference: float) -> float | None:
    """``change`` as a percentage of ``|reference|``; None when the reference is 0."""
    return change / abs(reference) * 100 if reference != 0 else None


def verdict(gain: float) -> Verdict:
    """The verdict on an :func:`improvement`."""
    if gain == 0:
        return "same"
    return "better" if gain > 0 else "worse"


def versus_baseline(mean: float | None, baseline: float | None, goal: Goal) -> tuple[float | None, float | None, Verdict | None]:
    """``mean`` against ``baseline``: its :func:`improvement`, that as a percentage of the
    baseline, and the verdict; all None when either is missing."""
    if mean is None or baseline is None:
        return None, None, None
    gain = improvement(mean, baseline, goal)
    return gain, percent_of(gain, baseline), verdict(gain)


def rank(value: float, goal: Goal, episode: int) -> tuple[float, int]:
    """Sort key, larger is better. The tie rule: among equal values the later episode wins
    (it has trained longer, and its checkpoint is the one retention keeps anyway)."""
    return (value if goal == "max" else -value, episode)


def best(items: Iterable[T], score: Callable[[T], float | None], goal: Goal, episode: Callable[[T], int]) -> T | None:
    """The best-scoring item (see :func:`rank` for ties); None when no item has a finite score."""
    ranked = ranked_best(items, score, goal, episode)
    return ranked[0] if ranked else None


def ranked_best(items: Iterable[T], score: Callable[[T], float | None], goal: Goal, episode: Callable[[T], int]) -> list[T]:
    """Items with a finite score, best first."""
    scored = [(value, item) for item in items if (value := score(item)) is not None and math.isfinite(value)]
    scored.sort(key=lambda pair: rank(pair[0], goal, episode(pair[1])), reverse=True)
    return [item for _, item in scored]


def best_record(records: Sequence[EpisodeRecord], quantity: Quantity) -> EpisodeRecord | None:
    """The best episode of a run by ``quantity``."""
    return best(records, lambda record: value_of(record, quantity.name), quantity.goal, lambda record: record.episode)


def stat_of(evaluation: EvaluationRecord, name: str) -> Stat | None:
    """An evaluation's mean and std of ``name`` (reward or a metric); None when not recorded."""
    if name == REWARD:
        return evaluation.reward
    return evaluation.metrics.get(name)


def pooled(evaluations: Sequence[EvaluationRecord], name: str) -> tuple[float, float | None, int] | None:
    """Mean, population std and episode count of ``name`` over every episode of ``evaluations``,
    recovered from each evaluation's mean and std (weighted by its episode count). The std is
    None when an evaluation recorded none (a trainer's ``evaluate`` returns means only): taking
    it for 0 showed a spread of 0.00 that nobody measured."""
    parts = [
        (item.episodes, stat.mean, stat.std) for item in evaluations if (stat := stat_of(item, name)) and stat.mean is not None
    ]
    count = sum(size for size, _, _ in parts)
    if not count:
        return None
    mean = math.fsum(size * value for size, value, _ in parts) / count
    if any(std is None for _, _, std in parts):
        return mean, None, count
    second = math.fsum(size * ((std or 0.0) ** 2 + value * value) for size, value, std in parts) / count
    return mean, math.sqrt(max(second - mean * mean, 0.0)), count


@dataclass(frozen=True)
class RunScore:
    """What a run scored on one quantity (see :func:`run_score`)."""

    mean: float
    std: float | None  # population standard deviation over the episodes scored; None: not recorded
    episodes: int  # episodes that went into the score
    first_episode: int  # the first and last training episode scored, or the first and last
    last_episode: int  # evaluated checkpoint's episode
    # "evaluation": pooled over the episodes of the last evaluations (train.eval);
    # "episodes": over the last training episodes.
    source: Literal["episodes", "evaluation"]
    evaluations: int = 0  # evaluations pooled


def run_score(
    records: Sequence[EpisodeRecord],
    evaluations: Sequence[EvaluationRecord],
    name: str,
    *,
    window: int,
    eval_window: int = 1,
) -> RunScore | None:
    """The score of a run on ``name``: the mean over every episode of its last ``eval_window``
    ``evaluations`` (committed ones, oldest first) when they record it, else the mean of its last
    ``window`` training episodes that have a value; None when neither has one.

    Evaluations score the policy as deployed on fixed seeds; exploring, differently seeded
    training episodes say less about how good an agent is, so they count only without them.
    """
    recent_evaluations = list(evaluations[-eval_window:])
    summary = pooled(recent_evaluations, name)
    if summary is not None:
        mean, std, count = summary
        first, last = recent_evaluations[0].episode, recent_evaluations[-1].episode
        return RunScore(mean, std, count, first, last, "evaluation", len(recent_evaluations))
    recent = [(record.episode, value) for record in records[-window:] if (value := value_of(record, name)) is not None]
    if not recent:
        return None
    values = [value for _, value in recent]
    mean = math.fsum(values) / len(values)
    std = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / len(values))
    return RunScore(mean, std, len(values), recent[0][0], recent[-1][0], "episodes")
