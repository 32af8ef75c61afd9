"""`atheria eval --jit/--export` refuse a damaged export with exit 2 and one line naming the file.

No training: the sidecar and the file are checked before anything is loaded, so hand-made files
(an exported file of arbitrary bytes with a correct or damaged sidecar) cover every case.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from atheria_cli.deploy.export import space_description
from tests.conftest import TINY_AGENTS, tiny_config, write_config

runner = CliRunner()
NOT_A_MODEL = b"these bytes are not a model of any format"


def sidecar_for(data: bytes, format_name: str, file: str, **changes: Any) -> dict[str, Any]:
    """A sidecar that is right in every field for Pendulum-v1 and ``data``."""
    env = gym.make("Pendulum-v1")
    document = {
        "schema_version": 2,
        "format": format_name,
        "file": file,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "device": "cpu",
        "agent": "PPO",
        "algo": "PPO",
        "observation_space": space_description(env.observation_space),
        "action_space": space_description(env.action_space),
        "input": {"dtype": "float32", "shape": ["batch", 3]},
        "observation_normalization": False,
        "source_checkpoint": "episode_0001.pt",
        "source_sha256": "0" * 64,
        "verification": None,
        "versions": {"torch": "2.13.0"},
        "exported": "2026-11-23T21:00:00+00:00",
    }
    env.close()
    return {**document, **changes}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "c.yaml", tiny_config({"PPO": TINY_AGENTS["PPO"]}, checkpoints_dir=str(tmp_path / "runs")))


def export_pair(
    folder: Path, name: str, format_name: str, sidecar: dict[str, Any] | str | None, data: bytes = NOT_A_MODEL
) -> Path:
    exported = folder / name
    exported.write_bytes(data)
    if sidecar is not None:
        exported.with_suffix(".json").write_text(sidecar if isinstance(sidecar, str) else json.dumps(sidecar), encoding="utf-8")
    return exported


def eval_error(config: Path, option: str, exported: Path) -> str:
    result = runner.invoke(app, ["eval", "PPO", "--config", str(config), "--episodes", "1", option, str(exported)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    return result.stderr


@pytest.mark.parametrize(
    "option, name, format_name", [("--jit", "model_jit.pt", "torchscript"), ("--export", "model_exported.pt2", "exported")]
)
def test_missing_sidecar(config: Path, tmp_path: Path, option: str, name: str, format_name: str) -> None:
    exported = export_pair(tmp_path, name, format_name, None)
    side = exported.with_suffix(".json")
    assert eval_error(config, option, exported) == (
        f"atheria: error: {side}: not found: {name} has no sidecar (atheria export writes it beside the file); re-export it\n"
    )


@pytest.mark.parametrize(
    "option, name, format_name", [("--jit", "model_jit.pt", "torchscript"), ("--export", "model_onnx.onnx", "onnx")]
)
def test_truncated_sidecar(config: Path, tmp_path: Path, option: str, name: str, format_name: str) -> None:
    exported = export_pair(tmp_path, name, format_name, json.dumps(sidecar_for(NOT_A_MODEL, format_name, name))[:33])
    side = exported.with_suffix(".json")
    assert eval_error(config, option, exported) == (
        f"atheria: error: {side}: not a readable JSON sidecar "
        f"(Unterminated string starting at: line 1 column 33 (char 32)); re-export {name}\n"
    )


@pytest.mark.parametrize(
    "option, name, format_name", [("--jit", "model_jit.pt", "torchscript"), ("--export", "model_aoti.pt2", "aoti")]
)
def test_sidecar_of_the_wrong_schema(config: Path, tmp_path: Path, option: str, name: str, format_name: str) -> None:
    exported = export_pair(tmp_path, name, format_name, sidecar_for(NOT_A_MODEL, format_name, name, schema_version=7))
    assert eval_error(config, option, exported) == (
        f"atheria: error: {exported.with_suffix('.json')}: "
        "schema_version 7 is newer than this atheria reads (3); upgrade atheria\n"
    )
    export_pair(tmp_path, name, format_name, {"schema_version": 2, "format": format_name})
    assert eval_error(config, option, exported) == (
        f"atheria: error: {exported.with_suffix('.json')}: does not match the export sidecar schema (file: Field required)\n"
    )


@pytest.mark.parametrize(
    "option, name, format_name", [("--jit", "model_jit.pt", "torchscript"), ("--export", "model_exported.pt2", "exported")]
)
def test_file_that_does_not_match_its_sidecar(config: Path, tmp_path: Path, option: str, name: str, format_name: str) -> None:
    exported = export_pair(tmp_path, name, format_name, sidecar_for(b"the bytes that were exported", format_name, name))
    assert eval_error(config, option, exported) == (
        f"atheria: error: {exported}: sha256 differs from the one in {exported.with_suffix('.json').name}: "
        "the file changed after export; re-export it\n"
    )


def test_jit_refuses_another_format(config: Path, tmp_path: Path) -> None:
    exported = export_pair(tmp_path, "model_exported.pt2", "exported", sidecar_for(NOT_A_MODEL, "exported", "model_exported.pt2"))
    assert eval_error(config, "--jit", exported) == (
        f"atheria: error: --jit: {exported} is not TorchScript (its sidecar says format 'exported'); evaluate it with --export\n"
    )


@pytest.mark.parametrize(
    "option, name, format_name, what",
    [
        ("--jit", "model_jit.pt", "torchscript", "is not a TorchScript file ("),
        ("--export", "model_exported.pt2", "exported", "is not a torch.export program ("),
        ("--export", "model_aoti.pt2", "aoti", "is not an AOTInductor package ("),
        ("--export", "model_sb3.zip", "sb3", "is not an SB3 PPO zip ("),
    ],
)
def test_file_of_another_kind_behind_a_good_sidecar(
    config: Path, tmp_path: Path, option: str, name: str, format_name: str, what: str
) -> None:
    exported = export_pair(tmp_path, name, format_name, sidecar_for(NOT_A_MODEL, format_name, name))
    assert eval_error(config, option, exported).startswith(f"atheria: error: {option}: {exported} {what}")


def test_jit_and_export_together_are_refused(config: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "PPO", "--config", str(config), "--jit", "a.pt", "--export", "b.pt2"])
    assert result.exit_code == 2
    assert result.stderr == "atheria: error: --jit and --export both name a file to evaluate: give one\n"


def test_unknown_format_is_refused(config: Path) -> None:
    result = runner.invoke(app, ["export", "PPO", "--config", str(config), "--format", "pickle"])
    assert result.exit_code == 2
    assert result.stderr == "atheria: error: --format must be one of torchscript, exported, aoti, onnx, sb3 (got 'pickle')\n"
