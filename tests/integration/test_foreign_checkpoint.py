"""``train --from-checkpoint FILE.pth --agent NAME`` for a trainer agent, FILE another program's
checkpoint (the seeds' ``model_state_dict``, ``optimizer_state_dict``, ``scheduler_state_dict``,
``episode``): read weights-only, a new run recorded not exact with ``adopted_from``; a file that
needs pickle, or does not fit, is refused with one line and nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from atheria_cli.cli import app
from atheria_cli.run.store import file_sha256
from atheria_cli.trainers.custom import TrainerContext
from atheria_cli.trainers.qca.trainer import QCATrainer
from tests.conftest import listing, write_config
from tests.integration.helpers import agent_dir, episodes

pytestmark = pytest.mark.integration

runner = CliRunner()
TINY = {"grid_size": 8, "d_state": 2, "hidden_channels": 4, "qca_steps": 3, "lr": 0.01, "noise_warmup": 2}
METRICS = [{"name": "combined_metric", "goal": "max"}, "survival", "symmetry", "complexity"]


def config(trainer: str = "atheria/qca", **kwargs: Any) -> dict[str, Any]:
    return {
        "experiment": "test",
        "checkpoints_dir": "checkpoints",
        "seed": 3,
        "device": "cpu",
        "agents": {"qca": {"trainer": trainer, "kwargs": {**TINY, **kwargs}, "metrics": METRICS}},
        "train": {"allow_import": True},
    }


def seeds_checkpoint(path: Path, hidden_channels: int = 4, **extra: Any) -> Path:
    """What the seeds' QC_Trainer_v4 saves, from a QCA trained elsewhere for two episodes."""
    other = QCATrainer(TrainerContext("cpu", 1, "elsewhere"), **{**TINY, "hidden_channels": hidden_channels})
    for episode in (1, 2):
        other.train_episode(episode)
    checkpoint = {
        "episode": 7,
        "model_state_dict": other.model.state_dict(),
        "optimizer_state_dict": other.optimizer.state_dict(),
        "scheduler_state_dict": other.scheduler.state_dict(),
        "loss": 0.3,
        "metrics": {"survival": 0.9, "symmetry": 0.5, "complexity": 0.2},
        "combined_metric": 0.53,
        **extra,
    }
    torch.save(checkpoint, path)
    return path


def start(*args: str) -> Any:
    return runner.invoke(app, ["train", "--config", "exp.yaml", "--agent", "qca", "--episodes", "2", *args])


def test_an_old_checkpoint_starts_a_new_run_not_exact(in_tmp: Path) -> None:
    write_config(in_tmp / "exp.yaml", config())
    legacy = seeds_checkpoint(in_tmp / "checkpoint_ep7.pth")
    result = start("--from-checkpoint", "checkpoint_ep7.pth")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        "atheria: warning: qca: starting from checkpoint_ep7.pth at episode 7 (model, optimizer, scheduler loaded); "
        "not exact: the rest of the trainer's state (its generators, its own tensors) starts fresh"
    )
    folder = agent_dir(in_tmp / "checkpoints", "qca")
    origin = {"file": "checkpoint_ep7.pth", "sha256": file_sha256(legacy), "num_timesteps": 7}
    assert json.loads((folder / "metadata.json").read_text())["adopted_from"] == origin
    (session,) = json.loads((folder / "history.json").read_text())["trainings"]
    assert (session["exact"], session["adopted_from"], session["start_timesteps"]) == (False, origin, 7)

    # The episodes go on from the file's: the first is train_episode(8) of the configured trainer
    # with the file's network, Adam and schedule loaded.
    records = episodes(in_tmp / "checkpoints", "qca")
    assert [(record.episode, record.timesteps) for record in records] == [(1, 8), (2, 9)]
    expected = QCATrainer(TrainerContext("cpu", 3, "qca"), **TINY)
    assert expected.load_foreign_checkpoint(torch.load(legacy, weights_only=True)) == ["model", "optimizer", "scheduler"]
    values = expected.train_episode(8)
    assert records[0].metrics == {metric: values[metric] for metric in ("combined_metric", "survival", "symmetry", "complexity")}


def _refused(in_tmp: Path, *args: str) -> str:
    result = start(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stderr.count("\n") == 1, result.stderr
    assert "checkpoints" not in listing(in_tmp)  # nothing written
    return result.stderr.strip()


def test_a_checkpoint_that_needs_pickle_is_refused(in_tmp: Path) -> None:
    write_config(in_tmp / "exp.yaml", config())
    seeds_checkpoint(in_tmp / "pickled.pth", metrics={"survival": np.float64(0.9)})
    assert _refused(in_tmp, "--from-checkpoint", "pickled.pth") == (
        "atheria: error: --from-checkpoint: pickled.pth needs pickle to load (it holds a numpy._core.multiarray.scalar), "
        "and unpickling runs code from the file: atheria loads checkpoints weights-only; load it where it was written "
        "and save its state dicts with tensors and plain values only"
    )


def test_a_checkpoint_of_another_network_is_refused(in_tmp: Path) -> None:
    write_config(in_tmp / "exp.yaml", config())
    seeds_checkpoint(in_tmp / "wide.pth", hidden_channels=8)
    assert _refused(in_tmp, "--from-checkpoint", "wide.pth").startswith(
        "atheria: error: --from-checkpoint: wide.pth does not fit agents.qca (atheria/qca): Error(s) in loading state_dict"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a torch file", "atheria: error: --from-checkpoint: junk.pth is not a readable torch checkpoint ("),
        (None, "atheria: error: --from-checkpoint: junk.pth holds no state dicts (a dict with model_state_dict, ...)"),
    ],
)
def test_a_file_that_is_no_checkpoint_is_refused(in_tmp: Path, content: bytes | None, message: str) -> None:
    write_config(in_tmp / "exp.yaml", config())
    if content is None:
        torch.save({"weights": torch.zeros(2)}, in_tmp / "junk.pth")
    else:
        (in_tmp / "junk.pth").write_bytes(content)
    assert _refused(in_tmp, "--from-checkpoint", "junk.pth").startswith(message)


def test_a_trainer_without_load_foreign_checkpoint_is_refused(in_tmp: Path) -> None:
    shuffler = config("tests.trainers:Shuffler")
    shuffler["agents"]["qca"]["kwargs"] = {"hidden": 8}
    shuffler["agents"]["qca"]["metrics"] = [{"name": "loss", "goal": "min"}]
    write_config(in_tmp / "exp.yaml", shuffler)
    seeds_checkpoint(in_tmp / "old.pth")
    assert _refused(in_tmp, "--from-checkpoint", "old.pth") == (
        "atheria: error: agents.qca: tests.trainers:Shuffler cannot start from another program's checkpoint: it has no "
        "load_foreign_checkpoint() (atheria_cli.trainers.stateful.StatefulTrainer has one)"
    )


def test_resume_with_an_old_checkpoint_is_refused(in_tmp: Path) -> None:
    write_config(in_tmp / "exp.yaml", config())
    seeds_checkpoint(in_tmp / "old.pth")
    assert _refused(in_tmp, "--from-checkpoint", "old.pth", "--resume") == (
        "atheria: error: --from-checkpoint and --resume cannot be combined: it starts a new run (use --fresh to replace it)"
    )


def test_an_unknown_kwarg_beside_an_old_checkpoint_is_one_line_before_the_class_runs(in_tmp: Path) -> None:
    # The class was built from the file's planning before its kwargs were checked: a TypeError traceback.
    write_config(in_tmp / "exp.yaml", config(hiden_channels=4))
    seeds_checkpoint(in_tmp / "old.pth")
    result = start("--from-checkpoint", "old.pth")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("atheria: error: agents.qca.kwargs: ")
    assert "Traceback" not in result.output and listing(in_tmp) == ["exp.yaml", "old.pth"]


def test_from_sb3_beside_an_old_checkpoint_is_refused_not_ignored(in_tmp: Path) -> None:
    write_config(in_tmp / "exp.yaml", config())
    seeds_checkpoint(in_tmp / "old.pth")
    (in_tmp / "model.zip").write_bytes(b"")
    result = start("--from-checkpoint", "old.pth", "--from-sb3", "model.zip")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "atheria: error: --from-sb3 and --from-checkpoint both name where a new run starts: give one"
    )
    assert listing(in_tmp) == ["exp.yaml", "model.zip", "old.pth"]
