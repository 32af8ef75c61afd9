"""Turn the final step of an episode into its :class:`EpisodeRecord`."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from atheria_cli.config import MetricSpec
from atheria_cli.errors import MetricError
from atheria_cli.run.formats import EpisodeRecord


class EpisodeClock:
    """Wall-clock start of each environment's current episode."""

    def __init__(self, n_envs: int) -> None:
        now = time.perf_counter()
        self.started = [now] * n_envs

    def lap(self, index: int) -> float:
        now = time.perf_counter()
        seconds, self.started[index] = now - self.started[index], now
        return seconds


def episode_record(
    episode: int, timesteps: int, seconds: float, info: dict[str, Any], metrics: tuple[MetricSpec, ...], env_id: str
) -> EpisodeRecord:
    """Reward and length come from SB3's Monitor (raw, before any normalization)."""
    summary = info.get("episode") or {}
    return EpisodeRecord(
        episode=episode,
        timesteps=timesteps,
        reward=_finite(summary.get("r")),
        length=int(summary.get("l", 0)),
        seconds=round(seconds, 6),
        metrics={metric.name: metric_value(info, metric.name, env_id) for metric in metrics},
    )


def metric_value(info: dict[str, Any], name: str, env_id: str) -> float | None:
    if name not in info:
        known = sorted(key for key in info if key not in ("episode", "terminal_observation", "TimeLimit.truncated"))
        raise MetricError(
            f"metric {name!r} is not in the final info dict of {env_id} episodes "
            f"(keys there: {', '.join(known) or 'none'}); fix env.metrics in the config"
        )
    value = np.asarray(info[name])
    if value.size != 1 or not np.issubdtype(value.dtype, np.number) and value.dtype != np.bool_:
        raise MetricError(f"metric {name!r} of {env_id} is not a single number: {info[name]!r}")
    return _finite(value.item())


def _finite(value: Any) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
