"""Evaluation during training: recorded with its checkpoint, and invisible to training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atheria_cli.run.formats import read_history
from tests.conftest import CARTPOLE_ENV, TINY_AGENTS, tiny_config
from tests.integration.helpers import agent_dir, episodes, train
from tests.integration.test_exact_resume import _assert_same_run

pytestmark = pytest.mark.integration

NORMALIZED_PENDULUM = {"id": "Pendulum-v1", "max_episode_steps": 50, "normalize": True}
CASES = {
    # VecNormalize: the evaluation env copies the training obs statistics.
    "PPO-VecNormalize-deterministic": ({"PPO": TINY_AGENTS["PPO"]}, {"every": 2, "episodes": 2, "seed": 7}, NORMALIZED_PENDULUM),
    # A stochastic policy samples from torch's global generator: it must be restored.
    "SAC-stochastic": (
        {"SAC": TINY_AGENTS["SAC"]},
        {"every": 2, "episodes": 2, "seed": 7, "deterministic": False},
        NORMALIZED_PENDULUM,
    ),
    # DQN's stochastic predict samples the training action space.
    "DQN-stochastic": ({"DQN": TINY_AGENTS["DQN"]}, {"every": 2, "episodes": 2, "seed": 7, "deterministic": False}, CARTPOLE_ENV),
}


def _evaluations(root: Path, agent: str) -> list[dict[str, Any]]:
    history = read_history(agent_dir(root, agent) / "history.json")
    return [{key: value for key, value in item.model_dump().items() if key != "seconds"} for item in history.evaluations]


@pytest.mark.parametrize("case", list(CASES))
def test_evaluating_run_resumes_identically_and_trains_as_without_evaluation(case: str, tmp_path: Path) -> None:
    agents, evaluation, env = CASES[case]
    (agent,) = agents
    plain = tiny_config(agents, env=env)
    evaluated = {**plain, "train": {**plain["train"], "eval": evaluation}}
    train(evaluated, tmp_path / "one_go", episodes=4)
    train(evaluated, tmp_path / "resumed", episodes=3)
    observer = train(evaluated, tmp_path / "resumed", episodes=1, resume=True)
    train(plain, tmp_path / "plain", episodes=4)
    assert observer.warnings == []
    _assert_same_run(tmp_path / "one_go", tmp_path / "resumed", agent)
    _assert_same_run(tmp_path / "one_go", tmp_path / "plain", agent)  # evaluating drew nothing from training
    records = _evaluations(tmp_path / "one_go", agent)
    assert records == _evaluations(tmp_path / "resumed", agent)
    timesteps = [record.timesteps for record in episodes(tmp_path / "one_go", agent)]
    assert [(item["episode"], item["timesteps"], item["seeds"]) for item in records] == [
        (2, timesteps[1], [7, 8]),
        (4, timesteps[3], [7, 8]),
    ]
    assert all(item["reward"]["mean"] is not None and item["length"]["mean"] <= 50 for item in records)


def test_evaluation_forces_a_commit_and_counts_its_time(tmp_path: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]})
    config["train"] = {**config["train"], "save_every": 10, "eval": {"every": 2, "episodes": 1}}
    train(config, tmp_path, episodes=3)
    folder = agent_dir(tmp_path, "A2C")
    metadata = json.loads((folder / "metadata.json").read_text())
    assert [entry["episode"] for entry in metadata["checkpoints"]] == [2, 3]  # 2: evaluation, 3: the session's end
    history = read_history(folder / "history.json")
    (evaluation,) = history.evaluations
    assert evaluation.episode == 2 and evaluation.seeds == [10_000]
    session = history.trainings[0]
    assert 0 < session.eval_seconds == evaluation.seconds <= session.duration_seconds


def test_tensorboard_shows_evaluations_once_across_a_resume(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config({"A2C": TINY_AGENTS["A2C"]})
    config["train"] = {**config["train"], "tensorboard": True, "eval": {"every": 2, "episodes": 1}}
    train(config, tmp_path, episodes=3)
    train(config, tmp_path, episodes=2, resume=True)
    events = EventAccumulator(str(agent_dir(tmp_path, "A2C") / "tensorboard"))
    events.Reload()
    assert [event.step for event in events.Scalars("eval/reward_mean")] == [100, 200]
    assert [event.step for event in events.Scalars("episode/reward")] == [50, 100, 150, 200, 250]
