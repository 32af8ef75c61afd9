"""Statistics over seeds: how sure a comparison of agents can be from a handful of runs.

Following Agarwal et al., "Deep RL at the Edge of the Statistical Precipice" (NeurIPS 2021):
the interquartile mean (IQM) next to the mean, percentile-bootstrap confidence intervals,
and the probability that one agent's seed beats another's. Plain Python, except the bootstrap,
which imports NumPy when called: ``atheria compare`` must start without NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Goal = Literal["min", "max"]
RESAMPLES = 2000
CONFIDENCE = 0.95
BOOTSTRAP_SEED = 0  # a fixed seed: the same runs give the same intervals every time
FEW_SEEDS = 5  # below this, intervals are wide and the report says so


@dataclass(frozen=True)
class SeedStatistics:
    seeds: int
    mean: float
    std: float | None  # sample standard deviation (n - 1); None for one seed
    sem: float | None  # standard error of the mean
    iqm: float
    mean_ci: tuple[float, float] | None  # 95 % percentile bootstrap; None for one seed
    iqm_ci: tuple[float, float] | None
    minimum: float
    maximum: float


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def sample_std(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    centre = mean(values)
    return math.sqrt(math.fsum((value - centre) ** 2 for value in values) / (len(values) - 1))


def trimmed_count(n: int, proportion: float = 0.25) -> int:
    """How many values a 25 % trimmed mean drops at each end (as scipy.stats.trim_mean)."""
    return int(proportion * n)


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle half, dropping ``int(n / 4)`` at each end."""
    ordered = sorted(values)
    cut = trimmed_count(len(ordered))
    return mean(ordered[cut : len(ordered) - cut])


def seed_statistics(values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> SeedStatistics:
    std = sample_std(values)
    return SeedStatistics(
        seeds=len(values),
        mean=mean(values),
        std=std,
        sem=None if std is None else std / math.sqrt(len(values)),
        iqm=iqm(values),
        mean_ci=bootstrap_interval(values, "mean", resamples=resamples, seed=seed),
        iqm_ci=bootstrap_interval(values, "iqm", resamples=resamples, seed=seed),
        minimum=min(values),
        maximum=max(values),
    )


def bootstrap_interval(
    values: Sequence[float],
    statistic: Literal["mean", "iqm"],
    *,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float, float] | None:
    """Percentile bootstrap: resample the seeds with replacement, take the statistic of each
    resample, and read the interval off the quantiles. None for fewer than two seeds."""
    if len(values) < 2:
        return None
    import numpy as np

    generator = np.random.default_rng(seed)
    data = np.asarray(values, dtype=np.float64)
    samples = data[generator.integers(0, len(data), size=(resamples, len(data)))]
    estimates = _STATISTICS[statistic](np, samples)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(estimates, [tail, 100.0 - tail])
    return float(low), float(high)


def _bootstrap_mean(np: Any, samples: Any) -> Any:
    return samples.mean(axis=1)


def _bootstrap_iqm(np: Any, samples: Any) -> Any:
    n = samples.shape[1]
    cut = trimmed_count(n)
    return np.sort(samples, axis=1)[:, cut : n - cut].mean(axis=1)


_STATISTICS: dict[str, Callable[[Any, Any], Any]] = {"mean": _bootstrap_mean, "iqm": _bootstrap_iqm}


def probability_of_improvement(scores: Sequence[float], other: Sequence[float], goal: Goal) -> float:
    """P(a seed of ``scores`` beats a seed of ``other``): over every pair of seeds, a win
    counts 1 and a tie ½."""
    sign = 1.0 if goal == "max" else -1.0
    total = math.fsum(1.0 if sign * (a - b) > 0 else 0.5 if a == b else 0.0 for a in scores for b in other)
    return total / (len(scores) * len(other))
