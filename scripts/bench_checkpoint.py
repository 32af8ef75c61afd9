"""Checkpoint cost of atheria vs plain Stable-Baselines3: bytes per episode and training wall time.

SAC on Pendulum-v1 (200-step episodes) with SB3's defaults, the 1M-row replay buffer included.

- atheria: ``atheria train`` semantics (a checkpoint after every episode); bytes counted at the
  atomic-write layer, so every file (checkpoint, replay segment, JSON) is included.
- SB3: ``model.save`` + ``model.save_replay_buffer`` after every episode, the usual way to make
  an SB3 run resumable.
- wall ratio: atheria's whole training session (checkpoints included) over plain
  ``model.learn`` (no saving at all) for the same number of steps, median of ``--repeats``.

Usage: python scripts/bench_checkpoint.py [--episodes 20] [--repeats 3]
Prints a Markdown table (docs/benchmarks.md holds the measured one).
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback

from atheria_cli.config import ExperimentConfig
from atheria_cli.run import atomic, store
from atheria_cli.training import session as training
from atheria_cli.training.planning import plan_training
from atheria_cli.training.session import run_training

EPISODE_STEPS = 200


class _Quiet:
    def agent_started(self, *args: object) -> None: ...
    def episode_finished(self, *args: object) -> None: ...
    def evaluation_finished(self, *args: object) -> None: ...
    def checkpoint_committed(self, *args: object) -> None: ...
    def resources(self, *args: object) -> None: ...
    def agent_finished(self, *args: object) -> None: ...
    def warn(self, message: str) -> None: ...


def atheria_run(root: Path, episodes: int) -> tuple[float, int, float]:
    """Seconds of one training session, bytes it wrote, and seconds spent committing checkpoints."""
    written = 0
    committing = 0.0
    original = atomic.atomic_write_bytes
    original_commit = training._commit

    def timed_commit(*args: object, **kwargs: object) -> None:
        nonlocal committing
        started = time.perf_counter()
        original_commit(*args, **kwargs)
        committing += time.perf_counter() - started

    def counting(path: Path, data: bytes) -> None:
        nonlocal written
        written += len(data)
        original(path, data)

    config = ExperimentConfig.model_validate(
        {
            "experiment": "bench",
            "checkpoints_dir": str(root),
            "device": "cpu",
            "env": {"id": "Pendulum-v1"},
            "agents": {"SAC": {}},
        }
    )
    plan = plan_training(config, episodes=episodes)
    atomic.atomic_write_bytes = counting
    store.atomic_write_bytes = counting
    training._commit = timed_commit
    try:
        started = time.perf_counter()
        run_training(plan, _Quiet())
        seconds = time.perf_counter() - started
    finally:
        atomic.atomic_write_bytes = original
        store.atomic_write_bytes = original
        training._commit = original_commit
    return seconds, written, committing


class _SaveEachEpisode(BaseCallback):
    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.written = 0

    def _on_step(self) -> bool:
        if self.locals["dones"][0]:
            model_path, buffer_path = self.folder / "model.zip", self.folder / "replay.pkl"
            self.model.save(model_path)
            self.model.save_replay_buffer(buffer_path)
            self.written += model_path.stat().st_size + buffer_path.stat().st_size
        return True


def plain_run(episodes: int, save_folder: Path | None) -> tuple[float, int]:
    """Seconds of ``SAC(...)`` + ``learn`` for the same steps; bytes when saving each episode."""
    started = time.perf_counter()
    model = SAC("MlpPolicy", "Pendulum-v1", seed=0, device="cpu")
    callback = _SaveEachEpisode(save_folder) if save_folder else None
    model.learn(total_timesteps=episodes * EPISODE_STEPS, callback=callback)
    return time.perf_counter() - started, callback.written if callback else 0


def model_and_optimizer_bytes() -> int:
    """Size of what any resumable save must hold: policy (with targets) and optimizer states."""
    model = SAC("MlpPolicy", "Pendulum-v1", seed=0, device="cpu", learning_starts=0)
    model.learn(total_timesteps=2)  # optimizers get their moment tensors
    names, variables = model._get_torch_save_params()
    state = {name: _getattr(model, name).state_dict() for name in names}
    state.update({name: _getattr(model, name) for name in variables})
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return len(buffer.getvalue())


def _getattr(obj: object, dotted: str) -> object:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())

    reference = model_and_optimizer_bytes()
    atheria_times, plain_times, commit_times = [], [], []
    atheria_bytes = sb3_bytes = 0
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):  # interleaved, so drifts of the machine hit both
            seconds, atheria_bytes, committing = atheria_run(Path(scratch) / f"atheria{repeat}", args.episodes)
            atheria_times.append(seconds)
            commit_times.append(committing)
            plain_times.append(plain_run(args.episodes, None)[0])
        _, sb3_bytes = plain_run(args.episodes, Path(scratch))

    per_episode = atheria_bytes / args.episodes
    ratio = statistics.median(atheria_times) / statistics.median(plain_times)
    print(
        f"SAC, Pendulum-v1, buffer_size=1_000_000, {args.episodes} episodes x {EPISODE_STEPS} steps, "
        f"{args.repeats} repeats; {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}"
    )
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| model + optimizer state (torch.save) | {reference / 1e6:.2f} MB |")
    print(
        f"| atheria, bytes written per episode | {per_episode / 1e6:.2f} MB ({per_episode / reference:.3f}x model+optimizer; target <= 1.1x) |"
    )
    print(f"| SB3 save + save_replay_buffer per episode | {sb3_bytes / args.episodes / 1e6:.2f} MB |")
    print(
        f"| plain model.learn, median wall time | {statistics.median(plain_times):.2f} s ({', '.join(f'{t:.2f}' for t in plain_times)}) |"
    )
    print(
        f"| atheria training session, median wall time | {statistics.median(atheria_times):.2f} s ({', '.join(f'{t:.2f}' for t in atheria_times)}) |"
    )
    print(f"| wall ratio atheria / plain learn, medians | {ratio:.3f} (target <= 1.02) |")
    print(f"| wall ratio atheria / plain learn, fastest runs | {min(atheria_times) / min(plain_times):.3f} |")
    share = [c / t for c, t in zip(commit_times, atheria_times, strict=True)]
    print(
        f"| time inside checkpoint commits (capture, encode, write, fsync) | {statistics.median(commit_times):.2f} s per session, "
        f"{100 * statistics.median(share):.1f} % of atheria's wall time |"
    )


if __name__ == "__main__":
    main()
