"""What atheria costs around a user's PyTorch trainer: wall time and bytes per commit.

Two whole processes, alternated so that a change in the machine's load hits both alike:

- **bare**: ``python scripts/bench_trainer.py --bare``: the loop a user writes by hand. It seeds
  Python, NumPy and torch, builds :class:`Regression`, and after each of E episodes writes its
  ``state_dict()`` with ``torch.save`` (seed 002's per-episode save);
- **atheria**: ``python -m atheria_cli train`` of the same class for E episodes, a commit after
  every episode (``save_every: 1``): checkpoint with the global generators, history, metadata,
  fsyncs.

Targets (issue 22): atheria's wall time at most 1.03x the bare loop's, and the bytes a commit
adds on disk at most 1.1x the size of the trainer's state (``torch.save`` of ``state_dict()``).

Usage: python scripts/bench_trainer.py [--episodes 20] [--repeats 3] [--hidden 256] [--samples 4096]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


class Regression:
    """A typical small trainer: an MLP with dropout fitting a fixed dataset, one shuffled pass per
    episode, Adam and a step LR schedule; ~4 ``hidden``**2 parameters, so the state is sizeable."""

    def __init__(self, context: Any, hidden: int = 256, samples: int = 4096, batch: int = 64) -> None:
        import torch
        from torch import nn
        from torch.utils.data import DataLoader, TensorDataset

        data = torch.Generator().manual_seed(1234)
        inputs = torch.randn(samples, 32, generator=data)
        targets = inputs.sum(dim=1, keepdim=True)
        self.generator = torch.Generator().manual_seed(context.seed)
        self.loader = DataLoader(TensorDataset(inputs, targets), batch_size=batch, shuffle=True, generator=self.generator)
        layers = [nn.Linear(32, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)]
        self.model = nn.Sequential(*layers)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=5, gamma=0.7)

    def train_episode(self, episode: int) -> dict[str, float]:
        from torch.nn import functional

        total, batches = 0.0, 0
        for inputs, targets in self.loader:
            loss = functional.mse_loss(self.model(inputs), targets)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total, batches = total + loss.item(), batches + 1
        self.scheduler.step()
        return {"loss": total / batches, "steps": batches}

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])


def bare(folder: Path, episodes: int, hidden: int, samples: int) -> None:
    """The hand-written loop: seed, build, train, ``torch.save`` after every episode."""
    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    trainer = Regression(SimpleNamespace(device="cpu", seed=0, agent="fit"), hidden=hidden, samples=samples)
    for episode in range(1, episodes + 1):
        trainer.train_episode(episode)
        torch.save(trainer.state_dict(), folder / f"episode_{episode:04d}.pt")


def state_bytes(hidden: int, samples: int) -> int:
    """The size of the trainer's state after one episode, as ``torch.save`` writes it."""
    import torch

    torch.manual_seed(0)
    trainer = Regression(SimpleNamespace(device="cpu", seed=0, agent="fit"), hidden=hidden, samples=samples)
    trainer.train_episode(1)
    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    return len(buffer.getvalue())


def experiment(hidden: int, samples: int) -> dict[str, Any]:
    return {
        "experiment": "bench",
        "checkpoints_dir": "checkpoints",
        "device": "cpu",
        "seed": 0,
        "agents": {
            "fit": {
                "trainer": "bench_trainer:Regression",
                "kwargs": {"hidden": hidden, "samples": samples},
                "metrics": [{"name": "loss", "goal": "min"}],
            }
        },
        "train": {"save_every": 1, "allow_import": True, "threads": 1},
    }


def run_process(command: list[str], folder: Path) -> float:
    environment = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    subprocess.run(command, cwd=folder, env=environment, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def timed_bare(episodes: int, hidden: int, samples: int) -> float:
    folder = Path(tempfile.mkdtemp(prefix="atheria-bench-bare-"))
    try:
        command = [sys.executable, str(HERE / "bench_trainer.py"), "--bare", str(folder), "--episodes", str(episodes)]
        return run_process([*command, "--hidden", str(hidden), "--samples", str(samples)], folder)
    finally:
        shutil.rmtree(folder)


def timed_atheria(episodes: int, hidden: int, samples: int) -> tuple[float, int]:
    """(wall seconds, bytes on disk per committed episode) of one ``atheria train``."""
    folder = Path(tempfile.mkdtemp(prefix="atheria-bench-trainer-"))
    try:
        (folder / "exp.yaml").write_text(yaml.safe_dump(experiment(hidden, samples)), encoding="utf-8")
        command = [sys.executable, "-m", "atheria_cli", "train", "--config", "exp.yaml", "--episodes", str(episodes)]
        seconds = run_process(command, folder)
        run = folder / "checkpoints" / "bench" / "fit"
        checkpoints = sorted(run.glob("episode_*.pt"))
        return seconds, statistics.median(path.stat().st_size for path in checkpoints)
    finally:
        shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--samples", type=int, default=4096)
    options = parser.parse_args()
    if options.bare is not None:
        import torch

        torch.set_num_threads(1)  # as atheria's --threads 1
        bare(options.bare, options.episodes, options.hidden, options.samples)
        return
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")
    print(f"load average before: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")
    bares, atherias, sizes = [], [], []
    timed_bare(2, options.hidden, options.samples)  # warm the caches both sides use
    for _ in range(options.repeats):
        bares.append(timed_bare(options.episodes, options.hidden, options.samples))
        seconds, size = timed_atheria(options.episodes, options.hidden, options.samples)
        atherias.append(seconds)
        sizes.append(size)
    state = state_bytes(options.hidden, options.samples)
    wall_bare, wall_atheria = statistics.median(bares), statistics.median(atherias)
    print(f"load average after: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print(
        f"{options.episodes} episodes, hidden {options.hidden}, {options.samples} samples, medians of {options.repeats} alternating runs"
    )
    print(f"bare loop + torch.save per episode: {wall_bare:.2f} s ({wall_bare / options.episodes * 1000:.0f} ms per episode)")
    print(f"atheria train, a commit per episode: {wall_atheria:.2f} s: {wall_atheria / wall_bare:.3f}x (target <= 1.03x)")
    checkpoint = statistics.median(sizes)
    print(f"state {state} bytes; checkpoint {checkpoint:.0f} bytes: {checkpoint / state:.3f}x (target <= 1.1x)")


if __name__ == "__main__":
    main()
