"""Planning validates without building models; a setting only SB3's model setup rejects still writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from typer.testing import CliRunner

from atheria_cli.cli import app
from atheria_cli.config import ExperimentConfig
from atheria_cli.training.planning import plan_training
from tests.conftest import TINY_AGENTS, tiny_config, write_config


def test_planning_builds_no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    built: list[str] = []
    for base in (OnPolicyAlgorithm, OffPolicyAlgorithm):
        setup = base._setup_model

        def counted(self, setup=setup) -> None:  # type: ignore[no-untyped-def]
            built.append(type(self).__name__)
            setup(self)

        monkeypatch.setattr(base, "_setup_model", counted)
    config = ExperimentConfig.model_validate({**tiny_config(), "checkpoints_dir": str(tmp_path)})
    plan = plan_training(config, episodes=1)
    assert [agent.name for agent in plan.agents] == ["A2C", "SAC", "PPO"]
    assert built == []


def test_a_setting_only_the_model_setup_rejects_moves_nothing(in_tmp: Path) -> None:
    # The replay buffer's keyword arguments reach SB3 only when it builds the model (the buffer
    # class depends on the observation space); planning does not check them.
    agent = {"hyperparams": {**TINY_AGENTS["SAC"]["hyperparams"], "replay_buffer_kwargs": {"foo": 1}}}
    config = write_config(in_tmp / "exp.yaml", tiny_config({"SAC": agent}))
    old_run = in_tmp / "checkpoints/test/SAC"
    old_run.mkdir(parents=True)
    (old_run / "episode_0001.pt").write_bytes(b"the old run's checkpoint")
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--episodes", "1", "--fresh"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("atheria: error: agents.SAC: SAC rejected its settings: TypeError: ")
    assert sorted(str(path.relative_to(in_tmp)) for path in in_tmp.rglob("*") if path.is_file()) == [
        "checkpoints/test/SAC/episode_0001.pt",
        "exp.yaml",
    ]
