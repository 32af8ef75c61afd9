"""What ``atheria eval`` measures: deterministic episodes of a policy in an env, or what a user's
trainer's own ``evaluate`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from atheria_cli.training.episodes import metric_value

if TYPE_CHECKING:
    from atheria_cli.config import ExperimentConfig


class Actor(Protocol):
    """A deterministic policy acting in one (unvectorized) env, episode by episode: a checkpoint's
    (its trainer kind's, e.g. :class:`~atheria_cli.agents.acting.ModelActor`), an export's, a
    reference policy."""

    def start_episode(self) -> None:
        """Forget the last episode (recurrent state, stacked frames); called after each reset."""

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Actions for a batch of one raw observation of the env."""


@dataclass
class EvalEpisode:
    seed: int
    reward: float
    length: int
    metrics: dict[str, float | None] = field(default_factory=dict)


@dataclass
class CheckpointEvaluation:
    """What evaluating a checkpoint gave: a policy's episodes, or the one value of each quantity
    (reward and every metric) a trainer's ``evaluate(episodes, seed)`` returned."""

    episodes: list[EvalEpisode] = field(default_factory=list)
    measured: dict[str, float | None] | None = None


def play_episode(env: Any, actor: Actor, seed: int, config: ExperimentConfig) -> EvalEpisode:
    """One episode of ``actor`` in ``env`` (an unvectorized gymnasium env) from ``reset(seed=seed)``."""
    obs, info = env.reset(seed=seed)
    actor.start_episode()
    total, length, done = 0.0, 0, False
    while not done:
        action = actor(np.asarray(obs)[None])[0]
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        length += 1
        done = terminated or truncated
    metrics = {metric.name: metric_value(info, metric.name, config.environment.id) for metric in config.environment.metrics}
    return EvalEpisode(seed=seed, reward=total, length=length, metrics=metrics)
