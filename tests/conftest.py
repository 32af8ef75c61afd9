"""Shared fixtures: tiny experiment configs that train in seconds on 2 CPU cores."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

TINY_NET = {"net_arch": [16]}

# Per-algorithm settings small enough for CI, chosen so that checkpoints fall in the middle of
# a rollout (on-policy) or of a training chunk (off-policy).
TINY_AGENTS: dict[str, dict[str, Any]] = {
    "A2C": {"hyperparams": {"n_steps": 7, "policy_kwargs": TINY_NET}},
    "PPO": {"hyperparams": {"n_steps": 32, "batch_size": 16, "n_epochs": 2, "policy_kwargs": TINY_NET}},
    "SAC": {"hyperparams": {"learning_starts": 20, "batch_size": 16, "buffer_size": 1000, "policy_kwargs": TINY_NET}},
    "TD3": {
        "hyperparams": {
            "learning_starts": 20,
            "batch_size": 16,
            "buffer_size": 1000,
            "train_freq": 3,
            "action_noise": {"type": "normal", "sigma": 0.1},
            "policy_kwargs": TINY_NET,
        }
    },
    "DDPG": {
        "hyperparams": {
            "learning_starts": 20,
            "batch_size": 16,
            "buffer_size": 1000,
            "train_freq": [1, "episode"],
            "gradient_steps": 5,
            "action_noise": {"type": "ornstein_uhlenbeck", "sigma": 0.2},
            "policy_kwargs": TINY_NET,
        }
    },
    "DQN": {
        "hyperparams": {
            "learning_starts": 20,
            "batch_size": 16,
            "buffer_size": 1000,
            "train_freq": 4,
            "target_update_interval": 10,
            "policy_kwargs": TINY_NET,
        }
    },
}

PENDULUM_ENV = {"id": "Pendulum-v1", "max_episode_steps": 50}
CARTPOLE_ENV = {"id": "CartPole-v1", "max_episode_steps": 50}


def tiny_config(agents: dict[str, dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
    """A config mapping: A2C, SAC, PPO on a 50-step Pendulum unless told otherwise."""
    agents = agents if agents is not None else {name: TINY_AGENTS[name] for name in ("A2C", "SAC", "PPO")}
    config: dict[str, Any] = {
        "experiment": "test",
        "checkpoints_dir": "checkpoints",
        "seed": 0,
        "device": "cpu",
        "env": dict(PENDULUM_ENV),
        "agents": copy.deepcopy(agents),
        "train": {"episodes": 2, "save_every": 1, "schedule_timesteps": 2000},
    }
    config.update(copy.deepcopy(overrides))
    return config


def listing(folder: Path) -> list[str]:
    """The exact names in a folder, sorted: tests assert whole directory listings."""
    return sorted(path.name for path in folder.iterdir())


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from an empty working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


REPO_CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


@pytest.fixture(autouse=True, scope="session")
def _repository_stays_clean():
    """No test may write run output into the repository's own checkpoints/ folder."""
    before = sorted(p.name for p in REPO_CHECKPOINTS.iterdir()) if REPO_CHECKPOINTS.exists() else []
    yield
    after = sorted(p.name for p in REPO_CHECKPOINTS.iterdir()) if REPO_CHECKPOINTS.exists() else []
    assert after == before, f"tests wrote into {REPO_CHECKPOINTS}: {sorted(set(after) - set(before))}"
