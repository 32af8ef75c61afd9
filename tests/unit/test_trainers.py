"""The trainer seam: the kind table, its torch-free modules, and what planning refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from atheria_cli.config import ExperimentConfig
from atheria_cli.trainers import TRAINER_KINDS, kind_named, kind_of
from atheria_cli.trainers.base import resolve
from tests.conftest import TINY_AGENTS, tiny_config

HEAVY = ("torch", "stable_baselines3", "gymnasium", "numpy")


@pytest.mark.parametrize("module", ["atheria_cli.trainers", "atheria_cli.trainers.base", "atheria_cli.trainers.builtin"])
def test_the_trainer_table_imports_no_heavy_library(module: str) -> None:
    code = f"import sys, {module}\nprint(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ""


@pytest.mark.parametrize("kind", sorted(TRAINER_KINDS))
def test_every_callable_of_a_kind_resolves(kind: str) -> None:
    entry = kind_named(kind)
    assert entry.name == kind
    for role in ("plan_check", "build", "memory_estimate", "versions", "load"):
        assert callable(resolve(getattr(entry, role))), role
    assert ("stable_baselines3" in entry.library_versions()) == (kind == "sb3")


@pytest.mark.parametrize("kind", sorted(TRAINER_KINDS))
def test_what_deploy_asks_of_a_kind_resolves(kind: str) -> None:
    """export and eval reach a checkpoint's policy only through its kind's entry."""
    entry = kind_named(kind)
    for role in ("deploy", "keeps_replay_buffer"):
        assert callable(resolve(getattr(entry, role))), role


def test_the_sb3_kind_says_which_agents_keep_a_replay_buffer() -> None:
    config = ExperimentConfig.model_validate(tiny_config({name: TINY_AGENTS[name] for name in ("A2C", "SAC", "DQN")}))
    kind = TRAINER_KINDS["sb3"]
    assert {name: kind.has_replay_buffer(config, name) for name in config.agents} == {"A2C": False, "SAC": True, "DQN": True}


def test_every_accepted_algorithm_is_trained_by_the_sb3_kind() -> None:
    config = ExperimentConfig.model_validate(tiny_config({name: TINY_AGENTS[name] for name in ("A2C", "SAC", "DQN")}))
    assert {kind_of(config, name).name for name in config.agents} == {"sb3"}


def test_an_algorithm_of_neither_loop_family_is_refused_at_planning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ARS-like algorithm (BaseAlgorithm without a rollout or replay buffer) has no step loop:
    planning refuses it, and nothing is written."""
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.policies import ActorCriticPolicy

    from atheria_cli.errors import ConfigError
    from atheria_cli.trainers import sb3
    from atheria_cli.training.planning import plan_training

    class DirectPolicySearch(BaseAlgorithm):  # what sb3-contrib's ARS derives from
        def _setup_model(self) -> None:
            pass

        def learn(self, *args: Any, **kwargs: Any) -> DirectPolicySearch:
            return self

    def build_model(config: ExperimentConfig, agent: str, env: Any, device: str, seed: int | None, **_: Any) -> BaseAlgorithm:
        return DirectPolicySearch(ActorCriticPolicy, env, learning_rate=0.01, device=device, seed=seed)

    monkeypatch.setattr(sb3, "build_model", build_model)
    config = ExperimentConfig.model_validate(tiny_config({"A2C": TINY_AGENTS["A2C"]}, checkpoints_dir=str(tmp_path / "runs")))
    with pytest.raises(ConfigError, match=r"agents\.A2C: A2C fits neither of atheria's SB3 step loops"):
        plan_training(config)
    assert not (tmp_path / "runs").exists()
