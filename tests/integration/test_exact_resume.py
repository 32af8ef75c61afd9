"""N+M episodes in one session == N episodes, then --resume for M: bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CARTPOLE_ENV, TINY_AGENTS, tiny_config
from tests.integration.helpers import SB3_SECTIONS, assert_same_tree, last_payload, rewards, train

pytestmark = pytest.mark.integration

# Everything that determines the future of training. "created" timestamps and the wall-clock
# start of SB3's logger are excluded; the Monitor's per-episode wall time "t" is too.
COMPARED_SECTIONS = SB3_SECTIONS


def _without_wall_time(model_state: dict[str, Any]) -> dict[str, Any]:
    state = dict(model_state)
    state["ep_info_buffer"] = [{k: v for k, v in info.items() if k != "t"} for info in state["ep_info_buffer"]]
    return state


def _assert_same_run(one_go: Path, resumed: Path, agent: str) -> None:
    assert rewards(one_go, agent) == rewards(resumed, agent)
    a, b = last_payload(one_go, agent), last_payload(resumed, agent)
    assert a["episode"] == b["episode"] and a["num_timesteps"] == b["num_timesteps"]
    for section in COMPARED_SECTIONS:
        left, right = a[section], b[section]
        if section == "model":
            left, right = _without_wall_time(left), _without_wall_time(right)
        assert_same_tree(left, right, f"{agent}.{section}")


CASES = {
    "A2C": ({"A2C": TINY_AGENTS["A2C"]}, {}),
    "PPO": ({"PPO": TINY_AGENTS["PPO"]}, {}),
    "SAC": ({"SAC": TINY_AGENTS["SAC"]}, {}),
    "TD3": ({"TD3": TINY_AGENTS["TD3"]}, {}),
    "DDPG": ({"DDPG": TINY_AGENTS["DDPG"]}, {}),
    "DQN": ({"DQN": TINY_AGENTS["DQN"]}, {"env": CARTPOLE_ENV}),
    "PPO-gSDE": (
        {"PPO": {"hyperparams": {**TINY_AGENTS["PPO"]["hyperparams"], "use_sde": True, "sde_sample_freq": 5}}},
        {},
    ),
    "SAC-gSDE": (
        {"SAC": {"hyperparams": {**TINY_AGENTS["SAC"]["hyperparams"], "use_sde": True, "sde_sample_freq": 4}}},
        {},
    ),
    # Replay rings smaller than the run: segments wrap around and old ones stop being needed.
    "SAC-ring-buffer": ({"SAC": {"hyperparams": {**TINY_AGENTS["SAC"]["hyperparams"], "buffer_size": 120}}}, {}),
    "DQN-optimize-memory": (
        {
            "DQN": {
                "hyperparams": {
                    **TINY_AGENTS["DQN"]["hyperparams"],
                    "buffer_size": 90,
                    "optimize_memory_usage": True,
                    "replay_buffer_kwargs": {"handle_timeout_termination": False},
                }
            }
        },
        {"env": CARTPOLE_ENV},
    ),
    "PPO-linear-schedules": (
        {
            "PPO": {
                "hyperparams": {
                    **TINY_AGENTS["PPO"]["hyperparams"],
                    "learning_rate": {"schedule": "linear", "start": 0.003, "end": 0.0001},
                    "clip_range": {"schedule": "linear", "start": 0.3, "end": 0.1},
                }
            }
        },
        {},
    ),
    "PPO-VecNormalize": ({"PPO": TINY_AGENTS["PPO"]}, {"env": {"id": "Pendulum-v1", "max_episode_steps": 50, "normalize": True}}),
    "SAC-VecNormalize": ({"SAC": TINY_AGENTS["SAC"]}, {"env": {"id": "Pendulum-v1", "max_episode_steps": 50, "normalize": True}}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_resumed_run_is_identical_to_uninterrupted_run(case: str, tmp_path: Path) -> None:
    agents, overrides = CASES[case]
    config = tiny_config(agents, **overrides)
    (agent,) = agents
    train(config, tmp_path / "one_go", episodes=5)
    train(config, tmp_path / "resumed", episodes=2)
    observer = train(config, tmp_path / "resumed", episodes=3, resume=True)
    assert observer.warnings == []
    _assert_same_run(tmp_path / "one_go", tmp_path / "resumed", agent)
    assert len(rewards(tmp_path / "one_go", agent)) == 5


def test_two_resumes_in_a_row_match_one_session(tmp_path: Path) -> None:
    config = tiny_config({"SAC": TINY_AGENTS["SAC"]})
    train(config, tmp_path / "one_go", episodes=3)
    for episodes, resume in ((1, False), (1, True), (1, True)):
        train(config, tmp_path / "steps", episodes=episodes, resume=resume)
    _assert_same_run(tmp_path / "one_go", tmp_path / "steps", "SAC")
