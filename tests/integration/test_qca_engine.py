"""examples/cpp/qca_engine.cpp: the QCA update step, exported, stepped natively in C++.

The engine is built once per session by the ``cpp_program`` fixture (tests/integration/conftest.py).
The trainer's QCA step (each architecture, seeded random weights) exported with atheria's
TorchScript format, and the step of a tiny trained run exported by ``atheria export``, step the
same psi k times in C++ and in eager Python: the states must be bitwise equal. An AOTInductor
package's must agree within float rounding."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from atheria_cli.cli import app
from atheria_cli.deploy.formats import ModuleExport, torchscript
from atheria_cli.trainers.custom import TrainerContext
from atheria_cli.trainers.qca.model import ARCHITECTURES, build_step, complex_to_channels, export_step
from atheria_cli.trainers.qca.trainer import QCATrainer
from tests.conftest import write_config
from tests.integration.helpers import agent_dir, last_payload

pytestmark = pytest.mark.integration
runner = CliRunner()

D_STATE, HIDDEN, GRID, STEPS, EVERY = 2, 8, 16, 8, 4


def trained_step(architecture: str) -> nn.Module:
    """The trainer's QCA step, exported as the trainer exports it, with seeded random weights in
    place of trained ones (a fresh step's last layer is zero: it would be the identity)."""
    step = build_step(architecture, D_STATE, HIDDEN)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in step.parameters():
            parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
    module, _ = export_step(step, initial_psi())
    return module


def initial_psi() -> torch.Tensor:
    """A complex field [d_state, H, W] like the trainer's: Gaussian parts of deviation 0.5."""
    parts = 0.5 * torch.randn(2, D_STATE, GRID, GRID, generator=torch.Generator().manual_seed(1))
    return torch.complex(parts[0], parts[1])


def initial_state() -> torch.Tensor:
    """psi as the engine reads it: float32 [1, 2*d_state, H, W], real parts then imaginary parts."""
    return complex_to_channels(initial_psi()).unsqueeze(0).contiguous()


def capture(module: nn.Module) -> ModuleExport:
    """The step as atheria's formats capture a trainer's ``export_module()``: fixed shapes."""
    return ModuleExport(module, (initial_state(),), ("x",), ("output",), dynamic_batch=False)


@pytest.fixture(scope="module")
def engine(cpp_program: Callable[[str], Path]) -> Path:
    return cpp_program("atheria_qca_engine")


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def step(request: pytest.FixtureRequest) -> nn.Module:
    return trained_step(request.param)


@pytest.fixture(scope="module")
def exported(step: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The step traced by atheria's TorchScript format, the one ``atheria export`` writes with."""
    path = tmp_path_factory.mktemp("qca") / "model_jit.pt"
    torchscript.build(capture(step), path)
    return path


@pytest.fixture
def psi(tmp_path: Path) -> Path:
    path = tmp_path / "psi.pt"
    torch.save(initial_state(), path)
    return path


def run_engine(engine: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(engine), *arguments], capture_output=True, text=True, timeout=120)


def python_trajectory(step: nn.Module, psi: torch.Tensor, steps: int) -> list[torch.Tensor]:
    states = []
    with torch.inference_mode():
        for _ in range(steps):
            psi = step(psi)
            states.append(psi)
    return states


def test_engine_steps_the_grid_exactly_as_python(engine: Path, exported: Path, step: nn.Module, psi: Path) -> None:
    final, trajectory = psi.parent / "final.pt", psi.parent / "trajectory.pt"
    # Same CPU, same thread count, same ATen kernels (the TorchScript interpreter calls them as
    # eager Python does, and CPU fusion is off by default): the states can be bitwise equal.
    threads = str(torch.get_num_threads())
    options = ["--every", str(EVERY), "--trajectory", str(trajectory), "--threads", threads]
    completed = run_engine(engine, "run", str(exported), str(psi), str(final), str(STEPS), *options)
    assert completed.returncode == 0, completed.stderr
    expected = python_trajectory(step, torch.load(psi, weights_only=True), STEPS)
    native = torch.load(trajectory, weights_only=True)
    assert native.shape == (STEPS // EVERY, 1, 2 * D_STATE, GRID, GRID)
    assert torch.equal(native, torch.stack(expected[EVERY - 1 :: EVERY]))
    assert torch.equal(torch.load(final, weights_only=True), expected[-1])
    # The steps move the state: a stuck or skipped step would be seen.
    assert not torch.allclose(expected[EVERY - 1], expected[-1])


def test_engine_steps_atheria_exports_of_a_trained_qca_from_its_checkpoints_psi(engine: Path, tmp_path: Path) -> None:
    """The whole workflow of seed 003: train, `atheria export --format torchscript`, step natively."""
    kwargs = {"grid_size": 8, "d_state": 2, "hidden_channels": 4, "qca_steps": 3, "lr": 0.05}
    metrics = [{"name": "combined_metric", "goal": "max"}, "survival", "symmetry", "complexity"]
    agents = {"qca": {"trainer": "atheria/qca", "kwargs": kwargs, "metrics": metrics}}
    config = {
        "experiment": "test",
        "checkpoints_dir": str(tmp_path / "checkpoints"),
        "seed": 3,
        "device": "cpu",
        "agents": agents,
    }
    config_file = write_config(tmp_path / "exp.yaml", config)
    assert runner.invoke(app, ["train", "--config", str(config_file), "--episodes", "2"]).exit_code == 0
    result = runner.invoke(app, ["export", "qca", "--config", str(config_file), "--format", "torchscript"])
    assert result.exit_code == 0, result.output
    trainer = QCATrainer(TrainerContext(device="cpu", seed=3, agent="qca"), **kwargs)
    trainer.load_state_dict(last_payload(tmp_path / "checkpoints", "qca")["state"])
    module, (state,) = trainer.export_module()  # the checkpoint's psi in the engine's layout
    torch.save(state, tmp_path / "psi.pt")
    exported = agent_dir(tmp_path / "checkpoints", "qca") / "model_jit.pt"
    files = [str(exported), str(tmp_path / "psi.pt"), str(tmp_path / "final.pt")]
    completed = run_engine(engine, "run", *files, str(STEPS), "--threads", str(torch.get_num_threads()))
    assert completed.returncode == 0, completed.stderr
    expected = python_trajectory(module, state, STEPS)[-1]
    assert torch.equal(torch.load(tmp_path / "final.pt", weights_only=True), expected)
    assert not torch.equal(expected, state)  # two Adam steps moved the step away from the identity


def test_engine_runs_an_aoti_package_within_float_rounding(engine: Path, psi: Path) -> None:
    from atheria_cli.deploy.formats import aoti
    from atheria_cli.errors import UsageError

    try:
        aoti.require()
    except UsageError as exc:
        pytest.skip(f"the aoti format cannot compile here: {exc.message}")
    step = trained_step("unet")  # one compile: tens of seconds on 2 cores
    package, final = psi.parent / "model_aoti.pt2", psi.parent / "final.pt"
    aoti.build(capture(step), package)
    completed = run_engine(engine, "run", str(package), str(psi), str(final), str(STEPS))
    assert completed.returncode == 0, completed.stderr
    expected = python_trajectory(step, initial_state(), STEPS)[-1]
    # Inductor writes its own fused kernels (vectorized tanh, its own order for the norm's sum),
    # so each step may differ from eager by a few float32 ulps (4e-8 after 8 steps, on values
    # near 0.03, when written); the tolerance is a hundred times that and far below the step's
    # own change of the state (checked in the TorchScript test).
    torch.testing.assert_close(torch.load(final, weights_only=True), expected, rtol=1e-4, atol=5e-6)


def test_engine_bench_reports_each_repeat(engine: Path, exported: Path, psi: Path) -> None:
    completed = run_engine(engine, "bench", str(exported), str(psi), "5", "--repeats", "3", "--warmup", "2")
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["steps"] == 5 and len(report["seconds"]) == 3 and all(s > 0 for s in report["seconds"])


def test_engine_refuses_a_model_that_is_not_a_step(engine: Path, psi: Path) -> None:
    model = psi.parent / "pool.pt"
    torchscript.build(capture(nn.AvgPool2d(2)), model)
    completed = run_engine(engine, "run", str(model), str(psi), str(psi.parent / "out.pt"), "1")
    assert completed.returncode == 1
    assert completed.stderr == "atheria_qca_engine: the model changed the state's shape: it is not a QCA update step\n"
    assert not (psi.parent / "out.pt").exists()


def test_engine_refuses_a_state_of_the_wrong_layout(engine: Path, exported: Path, tmp_path: Path) -> None:
    state = tmp_path / "psi.pt"
    torch.save(torch.zeros(3, GRID, GRID, dtype=torch.float64), state)
    completed = run_engine(engine, "run", str(exported), str(state), str(tmp_path / "out.pt"), "1")
    assert completed.returncode == 1
    assert completed.stderr == "atheria_qca_engine: the state must be float32 [B, 2*d_state, H, W], got Double [3, 16, 16]\n"


def test_engine_usage_errors_exit_2(engine: Path, exported: Path, psi: Path) -> None:
    completed = run_engine(engine, "run", str(exported), str(psi))
    assert completed.returncode == 2 and completed.stderr.startswith("usage: ")
    completed = run_engine(engine, "run", str(exported), str(psi), str(psi.parent / "o.pt"), "4", "--trajectory", "t.pt")
    assert completed.returncode == 2
    assert completed.stderr.startswith("atheria_qca_engine: --trajectory needs --every K (K > 0)\n")
