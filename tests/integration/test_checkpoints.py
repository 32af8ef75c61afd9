"""What a checkpoint holds, how it loads, and load_agent."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

import atheria_cli
from atheria_cli.agents.checkpoint import read_checkpoint
from atheria_cli.errors import DamagedFileError
from tests.conftest import CARTPOLE_ENV, TINY_AGENTS, tiny_config
from tests.integration.helpers import agent_dir, last_payload, train

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sac")
    config = tiny_config({"SAC": TINY_AGENTS["SAC"]}, env={"id": "Pendulum-v1", "max_episode_steps": 50, "normalize": True})
    train(config, root, episodes=2)
    return root


def test_checkpoint_loads_weights_only_and_holds_the_full_state(sac_run: Path) -> None:
    payload = torch.load(agent_dir(sac_run, "SAC") / "episode_0002.pt", weights_only=True)
    assert payload["format"] == "atheria-checkpoint" and payload["schema_version"] == 2
    assert payload["trainer"] == "sb3"
    assert payload["episode"] == 2 and payload["num_timesteps"] == 100
    model = payload["model"]
    # Policy with its target networks, and every optimizer, SAC's entropy coefficient too.
    assert set(model["state_dicts"]) == {"policy", "actor.optimizer", "critic.optimizer", "ent_coef_optimizer"}
    assert any(key.startswith("critic_target.") for key in model["state_dicts"]["policy"])
    assert model["state_dicts"]["actor.optimizer"]["state"], "optimizer moments are saved"
    assert set(model["variables"]) == {"log_ent_coef"}
    assert model["counters"]["num_timesteps"] == 100 and model["counters"]["_n_updates"] > 0
    # Replay buffer: position, flags and the segments (one per checkpoint) it is rebuilt from.
    buffer = payload["buffer"]
    assert buffer["kind"] == "replay" and buffer["pos"] == 100 and buffer["full"] is False
    assert buffer["rows_total"] == 100 and buffer["capacity"] == 1000
    assert [(s["file"], s["start"], s["end"]) for s in buffer["segments"]] == [
        ("replay/episode_0001.npz", 0, 50),
        ("replay/episode_0002.npz", 50, 100),
    ]
    # VecNormalize statistics, env reset records, every RNG.
    assert payload["env"]["vec_normalize"]["obs_rms"]["count"] > 100
    assert payload["env"]["resets"][0]["rng"]["bit_generator"] == "PCG64"
    assert set(payload["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert payload["rng"]["numpy"]["keys"].dtype == torch.uint32


def test_rollout_buffer_is_kept_mid_rollout(tmp_path: Path) -> None:
    train(tiny_config({"PPO": TINY_AGENTS["PPO"]}), tmp_path, episodes=1)
    payload = last_payload(tmp_path, "PPO")
    # 50 steps with n_steps=32: one update done, 18 steps of the next rollout collected.
    assert payload["buffer"]["kind"] == "rollout" and payload["buffer"]["pos"] == 18
    assert payload["loop"]["family"] == "on_policy" and payload["loop"]["iteration"] == 1
    assert payload["loop"]["episode_steps"].tolist() == [0]  # the episode had just ended


def test_load_agent_returns_a_ready_model(sac_run: Path) -> None:
    model = atheria_cli.load_agent(agent_dir(sac_run, "SAC") / "episode_0002.pt")
    payload = last_payload(sac_run, "SAC")
    for name, tensor in model.policy.state_dict().items():
        assert torch.equal(tensor, payload["model"]["state_dicts"]["policy"][name]), name
    assert model.num_timesteps == 100 and model.replay_buffer.pos == 100
    env = model.get_env()
    assert env.training is False and env.obs_rms.count == payload["env"]["vec_normalize"]["obs_rms"]["count"]
    action, _ = model.predict(env.reset(), deterministic=True)
    assert action.shape == (1, 1) and np.all(np.abs(action) <= 2.0)


def test_load_agent_discrete(tmp_path: Path) -> None:
    train(tiny_config({"DQN": TINY_AGENTS["DQN"]}, env=CARTPOLE_ENV), tmp_path, episodes=1)
    model = atheria_cli.load_agent(agent_dir(tmp_path, "DQN") / "episode_0001.pt")
    action, _ = model.predict(np.zeros((1, 4), dtype=np.float32), deterministic=True)
    assert action.shape == (1,) and action[0] in (0, 1)


class _Payload:
    def __reduce__(self):  # executed by an unsafe loader
        return (Path("pwned").touch, ())


def test_a_checkpoint_carrying_pickled_code_is_refused_without_running_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    buffer = io.BytesIO()
    torch.save({"format": "atheria-checkpoint", "schema_version": 1, "evil": _Payload()}, buffer)
    path = tmp_path / "episode_0001.pt"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DamagedFileError, match="refused, it is not plain weights and data"):
        read_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(DamagedFileError, match="refused"):
        atheria_cli.load_agent(path)


def test_a_truncated_checkpoint_is_reported(sac_run: Path, tmp_path: Path) -> None:
    source = agent_dir(sac_run, "SAC") / "episode_0001.pt"
    truncated = tmp_path / "episode_0001.pt"
    truncated.write_bytes(source.read_bytes()[:1000])
    with pytest.raises(DamagedFileError, match="unreadable checkpoint"):
        read_checkpoint(truncated)
