"""``train.eval``, ``atheria eval`` and ``atheria export`` of users' trainers through the CLI: the
exact refusals (exit 2, one line, nothing written) and the exact files an export writes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import listing, write_config

pytestmark = pytest.mark.integration

runner = CliRunner()
TRAINERS = {
    "shuffler": "tests.trainers:Shuffler",
    "minimal": "tests.trainers:Minimal",
    "dropout": "tests.trainers:ExportsDropout",
}
RUN_FILES = ["config.json", "episode_0001.pt", "episode_0002.pt", "episodes.jsonl", "history.json", "metadata.json"]
needs_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("onnx", "onnxscript", "onnxruntime")),
    reason="the onnx extra is not installed",
)


def config_of(name: str, root: Path, **train: Any) -> dict[str, Any]:
    agent = {"trainer": TRAINERS[name], "metrics": [{"name": "loss", "goal": "min"}]}
    return {
        "experiment": name,
        "seed": 7,
        "device": "cpu",
        "checkpoints_dir": str(root / "checkpoints"),
        "agents": {"fit": agent},
        "train": {"allow_import": True, **train},
    }


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two episodes of each trainer, its config at ``<root>/<name>.yaml``."""
    folder = tmp_path_factory.mktemp("deploy")
    for name in TRAINERS:
        path = write_config(folder / f"{name}.yaml", config_of(name, folder))
        result = runner.invoke(app, ["train", "--config", str(path), "--episodes", "2"])
        assert result.exit_code == 0, result.output
    return folder


def invoke(root: Path, name: str, *args: str) -> Any:
    return runner.invoke(app, [*args, "--config", str(root / f"{name}.yaml")])


def run_files(root: Path, name: str) -> list[str]:
    return listing(root / "checkpoints" / name / "fit")


def refused(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    return str(result.stderr)


def test_train_eval_of_a_trainer_without_evaluate_is_refused_at_planning(tmp_path: Path) -> None:
    path = write_config(tmp_path / "exp.yaml", config_of("minimal", tmp_path, eval={"every": 1}))
    result = runner.invoke(app, ["train", "--config", str(path), "--episodes", "1"])
    assert refused(result) == (
        "atheria: error: train.eval: agents.fit: tests.trainers:Minimal has no evaluate(episodes, seed) method "
        "to evaluate it with (docs/trainers.md)\n"
    )
    assert listing(tmp_path) == ["exp.yaml"]


def test_eval_of_a_trainer_without_evaluate_is_refused(root: Path) -> None:
    assert refused(invoke(root, "minimal", "eval", "fit")) == (
        "atheria: error: fit: episode_0002.pt: tests.trainers:Minimal has no evaluate(episodes, seed) method "
        "to evaluate it with (docs/trainers.md)\n"
    )
    assert run_files(root, "minimal") == RUN_FILES


@pytest.mark.parametrize("command", [["export", "fit", "--format", "torchscript"], ["export", "fit"], ["export-jit", "fit"]])
def test_export_of_a_trainer_without_export_module_is_refused(root: Path, command: list[str]) -> None:
    assert refused(invoke(root, "minimal", *command)) == (
        "atheria: error: fit: episode_0002.pt: tests.trainers:Minimal has no export_module() method "
        "to export it with (docs/trainers.md)\n"
    )
    assert run_files(root, "minimal") == RUN_FILES


def test_a_trainer_has_no_sb3_zip(root: Path) -> None:
    assert refused(invoke(root, "shuffler", "export", "fit", "--format", "sb3")) == (
        "atheria: error: fit: --format sb3 is a format of SB3's models; "
        "a trainer's module exports to torchscript, exported, aoti or onnx\n"
    )
    assert run_files(root, "shuffler") == RUN_FILES


def test_an_export_is_evaluated_through_its_checkpoint(root: Path) -> None:
    assert refused(invoke(root, "shuffler", "eval", "fit", "--export", "model_exported.pt2")) == (
        "atheria: error: --export: the experiment has no env to run an export in; evaluate the checkpoint: atheria eval fit\n"
    )
    assert refused(invoke(root, "shuffler", "eval", "heuristic")) == (
        "atheria: error: unknown agent 'heuristic': the experiment has fit\n"
    )


def test_a_module_no_export_reproduces_writes_nothing(root: Path) -> None:
    result = invoke(root, "dropout", "export", "fit", "--format", "torchscript")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        "atheria: error: fit: the exported torchscript module disagrees with the eager module on 8 sampled inputs "
        "(max |difference| "
    )
    assert result.stderr.endswith(" > 1e-05); nothing written\n")
    assert run_files(root, "dropout") == RUN_FILES


def test_export_writes_the_file_and_its_sidecar_only(root: Path, tmp_path: Path) -> None:
    folder = root / "checkpoints" / "shuffler" / "fit"
    result = invoke(root, "shuffler", "export", "fit", "--format", "exported", "--output", str(tmp_path / "step.pt2"))
    assert result.exit_code == 0, result.output
    assert listing(tmp_path) == ["step.json", "step.pt2"]
    assert run_files(root, "shuffler") == RUN_FILES
    result = invoke(root, "shuffler", "export-jit", "fit")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"fit: {folder / 'model_jit.pt'} (torchscript) from episode_0002.pt, verified on 8 sampled inputs, max |difference| "
    )
    assert listing(folder) == sorted([*RUN_FILES, "model_jit.json", "model_jit.pt"])


@needs_onnx
def test_export_jit_onnx_writes_both_formats_beside_the_output(root: Path, tmp_path: Path) -> None:
    result = invoke(root, "shuffler", "export-jit", "fit", "--onnx", "--output", str(tmp_path / "step.pt"))
    assert result.exit_code == 0, result.output
    assert listing(tmp_path) == ["step.json", "step.pt", "step_onnx.json", "step_onnx.onnx"]
    assert [line.split(" (")[1].split(")")[0] for line in result.stdout.splitlines()] == ["torchscript", "onnx"]


def test_with_replay_of_a_trainer_says_why_it_has_no_replay_buffer(root: Path) -> None:
    # It said "is on-policy", an SB3 agent's reason, for a trainer.
    before = run_files(root, "shuffler")
    assert refused(invoke(root, "shuffler", "export", "fit", "--format", "sb3", "--with-replay")) == (
        "atheria: error: --with-replay: fit (torch) is a trainer: its state_dict is its whole state, "
        "with no replay buffer of atheria's\n"
    )
    assert run_files(root, "shuffler") == before  # nothing written
