"""The AOTInductor format, and examples/cpp: a C++ program that runs the TorchScript and AOTI exports.

One tiny run (PPO, net_arch [8], VecNormalize on Pendulum: normalization folded in and actions
rescaled), exported once per format; the C++ consumer is built once per session by the
``cpp_program`` fixture (tests/integration/conftest.py).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import atheria_cli
from atheria_cli.cli import app
from tests.conftest import tiny_config, write_config

pytestmark = pytest.mark.integration
runner = CliRunner()

AGENT = {"hyperparams": {"n_steps": 32, "batch_size": 16, "n_epochs": 2, "policy_kwargs": {"net_arch": [8]}}}
ENV = {"id": "Pendulum-v1", "max_episode_steps": 50, "normalize": True}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cpp")
    config = write_config(root / "c.yaml", tiny_config({"PPO": AGENT}, env=ENV, checkpoints_dir=str(root / "checkpoints")))
    result = runner.invoke(app, ["train", "--config", str(config), "--episodes", "1"])
    assert result.exit_code == 0, result.output
    return config


@pytest.fixture(scope="module")
def exports(run: Path) -> dict[str, Path]:
    """The run's policy as TorchScript and as an AOTInductor package (the one AOTI compile of the suite)."""
    from atheria_cli.deploy.formats import aoti
    from atheria_cli.errors import UsageError

    try:
        aoti.require()
    except UsageError as exc:
        pytest.skip(f"the aoti format cannot compile here: {exc.message}")
    folder = run.parent / "checkpoints" / "test" / "PPO"
    for format_name in ("torchscript", "aoti"):
        result = runner.invoke(app, ["export", "PPO", "--config", str(run), "--format", format_name])
        assert result.exit_code == 0, result.output
    return {"torchscript": folder / "model_jit.pt", "aoti": folder / "model_aoti.pt2"}


@pytest.fixture(scope="module")
def consumer(cpp_program: Callable[[str], Path]) -> Path:
    return cpp_program("atheria_policy")


def test_aoti_export_verifies_and_evaluates_like_the_checkpoint(run: Path, exports: dict[str, Path]) -> None:
    package = exports["aoti"]
    side = json.loads(package.with_suffix(".json").read_text())
    assert (side["format"], side["device"], side["verification"]["samples"]) == ("aoti", "cpu", 256)
    assert side["verification"]["max_abs_diff"] <= 1e-5
    common = ["eval", "PPO", "--config", str(run), "--episodes", "2", "--seed", "3", "--json"]
    from_checkpoint, from_package = runner.invoke(app, common), runner.invoke(app, [*common, "--export", str(package)])
    assert from_checkpoint.exit_code == 0 and from_package.exit_code == 0, from_checkpoint.output + from_package.output
    a, b = json.loads(from_checkpoint.stdout), json.loads(from_package.stdout)
    assert [e["length"] for e in a["episodes"]] == [e["length"] for e in b["episodes"]]
    assert a["summary"]["reward"]["mean"] == pytest.approx(b["summary"]["reward"]["mean"], rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("kind", ["torchscript", "aoti"])
def test_cpp_consumer_matches_predict(consumer: Path, exports: dict[str, Path], kind: str) -> None:
    model = atheria_cli.load_agent(exports[kind].parent / "episode_0001.pt")
    space = model.observation_space
    space.seed(11)
    observations = np.stack([space.sample() for _ in range(64)]).astype(np.float32)
    lines = "\n".join(" ".join(repr(float(value)) for value in row) for row in observations) + "\n"
    completed = subprocess.run(
        [str(consumer), kind, str(exports[kind]), str(observations.shape[1])],
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    actions = np.array([[float(value) for value in line.split()] for line in completed.stdout.splitlines()])
    expected, _ = model.predict(model.get_env().normalize_obs(observations), deterministic=True)
    assert actions.shape == expected.shape == (64, 1)
    assert np.allclose(actions, expected, atol=1e-5, rtol=0)
    assert np.ptp(expected) > 0  # the observations reach different actions: the comparison can fail


def test_aoti_without_a_compiler_is_refused(run: Path, tmp_path: Path) -> None:
    from torch._inductor import config

    target = tmp_path / "policy.pt2"
    # torch's own patch, not monkeypatch: cxx is not in the config proxy's __dict__, so
    # monkeypatch's undo deletes it, and config.cpp.cxx then "does not exist" for every later
    # test of the session that compiles (tests/integration/test_qca_engine.py's AOTI test).
    with config.patch({"cpp.cxx": (None, "no-such-c++")}):
        result = runner.invoke(app, ["export", "PPO", "--config", str(run), "--format", "aoti", "--output", str(target)])
    assert result.exit_code == 2
    assert result.stderr == (
        "atheria: error: --format aoti compiles C++ and needs a C++ compiler (no-such-c++ not found): install g++ or set CXX\n"
    )
    assert list(tmp_path.iterdir()) == []
