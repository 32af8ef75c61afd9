"""The built-in QCA trainer (``trainer: atheria/qca``): its simulation survives a resume (also a
kill -9) bit for bit, ``verify --resume-exactness`` passes on it, bad kwargs are refused with one
line, and its update step exports as a deterministic module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from atheria_cli.cli import app
from atheria_cli.config import load_config
from atheria_cli.trainers.custom import TrainerContext
from atheria_cli.trainers.qca.model import QCAStep, channels_to_complex, complex_to_channels
from atheria_cli.trainers.qca.trainer import QCATrainer, noise_level, scores
from tests.conftest import listing, write_config
from tests.integration.helpers import agent_dir, assert_same_tree, episodes, kill_after_commits, last_payload, train

pytestmark = pytest.mark.integration

runner = CliRunner()
REPOSITORY = Path(__file__).resolve().parents[2]
TINY = {"grid_size": 8, "d_state": 2, "hidden_channels": 4, "qca_steps": 3, "lr": 0.01, "noise_warmup": 2}
METRICS = [{"name": "combined_metric", "goal": "max"}, "survival", "symmetry", "complexity"]
CONTEXT = TrainerContext(device="cpu", seed=5, agent="qca")


def qca_config(**kwargs: Any) -> dict[str, Any]:
    return {
        "experiment": "test",
        "checkpoints_dir": "checkpoints",
        "seed": 3,
        "device": "cpu",
        "agents": {"qca": {"trainer": "atheria/qca", "kwargs": {**TINY, **kwargs}, "metrics": METRICS}},
    }


def _records(root: Path) -> list[dict[str, Any]]:
    return [record.model_dump(exclude={"seconds"}) for record in episodes(root, "qca")]


def _assert_same_run(left: Path, right: Path) -> None:
    """Every episode record, and every tensor and value of the last checkpoint's state and RNG."""
    assert _records(left) == _records(right)
    ours, theirs = last_payload(left, "qca"), last_payload(right, "qca")
    assert ours["episode"] == theirs["episode"]
    assert_same_tree(ours["state"], theirs["state"], "state")
    assert_same_tree(ours["rng"], theirs["rng"], "rng")


@pytest.mark.parametrize("architecture", ["unet", "mlp"])
def test_n_plus_m_equals_n_then_resume_m(tmp_path: Path, architecture: str) -> None:
    config = qca_config(architecture=architecture)
    one_go = train(config, tmp_path / "one", episodes=5)
    train(config, tmp_path / "split", episodes=2)
    resumed = train(config, tmp_path / "split", episodes=3, resume=True)
    assert one_go.warnings == [] and resumed.warnings == []  # the round-trip check finds nothing left out
    _assert_same_run(tmp_path / "one", tmp_path / "split")

    state = last_payload(tmp_path / "one", "qca")["state"]
    assert sorted(state) == ["generator", "model", "optimizer", "psi", "scheduler", "step"]
    assert state["psi"].dtype == torch.complex64 and state["psi"].shape == (2, 8, 8)
    assert state["step"] == 5 * 3  # the simulation's clock: qca_steps per episode
    records = _records(tmp_path / "one")
    assert [record["length"] for record in records] == [3] * 5
    assert all(0 <= record["metrics"][name] <= 1 for record in records for name in ("survival", "symmetry", "complexity"))


def test_a_run_killed_and_resumed_ends_as_one_uninterrupted(tmp_path: Path) -> None:
    config = qca_config(qca_steps=6)
    write_config(tmp_path / "exp.yaml", config)
    killed_at = kill_after_commits(tmp_path, "qca", commits=3)
    assert 3 <= killed_at < 400
    train(config, tmp_path / "checkpoints", episodes=2, resume=True)
    train(config, tmp_path / "one", episodes=killed_at + 2)
    _assert_same_run(tmp_path / "one", tmp_path / "checkpoints")


def test_verify_resume_exactness_passes(in_tmp: Path) -> None:
    write_config(in_tmp / "exp.yaml", qca_config())
    result = runner.invoke(app, ["verify", "--resume-exactness", "--config", "exp.yaml", "--episodes", "4"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "qca: exact\n"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"architecture": "deep_qca"},
            "agents.qca.kwargs.architecture: 'deep_qca' is not an architecture of atheria/qca (known: mlp, unet)",
        ),
        ({"grid_size": 9}, "agents.qca.kwargs.grid_size: the unet architecture needs a multiple of 2, got 9"),
        ({"d_state": 0}, "agents.qca.kwargs.d_state: must be a positive integer, got 0"),
        ({"grid": 8}, "agents.qca.kwargs: atheria/qca does not accept 'grid' (did you mean 'grid_size'? accepted: "),
    ],
)
def test_a_bad_kwarg_is_one_line_and_writes_nothing(in_tmp: Path, kwargs: dict[str, Any], message: str) -> None:
    write_config(in_tmp / "exp.yaml", qca_config(**kwargs))
    result = runner.invoke(app, ["train", "--config", "exp.yaml", "--episodes", "1"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("atheria: error: " + message) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output and listing(in_tmp) == ["exp.yaml"]


def _field(density: torch.Tensor) -> torch.Tensor:
    """A ``[1, 2, H, W]`` channel-layout field (d_state 1) whose density is ``density``."""
    return torch.stack([density.sqrt(), torch.zeros_like(density)]).unsqueeze(0)


def test_the_scores_are_the_documented_formulas() -> None:
    uniform = _field(torch.full((4, 4), 0.25))
    checkerboard = _field((torch.arange(4)[:, None] + torch.arange(4)[None, :]).remainder(2).float())
    stripe = torch.zeros(4, 4)
    stripe[:, 0] = 1.0
    values = {name: float(value) for name, value in scores(uniform, uniform).items()}
    assert values == {"survival": 1.0, "symmetry": 1.0, "complexity": 0.0}
    assert float(scores(uniform, checkerboard)["complexity"]) == 1.0
    assert float(scores(uniform, checkerboard)["survival"]) == 0.0  # mass 8 from 4: doubled
    assert float(scores(uniform, _field(torch.full((4, 4), 0.125)))["survival"]) == 0.5  # half the mass kept
    assert float(scores(uniform, _field(stripe))["symmetry"]) == 0.0  # column 0 vs its mirror, column 3
    assert float(scores(uniform, torch.zeros(1, 2, 4, 4))["survival"]) == 0.0  # died out


def test_the_noise_follows_its_curriculum() -> None:
    trainer = QCATrainer(CONTEXT, **{**TINY, "noise_max": 0.1, "noise_warmup": 4})
    assert [noise_level(trainer.settings, episode) for episode in (1, 3, 5, 9)] == [0.0, 0.05, 0.1, 0.1]
    assert noise_level(QCATrainer(CONTEXT, **{**TINY, "noise_warmup": 0}).settings, 1) == 0.05
    # Drawn from the trainer's own generator: the global one is left alone.
    before = torch.random.get_rng_state()
    for episode in (1, 2, 3):
        values = trainer.train_episode(episode)
    assert values["noise"] == 0.05 and torch.equal(torch.random.get_rng_state(), before)


def test_the_exported_step_is_the_training_step_without_noise_and_scripts() -> None:
    trainer = QCATrainer(CONTEXT, **{**TINY, "noise_max": 0.0})
    for episode in (1, 2):
        trainer.train_episode(episode)
    module, (example,) = trainer.export_module()
    assert isinstance(module, QCAStep) and not module.training
    assert example.dtype == torch.float32 and example.shape == (1, 4, 8, 8)
    assert torch.equal(channels_to_complex(example)[0], trainer.psi)
    assert torch.equal(complex_to_channels(trainer.psi).unsqueeze(0), example)

    # The next episode's rollout (before its optimizer step) is qca_steps of this very module from psi.
    with torch.no_grad():
        expected = example
        for _ in range(TINY["qca_steps"]):
            expected = module(expected)
    trainer.train_episode(3)
    assert torch.equal(channels_to_complex(expected)[0], trainer.psi)
    with torch.no_grad():
        for exported in (
            torch.jit.script(module),
            torch.jit.trace(module, (example,)),
            torch.export.export(module, (example,)).module(),
        ):
            assert torch.equal(exported(example), module(example))


def test_atheria_export_writes_the_update_step_a_native_engine_loads(in_tmp: Path) -> None:
    write_config(in_tmp / "exp.yaml", qca_config())
    assert runner.invoke(app, ["train", "--config", "exp.yaml", "--episodes", "2"]).exit_code == 0
    result = runner.invoke(app, ["export", "qca", "--config", "exp.yaml", "--format", "torchscript"])
    assert result.exit_code == 0, result.output
    folder = agent_dir(in_tmp / "checkpoints", "qca")
    scripted = torch.jit.load(folder / "model_jit.pt")
    # Three steps of the file from the checkpoint's psi are three steps of the trainer's own module.
    trainer = QCATrainer(CONTEXT, **TINY)
    trainer.load_state_dict(last_payload(in_tmp / "checkpoints", "qca")["state"])
    module, (state,) = trainer.export_module()
    expected = state
    with torch.no_grad():
        for _ in range(3):
            state, expected = scripted(state), module(expected)
    assert torch.equal(state, expected) and state.shape == (1, 4, 8, 8)


def test_snapshot_is_the_field_and_its_step() -> None:
    trainer = QCATrainer(CONTEXT, **TINY)
    trainer.train_episode(1)
    snapshot = trainer.snapshot()
    assert sorted(snapshot) == ["psi", "step"] and int(snapshot["step"]) == 3
    assert torch.equal(snapshot["psi"], trainer.psi) and snapshot["psi"] is not trainer.psi


def test_train_snapshots_persist_the_field_and_its_step(tmp_path: Path) -> None:
    config = {**qca_config(), "train": {"snapshots": {"every": 2}}}
    train(config, tmp_path, episodes=4)
    folder = agent_dir(tmp_path, "qca")
    assert listing(folder / "snapshots") == ["snapshot_0002.pt", "snapshot_0004.pt"]
    snapshot = torch.load(folder / "snapshots" / "snapshot_0004.pt", weights_only=True)["snapshot"]
    state = last_payload(tmp_path, "qca")["state"]
    assert torch.equal(snapshot["psi"], state["psi"]) and int(snapshot["step"]) == state["step"] == 4 * 3


def test_the_shipped_config_trains_the_built_in_qca() -> None:
    config = load_config(REPOSITORY / "configs" / "qca.yaml")
    agent = config.agents["qca"]
    assert agent.trainer == "atheria/qca" and not config.train.allow_import
    assert config.train.keep is not None and (config.train.keep.best, config.train.keep.metric) == (5, "combined_metric")
    assert config.train.max_hours is not None and config.train.snapshots is not None
    QCATrainer(CONTEXT, **(agent.kwargs or {}))  # its kwargs are the trainer's
