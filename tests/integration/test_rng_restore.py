"""A checkpoint's global generators are restored, or the resume says why not: never skipped in
silence (Accelerate skips a failed RNG restore quietly), never blocking a run that moved machine. Mocked: only the GPU, which this machine
does not have: a checkpoint "taken on CUDA" carries CPU generator bytes as its CUDA states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from atheria_cli.agents import rng
from atheria_cli.cli import app
from tests.conftest import write_config

pytestmark = pytest.mark.integration
runner = CliRunner()


def _with_cuda_states(devices: int) -> Any:
    real = rng.capture_global_rng

    def capture() -> dict[str, Any]:
        return {**real(), "cuda": [torch.get_rng_state() for _ in range(devices)]}

    return capture


@pytest.fixture
def cuda_run(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A trainer run whose checkpoint holds the generators of two CUDA devices."""
    config = {
        "experiment": "test",
        "checkpoints_dir": "checkpoints",
        "device": "cpu",
        "agents": {"fit": {"trainer": "tests.trainers:Shuffler", "metrics": ["loss"]}},
        "train": {"allow_import": True},
    }
    path = write_config(in_tmp / "exp.yaml", config)
    with monkeypatch.context() as patch:
        patch.setattr(rng, "capture_global_rng", _with_cuda_states(2))
        assert runner.invoke(app, ["train", "--config", str(path), "--episodes", "1"]).exit_code == 0
    return path


def test_cuda_generators_of_other_devices_are_a_warning_not_a_silence(cuda_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # get_rng_state_all saves every visible device: a run moved from a 2-GPU machine to a
    # one-GPU worker goes on, saying it is not bit-identical (it was skipped in silence).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    result = runner.invoke(app, ["train", "--config", str(cuda_run), "--episodes", "1", "--resume"])
    assert result.exit_code == 0, result.output
    assert (
        "fit: the checkpoint holds the generators of 2 CUDA device(s), this process sees 1 (make as many visible, "
        "CUDA_VISIBLE_DEVICES, to continue exactly); the resumed run will not be bit-identical"
    ) in result.stderr


def test_a_gpu_run_continued_without_cuda_says_it_is_not_exact(cuda_run: Path) -> None:
    result = runner.invoke(app, ["train", "--config", str(cuda_run), "--episodes", "1", "--resume"])
    assert result.exit_code == 0, result.output
    assert (
        "fit: the checkpoint holds the generators of 2 CUDA device(s) and this process has no CUDA; "
        "the resumed run will not be bit-identical"
    ) in result.stderr


def test_cuda_generators_of_as_many_devices_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    restored: list[list[torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    state = _with_cuda_states(2)()
    assert rng.restore_global_rng(state) is None
    assert len(restored) == 1 and all(torch.equal(a, b) for a, b in zip(restored[0], state["cuda"], strict=True))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    note = rng.restore_global_rng(state)
    assert note is not None and "2 CUDA device(s), this process sees 4" in note and len(restored) == 1
