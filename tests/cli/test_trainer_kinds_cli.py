"""What export and eval ask of a trainer kind, through the CLI, with a kind that exists only here.

``tiny`` is the sb3 kind under another name, with library versions of its own: its trainers are
SB3 trainers whose checkpoints name ``tiny`` in their header. Registered in ``TRAINER_KINDS`` for
each test, with ``refuses`` set as the test needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from atheria_cli.cli import app
from atheria_cli.config import ExperimentConfig
from atheria_cli.trainers import TRAINER_KINDS, TrainerKind
from atheria_cli.trainers.base import resolve
from atheria_cli.training import jobs, planning, session
from tests.conftest import TINY_AGENTS, tiny_config, write_config

pytestmark = pytest.mark.integration

runner = CliRunner()
SB3 = TRAINER_KINDS["sb3"]
TINY = replace(SB3, name="tiny", build=f"{__name__}:build_tiny_trainer", versions=f"{__name__}:tiny_versions")


def build_tiny_trainer(config: ExperimentConfig, agent: str, device: str) -> Any:
    trainer = resolve(SB3.build)(config, agent, device)
    trainer.kind = TINY.name  # what its checkpoints' headers name
    return trainer


def tiny_versions() -> dict[str, str]:
    return {"tinylib": "0.1"}


def refuses_export(config: ExperimentConfig, agent: str, use: str) -> str | None:
    return "the tiny trainer kind cannot be exported" if use == "export" else None


def refuses_evaluate(config: ExperimentConfig, agent: str, use: str) -> str | None:
    return f"{agent}'s tiny trainer cannot be evaluated" if use == "evaluate" else None


NO_EXPORT = replace(TINY, refuses=f"{__name__}:refuses_export")
NO_EVALUATION = replace(TINY, refuses=f"{__name__}:refuses_evaluate")


def use_kind(patch: pytest.MonkeyPatch, kind: TrainerKind) -> None:
    """Register ``kind`` and make it train every agent."""
    patch.setitem(TRAINER_KINDS, kind.name, kind)
    for module in (planning, session, jobs):
        patch.setattr(module, "kind_of", lambda config, agent: kind)


@pytest.fixture(scope="module")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kinds")
    write_config(root / "exp.yaml", tiny_config({"PPO": TINY_AGENTS["PPO"]}))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        use_kind(patch, TINY)
        result = runner.invoke(app, ["train", "--config", "exp.yaml", "--episodes", "1"])
        assert result.exit_code == 0, result.output
    (checkpoint,) = root.glob("checkpoints/*/PPO/episode_0001.pt")
    assert torch.load(checkpoint, weights_only=True)["trainer"] == "tiny"
    return root


@pytest.fixture
def in_root(run_root: Path) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(run_root)
        yield run_root


def agent_files(root: Path) -> list[str]:
    return sorted(path.name for path in root.glob("checkpoints/*/PPO/*"))


def test_export_records_the_library_versions_of_the_checkpoints_kind(
    in_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(TRAINER_KINDS, TINY.name, TINY)
    target = tmp_path / "ppo.pt2"
    result = runner.invoke(app, ["export", "PPO", "--config", "exp.yaml", "--format", "exported", "--output", str(target)])
    assert result.exit_code == 0, result.output
    versions = json.loads(target.with_suffix(".json").read_text())["versions"]
    assert versions["tinylib"] == "0.1" and "stable_baselines3" not in versions


@pytest.mark.parametrize("command", [["export-jit", "PPO"], ["export", "PPO", "--format", "sb3"]])
def test_export_refuses_a_kind_that_cannot_be_exported(
    in_root: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setitem(TRAINER_KINDS, TINY.name, NO_EXPORT)
    before = agent_files(in_root)
    result = runner.invoke(app, [*command, "--config", "exp.yaml"])
    assert result.exit_code == 2, result.output
    assert result.stderr == "atheria: error: PPO: episode_0001.pt: the tiny trainer kind cannot be exported\n"
    assert agent_files(in_root) == before


def test_eval_refuses_a_kind_that_cannot_be_evaluated(in_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TRAINER_KINDS, TINY.name, TINY)
    assert runner.invoke(app, ["eval", "PPO", "--config", "exp.yaml", "--episodes", "1"]).exit_code == 0
    monkeypatch.setitem(TRAINER_KINDS, TINY.name, NO_EVALUATION)
    result = runner.invoke(app, ["eval", "PPO", "--config", "exp.yaml", "--episodes", "1"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == "atheria: error: PPO: episode_0001.pt: PPO's tiny trainer cannot be evaluated\n"


def test_train_eval_is_refused_at_planning_for_a_kind_that_cannot_be_evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config({"PPO": TINY_AGENTS["PPO"]}, checkpoints_dir=str(tmp_path / "runs"))
    config["train"] = {**config["train"], "eval": {"every": 1, "episodes": 1}}
    path = write_config(tmp_path / "exp.yaml", config)
    use_kind(monkeypatch, NO_EVALUATION)
    result = runner.invoke(app, ["train", "--config", str(path), "--episodes", "1"])
    assert result.exit_code == 2, result.output
    assert result.stderr == "atheria: error: train.eval: agents.PPO: PPO's tiny trainer cannot be evaluated\n"
    assert not (tmp_path / "runs").exists()
