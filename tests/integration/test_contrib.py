"""sb3-contrib's algorithms (the 'contrib' extra) resume bit for bit, like the core six."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from typer.testing import CliRunner

import atheria_cli
from atheria_cli.cli import app
from tests.conftest import CARTPOLE_ENV, TINY_NET, tiny_config, write_config
from tests.integration.helpers import last_payload, rewards, train
from tests.integration.test_exact_resume import _assert_same_run
from tests.integration.test_unattended import BUILDING_DAY, _interrupted_session

pytest.importorskip("sb3_contrib")
pytestmark = pytest.mark.integration
runner = CliRunner()

MASKED_ENV = {"id": "tests.envs:MaskedTargetEnv", "metrics": [{"name": "masked_actions", "goal": "min"}]}
OFF_POLICY = {"learning_starts": 20, "batch_size": 16, "buffer_size": 1000}
ON_POLICY = {"n_steps": 32, "batch_size": 16}
# algo -> (agent, config overrides). Settings small enough for CI, chosen so that checkpoints
# fall in the middle of a rollout (on-policy) or of a training chunk (off-policy).
CONTRIB_AGENTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "TQC": (
        {"hyperparams": {**OFF_POLICY, "train_freq": 3, "policy_kwargs": {**TINY_NET, "n_critics": 2, "n_quantiles": 5}}},
        {},
    ),
    "QRDQN": (
        {
            "hyperparams": {
                **OFF_POLICY,
                "train_freq": 4,
                "target_update_interval": 10,
                "policy_kwargs": {**TINY_NET, "n_quantiles": 5},
            }
        },
        {"env": CARTPOLE_ENV},
    ),
    "TRPO": ({"hyperparams": {**ON_POLICY, "n_critic_updates": 2, "cg_max_steps": 3, "policy_kwargs": TINY_NET}}, {}),
    # CrossQ's critics carry batch norm: its running statistics are part of the policy's state.
    "CrossQ": ({"hyperparams": {**OFF_POLICY, "train_freq": 3, "policy_kwargs": {"net_arch": {"pi": [8], "qf": [16]}}}}, {}),
    "MaskablePPO": ({"hyperparams": {**ON_POLICY, "n_epochs": 2, "policy_kwargs": TINY_NET}}, {"env": MASKED_ENV}),
    # No policy: RecurrentPPO's own default (MlpLstmPolicy) applies, as a new user meets it.
    "RecurrentPPO": ({"hyperparams": {**ON_POLICY, "n_epochs": 2, "policy_kwargs": {**TINY_NET, "lstm_hidden_size": 8}}}, {}),
}


@pytest.mark.parametrize("algo", list(CONTRIB_AGENTS))
def test_contrib_resumed_run_is_identical_to_uninterrupted_run(algo: str, tmp_path: Path) -> None:
    agent, overrides = CONTRIB_AGENTS[algo]
    config = tiny_config({algo: agent}, **overrides)
    train(config, tmp_path / "one_go", episodes=4)
    train(config, tmp_path / "resumed", episodes=2)
    observer = train(config, tmp_path / "resumed", episodes=2, resume=True)
    assert observer.warnings == []
    _assert_same_run(tmp_path / "one_go", tmp_path / "resumed", algo)
    assert len(rewards(tmp_path / "one_go", algo)) == 4


def test_recurrent_ppo_resumed_mid_episode_keeps_its_lstm_memory(tmp_path: Path) -> None:
    """Stopped mid-episode (a stateful env continues exactly), a RecurrentPPO agent resumes
    with the LSTM states it had, not zeros: the run matches the uninterrupted one bit for bit."""
    agent, _ = CONTRIB_AGENTS["RecurrentPPO"]
    config = tiny_config({"RecurrentPPO": agent}, env=BUILDING_DAY)
    config["train"]["save_every_steps"] = 10  # first commit at step 10, mid-episode
    train(config, tmp_path / "one_go", episodes=2)
    outcome, _ = _interrupted_session(config, tmp_path / "resumed", episodes=2)
    assert outcome.exit_code == 130
    memory = last_payload(tmp_path / "resumed", "RecurrentPPO")["loop"]["lstm_states"]
    assert all(tensor.abs().sum() > 0 for part in ("pi", "vf") for tensor in memory[part])
    resumed = train(config, tmp_path / "resumed", episodes=2, resume=True)
    assert resumed.warnings == []  # the env restored its own state: nothing restarted
    _assert_same_run(tmp_path / "one_go", tmp_path / "resumed", "RecurrentPPO")


@pytest.fixture(scope="module")
def one_episode_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One episode of each contrib algorithm, as a config file beside its checkpoints."""
    root = tmp_path_factory.mktemp("contrib_runs")
    paths = {}
    for algo, (agent, overrides) in CONTRIB_AGENTS.items():
        config = tiny_config({algo: agent}, **overrides, experiment=algo, checkpoints_dir=str(root / "checkpoints"))
        paths[algo] = write_config(root / f"{algo}.yaml", config)
        result = runner.invoke(app, ["train", "--config", str(paths[algo]), "--episodes", "1"])
        assert result.exit_code == 0, result.output
    return paths


@pytest.mark.parametrize("algo", ["TQC", "QRDQN", "TRPO", "CrossQ"])
def test_contrib_policy_exports_and_verifies_against_predict(algo: str, one_episode_runs: dict[str, Path]) -> None:
    result = runner.invoke(app, ["export-jit", algo, "--config", str(one_episode_runs[algo])])
    assert result.exit_code == 0, result.output
    assert ", verified on 256 observations, max |difference| " in result.stdout


@pytest.mark.parametrize(
    "algo, reason",
    [
        ("MaskablePPO", "MaskablePPO needs the action mask as an input; not supported by export-jit yet"),
        ("RecurrentPPO", "recurrent policies need explicit state inputs; not supported by export-jit yet"),
    ],
)
def test_masked_and_recurrent_policies_are_refused_by_export(algo: str, reason: str, one_episode_runs: dict[str, Path]) -> None:
    result = runner.invoke(app, ["export-jit", algo, "--config", str(one_episode_runs[algo])])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"atheria: error: cannot export {algo}: {reason}\n"
    folder = one_episode_runs[algo].parent / "checkpoints" / algo / algo
    assert (folder / "episode_0001.pt").exists() and not list(folder.glob("model_jit*"))


def test_recurrent_ppo_without_a_policy_trains_its_lstm_policy(one_episode_runs: dict[str, Path]) -> None:
    folder = one_episode_runs["RecurrentPPO"].parent / "checkpoints" / "RecurrentPPO" / "RecurrentPPO"
    assert json.loads((folder / "metadata.json").read_text())["policy"] == "MlpLstmPolicy"
    model = atheria_cli.load_agent(folder / "episode_0001.pt")
    assert type(model.policy).__name__ == "RecurrentActorCriticPolicy"


def test_eval_of_maskable_ppo_takes_no_masked_action(one_episode_runs: dict[str, Path]) -> None:
    config = one_episode_runs["MaskablePPO"]
    result = runner.invoke(app, ["eval", "MaskablePPO", "--config", str(config), "--episodes", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert [episode["metrics"]["masked_actions"] for episode in json.loads(result.stdout)["episodes"]] == [0, 0, 0]


def test_eval_of_recurrent_ppo_carries_its_lstm_state_through_each_episode(one_episode_runs: dict[str, Path]) -> None:
    config = one_episode_runs["RecurrentPPO"]
    result = runner.invoke(app, ["eval", "RecurrentPPO", "--config", str(config), "--episodes", "2", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    model = atheria_cli.load_agent(config.parent / "checkpoints" / "RecurrentPPO" / "RecurrentPPO" / "episode_0001.pt")
    expected = []
    for seed in (3, 4):
        env = gym.make("Pendulum-v1", max_episode_steps=50)
        obs, _ = env.reset(seed=seed)
        state, start, total, done = None, np.ones((1,), dtype=bool), 0.0, False
        while not done:
            action, state = model.predict(obs[None], state=state, episode_start=start, deterministic=True)
            start = np.zeros((1,), dtype=bool)
            obs, reward, terminated, truncated, _ = env.step(action[0])
            total, done = total + float(reward), terminated or truncated
        expected.append(total)
    assert [episode["reward"] for episode in json.loads(result.stdout)["episodes"]] == expected
