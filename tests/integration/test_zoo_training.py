"""rl-zoo3 entries train through ``zoo:``; --until-timesteps; frame stacking resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from atheria_cli.agents import names, registry
from atheria_cli.cli import app
from atheria_cli.config import zoo
from tests.conftest import CARTPOLE_ENV, TINY_AGENTS, TINY_NET, listing, tiny_config, write_config
from tests.integration.helpers import SB3_SECTIONS, agent_dir, assert_same_tree, episodes, last_payload, rewards, train

pytestmark = pytest.mark.integration
runner = CliRunner()
needs_zoo = pytest.mark.skipif(
    zoo.zoo_hyperparams_dir() is None, reason="rl_zoo3 is not installed (pip install 'atheria-cli[zoo]')"
)

# Each entry shrunk by the agent's own hyperparams so one episode trains in about a second.
SHRINK_OFF_POLICY = {"learning_starts": 20, "batch_size": 16, "buffer_size": 500, "policy_kwargs": TINY_NET}
ZOO_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "sac/Pendulum-v1": ({"hyperparams": SHRINK_OFF_POLICY}, {"id": "Pendulum-v1", "max_episode_steps": 50}),
    "td3/Pendulum-v1": (
        {"hyperparams": {**SHRINK_OFF_POLICY, "train_freq": [1, "episode"]}},
        {"id": "Pendulum-v1", "max_episode_steps": 50},
    ),
    "ppo/CartPole-v1": ({"hyperparams": {"batch_size": 32, "n_epochs": 2, "policy_kwargs": TINY_NET}}, CARTPOLE_ENV),
    "dqn/CartPole-v1": ({"hyperparams": {**SHRINK_OFF_POLICY, "train_freq": 8, "gradient_steps": 2}}, CARTPOLE_ENV),
}


def test_every_activation_and_optimizer_name_is_a_torch_class() -> None:
    # One table (atheria_cli.agents.names) serves the config and the zoo parser: each name must
    # be what the registry resolves it to.
    import torch

    assert all(isinstance(getattr(torch.nn, name, None), type) for name in names.ACTIVATIONS)
    assert all(isinstance(getattr(torch.optim, name, None), type) for name in names.OPTIMIZERS)
    assert registry.ACTIVATIONS is names.ACTIVATIONS and zoo.ACTIVATIONS is names.ACTIVATIONS


@needs_zoo
@pytest.mark.parametrize("spec", list(ZOO_CASES))
def test_a_zoo_entry_trains_with_no_hand_translation(spec: str, in_tmp: Path) -> None:
    agent, env = ZOO_CASES[spec]
    name = spec.split("/")[0].upper()
    path = write_config(in_tmp / "exp.yaml", tiny_config({name: {"zoo": spec, **agent}}, env=env))
    result = runner.invoke(app, ["train", "--config", str(path), "--episodes", "1"])
    assert result.exit_code == 0, result.output
    assert f"{name}: hyperparameters from rl-zoo3 {spec} (rl_zoo3 2.9.2): " in result.stderr
    assert "is tuned for" not in result.stderr  # the entry's own env
    metadata = json.loads((agent_dir(in_tmp / "checkpoints", name) / "metadata.json").read_text())
    assert metadata["zoo"] == {"entry": spec, "source": "rl_zoo3 2.9.2"}
    assert metadata["hyperparams"]["policy_kwargs"]["net_arch"] == [16]  # the agent's own keys win
    stored = json.loads((agent_dir(in_tmp / "checkpoints", name) / "config.json").read_text())["config"]["agents"][name]
    assert (
        stored["zoo"] == spec
        and stored["schedule_timesteps"] == {"sac": 20_000, "td3": 20_000, "ppo": 100_000, "dqn": 50_000}[name.lower()]
    )
    if spec == "ppo/CartPole-v1":
        assert stored["env"]["n_envs"] == 8 and metadata["hyperparams"]["learning_rate"]["schedule"] == "linear"
        assert last_payload(in_tmp / "checkpoints", name)["loop"] is not None
    if spec == "td3/Pendulum-v1":
        assert metadata["hyperparams"]["train_freq"] == [1, "episode"]
        assert metadata["hyperparams"]["action_noise"].startswith("NormalActionNoise")


@needs_zoo
def test_a_zoo_entry_on_another_env_trains_with_a_warning_naming_both(in_tmp: Path) -> None:
    agent = {"zoo": "sac/Pendulum-v1", "hyperparams": SHRINK_OFF_POLICY}
    env = {"id": "MountainCarContinuous-v0", "max_episode_steps": 50}
    path = write_config(in_tmp / "exp.yaml", tiny_config({"SAC": agent}, env=env))
    result = runner.invoke(app, ["train", "--config", str(path), "--episodes", "1"])
    assert result.exit_code == 0, result.output
    assert (
        "atheria: warning: SAC: the rl-zoo3 entry sac/Pendulum-v1 is tuned for Pendulum-v1; "
        "this run trains it on MountainCarContinuous-v0\n"
    ) in result.stderr


LIN_ENTRY = """\
Pendulum-v1:
  n_timesteps: 200
  policy: 'MlpPolicy'
  n_steps: 25
  batch_size: 25
  n_epochs: 2
  learning_rate: lin_7.3e-4
  clip_range: lin_0.2
  policy_kwargs: "dict(net_arch=[16])"
"""


def test_a_zoo_entry_trains_bit_for_bit_as_rl_zoo3_trains_it(in_tmp: Path) -> None:
    # rl-zoo3's trainer is SB3's learn(n_timesteps) with the entry's values, lin_X being its
    # progress_remaining * X: the entry through zoo: (lin_X translated, n_timesteps the schedule
    # horizon) must reach the same weights when both stop at n_timesteps.
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    (in_tmp / "ppo.yml").write_text(LIN_ENTRY, encoding="utf-8")
    config = tiny_config({"PPO": {"zoo": "ppo.yml#Pendulum-v1"}}, env={"id": "Pendulum-v1", "max_episode_steps": 50})
    path = write_config(in_tmp / "exp.yaml", config)
    result = runner.invoke(app, ["train", "--config", str(path), "--until-timesteps", "200"])
    assert result.exit_code == 0, result.output
    payload = last_payload(in_tmp / "checkpoints", "PPO")
    assert payload["num_timesteps"] == 200
    env = make_vec_env(lambda: gym.make("Pendulum-v1", max_episode_steps=50), n_envs=1)
    hyperparams = {"n_steps": 25, "batch_size": 25, "n_epochs": 2, "policy_kwargs": {"net_arch": [16]}}
    zoo = PPO(
        "MlpPolicy",
        env,
        seed=0,
        device="cpu",
        learning_rate=lambda progress: progress * 7.3e-4,
        clip_range=lambda progress: progress * 0.2,
        **hyperparams,
    )
    zoo.learn(total_timesteps=200)
    ours = payload["model"]["state_dicts"]["policy"]
    assert [key for key, value in zoo.policy.state_dict().items() if not torch.equal(ours[key], value)] == []


def test_until_timesteps_ends_at_the_first_episode_end_at_or_after_it(tmp_path: Path) -> None:
    config = tiny_config({"SAC": {"hyperparams": {**TINY_AGENTS["SAC"]["hyperparams"], "learning_starts": 1000}}})
    train(config, tmp_path, episodes=None, until_timesteps=120)
    assert [record.timesteps for record in episodes(tmp_path, "SAC")] == [50, 100, 150]
    assert last_payload(tmp_path, "SAC")["num_timesteps"] == 150  # committed at that episode end
    train(config, tmp_path, episodes=None, resume=True, until_timesteps=200)
    assert [record.timesteps for record in episodes(tmp_path, "SAC")] == [50, 100, 150, 200]
    train(config, tmp_path, episodes=1, resume=True, until_timesteps=10_000)  # --episodes still caps the session
    assert len(episodes(tmp_path, "SAC")) == 5


FRAME_STACK_CASES = {
    "PPO": ({"PPO": {**TINY_AGENTS["PPO"], "env": {"frame_stack": 3}}}, {}),
    "DQN": ({"DQN": {**TINY_AGENTS["DQN"], "env": {"frame_stack": 4}}}, {"env": CARTPOLE_ENV}),
    "PPO-VecNormalize": ({"PPO": {**TINY_AGENTS["PPO"], "env": {"frame_stack": 2, "normalize": True}}}, {}),
}


@pytest.mark.parametrize("case", list(FRAME_STACK_CASES))
def test_frame_stacked_run_resumes_bit_identically(case: str, tmp_path: Path) -> None:
    agents, overrides = FRAME_STACK_CASES[case]
    config = tiny_config(agents, **overrides)
    (agent,) = agents
    train(config, tmp_path / "one_go", episodes=4)
    train(config, tmp_path / "resumed", episodes=2)
    observer = train(config, tmp_path / "resumed", episodes=2, resume=True)
    assert observer.warnings == []
    assert rewards(tmp_path / "one_go", agent) == rewards(tmp_path / "resumed", agent)
    one_go, resumed = last_payload(tmp_path / "one_go", agent), last_payload(tmp_path / "resumed", agent)
    assert one_go["env"]["frame_stack"] is not None
    for section in SB3_SECTIONS:
        left, right = one_go[section], resumed[section]
        if section == "model":  # the Monitor's wall time "t" differs between runs
            left, right = ({**state, "ep_info_buffer": None} for state in (left, right))
        assert_same_tree(left, right, section)


def test_a_frame_stacked_agent_evaluates_and_refuses_export(in_tmp: Path) -> None:
    path = write_config(in_tmp / "exp.yaml", tiny_config({"PPO": {**TINY_AGENTS["PPO"], "env": {"frame_stack": 3}}}))
    trained = runner.invoke(app, ["train", "--config", str(path), "--until-timesteps", "40"])  # 50-step episodes
    assert trained.exit_code == 0 and "PPO: episodes 1 until the timestep target (new run)" in trained.stderr
    evaluated = runner.invoke(app, ["eval", "PPO", "--config", str(path), "--episodes", "2", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert [episode["length"] for episode in json.loads(evaluated.stdout)["episodes"]] == [50, 50]
    exported = runner.invoke(app, ["export-jit", "PPO", "--config", str(path)])
    assert exported.exit_code == 2
    assert "PPO: a frame-stacked policy (frame_stack) cannot be exported yet" in exported.stderr
    assert listing(agent_dir(in_tmp / "checkpoints", "PPO")) == [
        "config.json",
        "episode_0001.pt",
        "episodes.jsonl",
        "history.json",
        "metadata.json",
    ]


def test_the_replay_memory_check_sizes_a_buffer_on_its_agents_own_frame_stacked_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from gymnasium import spaces

    from atheria_cli.config import ExperimentConfig
    from atheria_cli.errors import UsageError
    from atheria_cli.training import jobs
    from atheria_cli.training.memory import transition_bytes

    dqn = {**TINY_AGENTS["DQN"], "env": {"frame_stack": 4}, "hyperparams": {"buffer_size": 1_000_000}}
    config = ExperimentConfig.model_validate(tiny_config({"DQN": dqn}, env=CARTPOLE_ENV))
    stacked = spaces.Box(-1.0, 1.0, shape=(16,), dtype=np.float32)  # CartPole's 4 floats, 4 frames
    needed = 1_000_000 * transition_bytes(stacked, spaces.Discrete(2), optimize_memory_usage=False)
    monkeypatch.setattr(jobs, "available_memory", lambda: needed)  # the machine's memory: not ours to choose
    jobs._check_memory(config, ["DQN"], jobs=1)
    monkeypatch.setattr(jobs, "available_memory", lambda: needed - 1)
    with pytest.raises(UsageError, match="lower agents.DQN.hyperparams.buffer_size"):
        jobs._check_memory(config, ["DQN"], jobs=1)


def test_a_run_written_before_the_per_agent_fields_resumes_without_drift(tmp_path: Path) -> None:
    config = tiny_config({"SAC": TINY_AGENTS["SAC"]})
    train(config, tmp_path, episodes=1)
    path = agent_dir(tmp_path, "SAC") / "config.json"
    document = json.loads(path.read_text())
    for name in ("zoo", "env", "schedule_timesteps"):
        del document["config"]["agents"]["SAC"][name]
    del document["config"]["env"]["frame_stack"]
    path.write_text(json.dumps(document))
    observer = train(config, tmp_path, episodes=1, resume=True)
    assert observer.warnings == [] and len(episodes(tmp_path, "SAC")) == 2
