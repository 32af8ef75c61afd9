"""Wall time of ``atheria train --jobs N`` against the same jobs one after another.

Three measurements, each a real ``python -m atheria_cli train`` in a fresh folder, runs of a
pair interleaved so that a change in the machine's load hits both sides alike:

1. 3 agents (A2C, SAC, PPO) x 2 seeds: ``--jobs 6`` vs ``--jobs 1``.
2. The same ``--jobs 6`` against the slowest of the six jobs trained alone (``--jobs 1``,
   one agent, one seed): the floor a parallel run could reach with enough cores.
3. 2 jobs (SAC, seeds 0 and 1): ``--jobs 2`` vs ``--jobs 1``; the target on a 2-core machine is
   at most 0.6x the sequential wall time.

Every job uses ``train.threads: 1``. The load average before each measurement is printed with
it, and a calibration row first: two pure-Python busy loops in two spawned processes against the
same loops one after another. On an idle 2-core machine that ratio is about 0.5; when other
work holds the cores it rises towards 1, and no ``--jobs`` can do better than it.

Usage: python scripts/bench_jobs.py [--episodes 6] [--repeats 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

NET = {"net_arch": [64, 64]}
AGENTS: dict[str, dict[str, Any]] = {
    "A2C": {"hyperparams": {"n_steps": 8, "policy_kwargs": NET}},
    "SAC": {"hyperparams": {"learning_starts": 100, "batch_size": 64, "buffer_size": 20000, "policy_kwargs": NET}},
    "PPO": {"hyperparams": {"n_steps": 256, "batch_size": 64, "n_epochs": 4, "policy_kwargs": NET}},
}


def config(agents: list[str], seeds: list[int]) -> dict[str, Any]:
    return {
        "experiment": "bench",
        "checkpoints_dir": "checkpoints",
        "device": "cpu",
        "seeds": seeds,
        "env": {"id": "Pendulum-v1", "max_episode_steps": 200},
        "agents": {name: AGENTS[name] for name in agents},
        "train": {"threads": 1, "save_every": 1},
    }


def timed(document: dict[str, Any], episodes: int, *args: str) -> float:
    folder = Path(tempfile.mkdtemp(prefix="atheria-bench-jobs-"))
    try:
        (folder / "exp.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
        command = [sys.executable, "-m", "atheria_cli", "train", "--config", "exp.yaml", "--episodes", str(episodes), *args]
        started = time.perf_counter()
        subprocess.run(command, cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - started
    finally:
        shutil.rmtree(folder)


def load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def pair(name: str, first: tuple[str, Any], second: tuple[str, Any], repeats: int) -> list[str]:
    """Median of ``repeats`` interleaved runs of two callables; one Markdown row."""
    before = load()
    times: dict[str, list[float]] = {first[0]: [], second[0]: []}
    for _ in range(repeats):
        for label, run in (first, second):
            times[label].append(run())
    a, b = (statistics.median(times[label]) for label in (first[0], second[0]))
    runs = "; ".join(f"{label}: {', '.join(f'{t:.1f}' for t in values)} s" for label, values in times.items())
    return [f"| {name} | {first[0]}: {a:.1f} s | {second[0]}: {b:.1f} s | **{a / b:.2f}×** | {runs} | {before} |"]


def _burn(count: int = 30_000_000) -> int:
    total = 0
    for index in range(count):
        total += index
    return total


def burn_sequential() -> float:
    started = time.perf_counter()
    _burn()
    _burn()
    return time.perf_counter() - started


def burn_parallel() -> float:
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    processes = [context.Process(target=_burn) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return time.perf_counter() - started


def slowest_alone(episodes: int) -> float:
    return max(timed(config([agent], [seed]), episodes, "--jobs", "1") for agent in AGENTS for seed in (0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--only-two",
        action="store_true",
        help="Only the calibration and the SAC x 2 seeds rows (issue 26's targets), not the 6-job ones.",
    )
    args = parser.parse_args()
    six = config(list(AGENTS), [0, 1])
    two = config(["SAC"], [0, 1])
    rows = ["| measurement | parallel | reference | ratio | all runs | load avg 1/5/15 min before |", "|---|---|---|---|---|---|"]
    rows += pair("calibration: 2 busy loops", ("2 processes", burn_parallel), ("sequential", burn_sequential), args.repeats)
    if not args.only_two:
        rows += six_job_rows(six, args)
    rows += pair(
        "SAC × 2 seeds (target ≤ 0.6×)",
        ("--jobs 2", lambda: timed(two, args.episodes, "--jobs", "2")),
        ("--jobs 1", lambda: timed(two, args.episodes, "--jobs", "1")),
        args.repeats,
    )
    print(
        f"Pendulum-v1 (200-step episodes), {args.episodes} episodes per job, 64×64 nets, threads: 1; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print()
    print("\n".join(rows))


def six_job_rows(six: dict[str, Any], args: argparse.Namespace) -> list[str]:
    rows = pair(
        "3 agents × 2 seeds",
        ("--jobs 6", lambda: timed(six, args.episodes, "--jobs", "6")),
        ("--jobs 1", lambda: timed(six, args.episodes, "--jobs", "1")),
        args.repeats,
    )
    rows += pair(
        "--jobs 6 vs slowest job alone",
        ("--jobs 6", lambda: timed(six, args.episodes, "--jobs", "6")),
        ("slowest alone", lambda: slowest_alone(args.episodes)),
        1,
    )
    return rows


if __name__ == "__main__":
    main()
