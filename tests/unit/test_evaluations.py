"""Evaluations (train.eval) in history, compare, --checkpoint best and retention (no torch)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from atheria_cli.config import ExperimentConfig, KeepPolicy
from atheria_cli.deploy.selection import select_checkpoint
from atheria_cli.metrics import main_quantity
from atheria_cli.reports.compare import compare_report
from atheria_cli.reports.evaluations import evaluation_scores, pooled
from atheria_cli.reports.history import build_history, history_json
from atheria_cli.reports.runs import read_run
from atheria_cli.run.formats import EvaluationRecord, Stat, write_document
from atheria_cli.run.retention import kept_checkpoints
from atheria_cli.run.store import AgentStore
from tests.unit.test_reports import commit_sessions, experiment, record


def evaluation(episode: int, co2: float, reward: float = -5.0) -> EvaluationRecord:
    return EvaluationRecord(
        episode=episode,
        timesteps=episode * 10,
        episodes=2,
        seeds=[7, 8],
        seconds=0.1,
        reward=Stat(mean=reward, std=1.0),
        length=Stat(mean=10.0, std=0.0),
        metrics={"co2_kg": Stat(mean=co2, std=1.0)},
    )


@pytest.fixture
def config(tmp_path: Path) -> ExperimentConfig:
    return experiment(tmp_path, baseline={"co2_kg": 100})


@pytest.fixture
def evaluated(config: ExperimentConfig) -> AgentStore:
    """PPO, a checkpoint per episode 1-4; by training episodes episode 4 is best (co2 is to be
    minimized), by evaluation episode 2; an evaluation at episode 6 was never committed."""
    store = commit_sessions(
        config, "PPO", [[record(1, -1.0, 90.0)], [record(2, -1.0, 80.0)], [record(3, -1.0, 70.0)], [record(4, -1.0, 5.0)]]
    )
    history = store.history()
    history.evaluations = [evaluation(2, 10.0), evaluation(4, 50.0), evaluation(6, 1.0)]
    write_document(store.layout.history, history)
    return store


def test_checkpoint_best_ranks_by_evaluation_when_present(config: ExperimentConfig, evaluated: AgentStore) -> None:
    assert select_checkpoint(evaluated, "PPO", "best", config).episode == 2
    history = evaluated.history()
    history.evaluations = []
    write_document(evaluated.layout.history, history)
    assert select_checkpoint(evaluated, "PPO", "best", config).episode == 4


def test_retention_keeps_the_best_evaluated_checkpoint(config: ExperimentConfig, evaluated: AgentStore) -> None:
    history, metadata = evaluated.history(), evaluated.metadata()
    records = evaluated.episodes(history)
    by_evaluation = kept_checkpoints(
        metadata.checkpoints,
        KeepPolicy(best=1),
        records,
        main_quantity(config),
        evaluated=lambda name: evaluation_scores(history, name, metadata.latest),
    )
    assert [entry.episode for entry in by_evaluation] == [2, 4]  # 4: the newest is always kept
    by_training = kept_checkpoints(metadata.checkpoints, KeepPolicy(best=1, last=1), records, main_quantity(config))
    assert [entry.episode for entry in by_training] == [4]
    assert evaluation_scores(history, "reward", metadata.latest) == {2: -5.0, 4: -5.0}


def test_compare_uses_the_latest_evaluation_or_a_window_of_them(config: ExperimentConfig, evaluated: AgentStore) -> None:
    (latest,) = [row for row in compare_report(config).agents if row.agent == "PPO"]
    assert (latest.source, latest.mean, latest.std, latest.episodes, latest.first_episode) == ("evaluation", 50.0, 1.0, 2, 4)
    assert latest.improvement == 50.0  # baseline 100, goal min
    (window,) = [row for row in compare_report(config, eval_window=2).agents if row.agent == "PPO"]
    # Pooled over the 4 episodes of both evaluations: means 10 and 50, each with std 1.
    assert (window.mean, window.episodes, window.evaluations, window.first_episode, window.last_episode) == (30.0, 4, 2, 2, 4)
    assert window.std == pytest.approx(math.sqrt(401.0))


def test_history_shows_only_committed_evaluations(config: ExperimentConfig, evaluated: AgentStore) -> None:
    report = build_history(config, read_run(config, "PPO"))
    assert [item.episode for item in report.evaluations] == [2, 4]
    document = history_json(report, None)
    assert [item["episode"] for item in document["evaluations"]] == [2, 4]
    assert document["evaluations"][0]["metrics"]["co2_kg"] == {"mean": 10.0, "std": 1.0}


def test_pooled_statistics_match_the_episodes_they_summarize() -> None:
    assert pooled([evaluation(2, 10.0)], "missing") is None
    mean, std, count = pooled([evaluation(2, 10.0), evaluation(4, 50.0)], "co2_kg") or (0.0, 0.0, 0)
    episodes = [9.0, 11.0, 49.0, 51.0]  # what means 10 and 50 with std 1 over 2 episodes each are
    assert (mean, count) == (30.0, 4) and std == pytest.approx(math.sqrt(sum((x - 30.0) ** 2 for x in episodes) / 4))


def test_a_pooled_std_is_unknown_when_an_evaluation_recorded_none() -> None:
    # A trainer's evaluate() returns means only: pooling took the missing std for 0, and compare
    # showed "± 0.00" for a spread nobody measured.
    means_only = evaluation(2, 10.0).model_copy(update={"metrics": {"co2_kg": Stat(mean=10.0, std=None)}})
    assert pooled([means_only], "co2_kg") == (10.0, None, 2)
    assert pooled([evaluation(4, 50.0), means_only], "co2_kg") == (30.0, None, 4)
