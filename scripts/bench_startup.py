"""Start-up latency: ``atheria --version`` and ``atheria --help`` against ``python -c pass``, and
``atheria train`` from process start to the first environment step, against a plain SB3 script
building the same model.

Every figure is the wall time of a fresh subprocess (Python start-up and imports included), the
median of ``--repeats`` alternating rounds after a warm-up round, with its CPU time (user +
system), the figure to compare when the machine is shared with other work. (``history``,
``status`` and ``compare`` are timed by scripts/bench_history.py.) Train start-up: both
processes build PPO (the default config's hyperparameters, 64x64 networks) on a 5-step
Pendulum whose first ``step`` writes the time and the process's CPU time so far
(scripts/startup_stamp_env.py); the wall figure is that time minus the moment the process was
started. The two kinds of run alternate.

Usage: python scripts/bench_startup.py [--repeats 15] [--no-train]
Prints a Markdown table (docs/benchmarks.md holds the measured one).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))

from bench_history import TABLE_HEADER, atheria_command, child_env, load_average, table_rows, time_alternating  # noqa: E402

PPO_HYPERPARAMS = {"n_steps": 168, "batch_size": 56, "n_epochs": 10, "gamma": 0.95, "learning_rate": 0.0003}
NET = [64, 64]
PLAIN_SB3 = f"""
import sys
from gymnasium.wrappers import TimeLimit
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv
from startup_stamp_env import StampedPendulum
env = DummyVecEnv([lambda: Monitor(TimeLimit(StampedPendulum(), max_episode_steps=5))])
model = PPO("MlpPolicy", env, seed=0, device="cpu", verbose=0, policy_kwargs={{"net_arch": {NET}}}, **{PPO_HYPERPARAMS})
model.learn(5)
"""


def to_first_step(args: list[str], folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds from starting ``args`` to its environment's first ``step``."""
    stamp = folder / "stamp"
    path = os.pathsep.join(filter(None, [str(SCRIPTS), os.environ.get("PYTHONPATH")]))
    env = {**child_env(), "ATHERIA_BENCH_STAMP": str(stamp), "PYTHONPATH": path}
    started = time.time()
    subprocess.run(args, check=True, capture_output=True, env=env, cwd=folder)
    stepped, cpu = (float(value) for value in stamp.read_text().split())
    return stepped - started, cpu


def train_config(folder: Path) -> Path:
    config = {
        "experiment": "startup",
        "checkpoints_dir": str(folder / "checkpoints"),
        "seed": 0,
        "device": "cpu",
        "env": {"id": "startup_stamp_env:StampedPendulum", "max_episode_steps": 5},
        "agents": {"PPO": {"hyperparams": {**PPO_HYPERPARAMS, "policy_kwargs": {"net_arch": NET}}}},
    }
    path = folder / "startup.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def train_startup(repeats: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    atheria, plain = [], []
    for index in range(repeats + 1):  # the first pair warms the file cache
        with tempfile.TemporaryDirectory(prefix="atheria-startup-") as name:
            folder = Path(name)
            train = [*atheria_command(), "train", "--config", str(train_config(folder)), "--episodes", "1"]
            atheria_run = to_first_step(train, folder)
            plain_run = to_first_step([sys.executable, "-c", PLAIN_SB3], folder)
        if index:
            atheria.append(atheria_run)
            plain.append(plain_run)
    return atheria, plain


def row(label: str, runs: list[tuple[float, float]], target: str) -> str:
    wall = sorted(run[0] * 1000 for run in runs)
    cpu = statistics.median(run[1] * 1000 for run in runs)
    return f"| {label} | {statistics.median(wall):.0f} | {wall[0]:.0f} | {wall[-1]:.0f} | {cpu:.0f} | {target} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-train", action="store_true", help="Only --version and --help.")
    options = parser.parse_args()
    base = atheria_command()
    commands = {"`python -c pass`": [sys.executable, "-c", "pass"], "`atheria --version`": [*base, "--version"]}
    commands["`atheria --help`"] = [*base, "--help"]
    targets = {"`atheria --version`": "≤ 150 ms", "`atheria --help`": "≤ 200 ms"}
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")
    print(f"load average before: {load_average()}\n")
    print("\n".join(TABLE_HEADER))
    print("\n".join(table_rows(time_alternating(commands, options.repeats), targets, "`python -c pass`")), flush=True)
    if not options.no_train:
        print("\n| what | wall median ms | wall min ms | wall max ms | CPU median ms | target (wall median) ms |")
        print("|---|---:|---:|---:|---:|---|")
        atheria, plain = train_startup(options.repeats)
        print(row("plain SB3 script: start to first env step", plain, "–"))
        print(row("`atheria train`: start to first env step", atheria, "plain + 300"))
        difference = [(a[0] - p[0], a[1] - p[1]) for a, p in zip(atheria, plain, strict=True)]
        print(row("difference, run by run (atheria − plain)", difference, "≤ 300"))
    print(f"\nload average after: {load_average()}; medians of {options.repeats} alternating rounds")


if __name__ == "__main__":
    main()
