"""n_envs > 1: episodes are counted across environments; resume restarts unfinished ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from atheria_cli.run.formats import read_history, read_metadata
from tests.conftest import CARTPOLE_ENV, TINY_AGENTS, tiny_config
from tests.integration.helpers import agent_dir, episodes, train

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("agent", ["PPO", "DQN"])
def test_several_envs_resume_and_count_episodes_consistently(agent: str, tmp_path: Path) -> None:
    config = tiny_config({agent: TINY_AGENTS[agent]}, env={**CARTPOLE_ENV, "n_envs": 3})
    first = train(config, tmp_path, episodes=4)
    resumed = train(config, tmp_path, episodes=4, resume=True)
    folder = agent_dir(tmp_path, agent)
    history = read_history(folder / "history.json")
    records = episodes(tmp_path, agent)
    numbers = [record.episode for record in records]
    # Consecutive numbers, no gaps or duplicates; a session may overshoot when envs finish together.
    assert numbers == list(range(1, len(numbers) + 1))
    assert history.total_episodes == len(numbers) >= 8
    first_session, second_session = history.trainings
    assert second_session.start_episode == first_session.end_episode + 1
    assert second_session.end_episode == history.total_episodes
    assert read_metadata(folder / "metadata.json").last_episode == history.total_episodes
    # Timesteps grow by n_envs per step and never go back across the resume.
    timesteps = [record.timesteps for record in records]
    assert timesteps == sorted(timesteps) and all(t % 3 == 0 for t in timesteps)
    # Environments that were mid-episode at the checkpoint were restarted, and said so.
    assert first.warnings == []
    assert any(
        "were mid-episode at the checkpoint and cannot restore their state; they start a new episode" in w
        for w in resumed.warnings
    )
