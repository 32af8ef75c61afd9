"""A user's trainer evaluated (``train.eval`` through its ``evaluate``, ``atheria eval``) and exported
(its ``export_module`` in each format), on tiny real runs of tests.trainers.Shuffler."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import atheria_cli
from atheria_cli.cli import app
from atheria_cli.run.formats import read_history
from tests.conftest import write_config
from tests.integration.helpers import agent_dir, assert_same_tree, episodes, last_payload, train

pytestmark = pytest.mark.integration

runner = CliRunner()
METRICS = [{"name": "loss", "goal": "min"}, "lr"]
EVAL = {"every": 2, "episodes": 3, "seed": 5}
ONNX_MISSING = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
needs_onnx = pytest.mark.skipif(bool(ONNX_MISSING), reason=f"the onnx extra is not installed ({', '.join(ONNX_MISSING)} missing)")


def trainer_config(trainer: str = "tests.trainers:Shuffler", evaluation: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "experiment": "test",
        "seed": 7,
        "device": "cpu",
        "agents": {"fit": {"trainer": trainer, "kwargs": {"hidden": 8}, "metrics": METRICS}},
        "train": {"allow_import": True, **({"eval": evaluation} if evaluation else {})},
    }


def _evaluations(root: Path) -> list[dict[str, Any]]:
    history = read_history(agent_dir(root, "fit") / "history.json")
    return [item.model_dump(exclude={"seconds"}) for item in history.evaluations]


def _records(root: Path) -> list[dict[str, Any]]:
    return [record.model_dump(exclude={"seconds"}) for record in episodes(root, "fit")]


def test_train_eval_records_evaluate_and_trains_as_without_it(tmp_path: Path) -> None:
    # Shuffler.evaluate draws from torch's global generator, which dropout in training draws
    # from too: only a restored generator keeps the two runs' training identical.
    evaluated = trainer_config(evaluation=EVAL)
    observer = train(evaluated, tmp_path / "evaluated", episodes=4)
    train(trainer_config(), tmp_path / "plain", episodes=4)
    assert observer.warnings == []
    assert _records(tmp_path / "evaluated") == _records(tmp_path / "plain")
    left, right = last_payload(tmp_path / "evaluated", "fit"), last_payload(tmp_path / "plain", "fit")
    assert_same_tree(left["state"], right["state"], "state")
    assert_same_tree(left["rng"], right["rng"], "rng")

    records = _evaluations(tmp_path / "evaluated")
    assert [(item["episode"], item["timesteps"], item["episodes"], item["seeds"]) for item in records] == [
        (2, 2, 3, [5]),
        (4, 4, 3, [5]),
    ]
    for item in records:  # the main metric (a loss, goal min) and, negated, the reward; lr was not returned
        assert set(item["metrics"]) == {"loss"}
        loss = item["metrics"]["loss"]
        assert loss["mean"] > 0 and loss["std"] is None and item["reward"] == {"mean": -loss["mean"], "std": None}
    assert records[0]["metrics"]["loss"]["mean"] != records[1]["metrics"]["loss"]["mean"]
    assert [name for name, _ in observer.evaluations] == ["fit", "fit"]


def test_an_evaluating_trainer_resumes_identically(tmp_path: Path) -> None:
    config = trainer_config(evaluation=EVAL)
    train(config, tmp_path / "one", episodes=4)
    train(config, tmp_path / "split", episodes=3)
    train(config, tmp_path / "split", episodes=1, resume=True)
    assert _evaluations(tmp_path / "one") == _evaluations(tmp_path / "split")
    assert_same_tree(last_payload(tmp_path / "one", "fit")["state"], last_payload(tmp_path / "split", "fit")["state"])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shuffler, 2 episodes, evaluated after each; the config at ``<root>/exp.yaml``."""
    root = tmp_path_factory.mktemp("trainer")
    config = {**trainer_config(evaluation={**EVAL, "every": 1}), "checkpoints_dir": str(root / "checkpoints")}
    path = write_config(root / "exp.yaml", config)
    result = runner.invoke(app, ["train", "--config", str(path), "--episodes", "2"])
    assert result.exit_code == 0, result.output
    return path


def invoke(config: Path, *args: str) -> Any:
    return runner.invoke(app, [*args, "--config", str(config)])


def test_atheria_eval_of_a_checkpoint_is_its_train_eval_record(run: Path) -> None:
    history = read_history(run.parent / "checkpoints/test/fit/history.json")
    recorded = {item.episode: item.metrics["loss"].mean for item in history.evaluations}
    for checkpoint in ("1", "2"):
        result = invoke(run, "eval", "fit", "--checkpoint", checkpoint, "--json")  # train.eval's episodes and seed
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert document["source"] == f"episode_000{checkpoint}.pt" and document["episodes"] == []
        assert document["summary"]["loss"] == {"mean": recorded[int(checkpoint)], "std": None}
        assert document["summary"]["reward"] == {"mean": -recorded[int(checkpoint)], "std": None}
        assert document["summary"]["lr"] == {"mean": None, "std": None}
    other = json.loads(invoke(run, "eval", "fit", "--episodes", "1", "--seed", "9", "--json").stdout)
    assert other["summary"]["loss"]["mean"] != recorded[2]  # another held-out set


def test_atheria_eval_table_of_a_trainer(run: Path) -> None:
    result = invoke(run, "eval", "fit", "--episodes", "2", "--seed", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "fit (episode_0002.pt): evaluate(episodes=2, seed=3) of its trainer"
    rows = {cells[1].strip(): cells[2].strip() for line in lines if len(cells := line.split("│")) == 4}
    assert set(rows) == {"reward", "loss", "lr"} and rows["lr"] == "–"  # evaluate returns no lr
    assert float(rows["reward"]) == -float(rows["loss"]) and "±" not in rows["loss"]  # one value: no spread


def eager(run: Path, checkpoint: str = "episode_0002.pt") -> tuple[torch.nn.Module, torch.Tensor]:
    """The checkpoint's module, eager, and inputs it was not verified on (other values, same shape)."""
    user = atheria_cli.load_agent(run.parent / "checkpoints/test/fit" / checkpoint)
    module, (example,) = user.export_module()
    return module.eval(), torch.randn(example.shape, generator=torch.Generator().manual_seed(99))


@pytest.mark.parametrize(
    "format_name, file",
    [
        ("torchscript", "model_jit.pt"),
        ("exported", "model_exported.pt2"),
        pytest.param("onnx", "model_onnx.onnx", marks=needs_onnx),
    ],
)
def test_export_writes_the_trainer_module_verified_against_eager(run: Path, format_name: str, file: str) -> None:
    folder = run.parent / "checkpoints/test/fit"
    result = invoke(run, "export", "fit", "--format", format_name)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"fit: {folder / file} ({format_name}) from episode_0002.pt, verified on 8 sampled inputs, max |difference| "
    )
    side = json.loads((folder / file).with_suffix(".json").read_text())
    metadata = json.loads((folder / "metadata.json").read_text())
    assert (side["schema_version"], side["format"], side["file"], side["algo"]) == (3, format_name, file, "torch")
    assert (side["source_checkpoint"], side["source_sha256"]) == ("episode_0002.pt", metadata["checkpoints"][-1]["sha256"])
    assert (side["observation_space"], side["action_space"], side["trainer"]) == (None, None, "tests.trainers:Shuffler")
    assert side["inputs"] == [{"name": "input", "dtype": "float32", "shape": [8, 4]}]
    assert side["outputs"] == [{"name": "output", "dtype": "float32", "shape": [8, 1]}]
    assert side["verification"]["samples"] == 8 and side["verification"]["max_abs_diff"] <= 1e-5

    module, inputs = eager(run)
    with torch.no_grad():
        expected = module(inputs).numpy()
    assert np.allclose(_run_export(format_name, folder / file, inputs.numpy()), expected, atol=1e-5, rtol=0)


def _run_export(format_name: str, path: Path, inputs: np.ndarray) -> np.ndarray:
    """The exported file loaded by its own runtime, without atheria."""
    if format_name == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (output,) = session.run(None, {"input": inputs})
        return np.asarray(output)
    loaded = torch.jit.load(str(path)) if format_name == "torchscript" else torch.export.load(str(path)).module()
    with torch.no_grad():
        return loaded(torch.as_tensor(inputs)).numpy()


BLOCKING_LOADER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"atheria_cli", "tests"}:
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
import torch
module = torch.jit.load(sys.argv[1])
print(tuple(module(torch.zeros(8, 4)).shape))
"""


def test_the_torchscript_module_runs_without_atheria_or_the_trainer(run: Path, tmp_path: Path) -> None:
    target = tmp_path / "step.pt"
    assert invoke(run, "export", "fit", "--format", "torchscript", "--output", str(target)).exit_code == 0
    completed = subprocess.run([sys.executable, "-c", BLOCKING_LOADER, str(target)], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "(8, 1)"


def test_export_of_another_checkpoint(run: Path, tmp_path: Path) -> None:
    target = tmp_path / "first.pt2"
    result = invoke(run, "export", "fit", "--format", "exported", "--checkpoint", "1", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"fit: {target} (exported) from episode_0001.pt, verified on 8 sampled inputs")
    module, inputs = eager(run, "episode_0001.pt")
    with torch.no_grad():
        assert torch.allclose(torch.export.load(str(target)).module()(inputs), module(inputs), atol=1e-5, rtol=0)
        assert not torch.allclose(module(inputs), eager(run)[0](inputs))  # episode 2 trained on
