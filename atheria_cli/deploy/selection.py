"""Which committed checkpoint ``--checkpoint last | best | N`` names (torch-free)."""

from __future__ import annotations

import math

from atheria_cli.config import ExperimentConfig, MetricSpec
from atheria_cli.errors import UsageError
from atheria_cli.reports.evaluations import evaluation_scores
from atheria_cli.run.formats import CheckpointEntry, EpisodeRecord
from atheria_cli.run.store import AgentStore, RunState


def main_metric(config: ExperimentConfig) -> MetricSpec:
    """The first configured metric, else the episode reward (higher is better)."""
    return config.env.metrics[0] if config.env.metrics else MetricSpec(name="reward", goal="max")


def metric_of(record: EpisodeRecord, name: str) -> float | None:
    return record.reward if name == "reward" else record.metrics.get(name)


def require_run(store: AgentStore, agent: str) -> None:
    if store.state() is not RunState.COMMITTED:
        raise UsageError(f"{agent} has no run in {store.layout.root}; start one with: atheria train --agent {agent}")


def select_checkpoint(store: AgentStore, agent: str, spec: str, config: ExperimentConfig) -> CheckpointEntry:
    require_run(store, agent)
    committed = store.metadata().checkpoints
    if spec == "last":
        return max(committed, key=lambda entry: entry.episode)
    if spec == "best":
        return _best(store, committed, main_metric(config))
    if not spec.isdigit():
        raise UsageError(f"--checkpoint must be last, best or an episode number (got {spec!r})")
    wanted = int(spec)
    for entry in committed:
        if entry.episode == wanted:
            return entry
    episodes = ", ".join(str(entry.episode) for entry in sorted(committed, key=lambda e: e.episode))
    raise UsageError(f"{agent} has no checkpoint for episode {wanted} (checkpoints: {episodes})")


def _best(store: AgentStore, committed: list[CheckpointEntry], metric: MetricSpec) -> CheckpointEntry:
    """The checkpoint whose evaluation (``train.eval``) scored best on the main metric, else the
    one whose training episode did; the latest among ties."""
    history = store.history()
    evaluated = evaluation_scores(history, metric.name, store.metadata().latest)
    values: dict[int, float | None] = dict(evaluated) or {record.episode: metric_of(record, metric.name) for record in store.episodes(history)}
    sign = 1.0 if metric.goal == "max" else -1.0

    def score(entry: CheckpointEntry) -> tuple[float, int]:
        value = values.get(entry.episode)
        return (sign * value if value is not None and math.isfinite(value) else -math.inf, entry.episode)

    return max(committed, key=score)
