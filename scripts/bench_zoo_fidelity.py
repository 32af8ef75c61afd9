"""Fidelity of rl-zoo3 entries trained through atheria, beside the zoo's published scores.

For each case, trains the entry with ``agents.X.zoo`` (no hand translation) through the CLI,
``atheria train --until-timesteps T`` on a generated multi-seed config (``seeds`` with
``train.jobs``, so the seeds train at once); then evaluates each seed's last checkpoint
deterministically (``atheria eval --json``, 10 episodes, seeds 1000..1009) and prints a
Markdown table: the mean of the per-seed scores, the IQM (the 25 % trimmed mean of all
evaluation episodes pooled over seeds), the per-seed scores, and the zoo's figure. The target
is an IQM at or above the zoo's mean minus one standard deviation. Needs rl_zoo3 installed
(``pip install --no-deps rl-zoo3==2.9.2``). CPU-heavy: not part of the test suite.

Usage: nice -n 19 python scripts/bench_zoo_fidelity.py [--cases sac,td3,ppo,dqn] [--seeds 3] [--jobs N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from atheria_cli.reports.statistics import iqm  # the 25 % trimmed mean, as compare --seeds reports it


@dataclass(frozen=True)
class Case:
    spec: str
    env_id: str
    timesteps: int
    zoo_mean: float  # the zoo's published score (rl-baselines3-zoo benchmark.md)
    zoo_std: float

    @property
    def agent(self) -> str:
        return self.spec.split("/")[0].upper()


CASES = {
    "sac": Case("sac/Pendulum-v1", "Pendulum-v1", 20_000, -157.0, 89.0),
    "td3": Case("td3/Pendulum-v1", "Pendulum-v1", 20_000, -152.0, 90.0),
    "ppo": Case("ppo/CartPole-v1", "CartPole-v1", 100_000, 500.0, 0.0),  # the entry itself sets n_envs: 8
    "dqn": Case("dqn/CartPole-v1", "CartPole-v1", 50_000, 500.0, 0.0),
}
EVAL_EPISODES, EVAL_SEED = 10, 1000


@dataclass
class Result:
    case: Case
    seed_scores: list[float] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)  # every evaluation episode, all seeds
    train_seconds: float = 0.0  # wall time of the multi-seed run (all seeds at once)


def atheria(*args: str, cwd: Path) -> str:
    command = [sys.executable, "-m", "atheria_cli", *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def run_case(case: Case, seeds: int, jobs: int, folder: Path, result: Result) -> None:
    """Trains every seed of one entry in a single multi-seed run (``seeds`` + ``train.jobs``),
    then evaluates each seed's last checkpoint."""
    config = {
        "experiment": f"zoo-{case.agent.lower()}",
        "checkpoints_dir": str(folder / "checkpoints"),
        "seeds": list(range(seeds)),
        "device": "cpu",
        "env": {"id": case.env_id},
        "agents": {case.agent: {"zoo": case.spec}},
        # one commit, at the session's end; one torch thread per job so the jobs share the cores
        "train": {"save_every": 1_000_000, "keep": {"last": 1}, "jobs": jobs, "threads": 1},
    }
    path = folder / f"{config['experiment']}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    started = time.perf_counter()
    atheria("train", "--config", str(path), "--until-timesteps", str(case.timesteps), cwd=folder)
    result.train_seconds = time.perf_counter() - started
    for seed in range(seeds):
        output = atheria(
            "eval",
            case.agent,
            "--config",
            str(path),
            "--run-seed",
            str(seed),
            "--episodes",
            str(EVAL_EPISODES),
            "--seed",
            str(EVAL_SEED),
            "--json",
            cwd=folder,
        )
        returns = [float(episode["reward"]) for episode in json.loads(output)["episodes"]]
        result.returns.extend(returns)
        result.seed_scores.append(statistics.fmean(returns))
        print(f"{case.spec} seed {seed}: {result.seed_scores[-1]:.1f}", file=sys.stderr, flush=True)


def table(results: list[Result], seeds: int) -> str:
    lines = [
        f"{seeds} seed(s) per entry, deterministic evaluation on {EVAL_EPISODES} episodes per seed; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "",
        "| entry | timesteps | mean | IQM | per seed | zoo | target (IQM ≥ zoo mean − std) | train wall time, all seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        case = result.case
        target = case.zoo_mean - case.zoo_std
        score = iqm(result.returns)
        verdict = "met" if score >= target else "missed"
        lines.append(
            f"| {case.spec} | {case.timesteps} | {statistics.fmean(result.seed_scores):.1f} | {score:.1f} | "
            f"{', '.join(f'{value:.1f}' for value in result.seed_scores)} | {case.zoo_mean:.0f} ± {case.zoo_std:.0f} | "
            f"{verdict} (≥ {target:.0f}) | {result.train_seconds:.0f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="seeds trained at once (default: all of them)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs in this folder (default: a temporary one)")
    args = parser.parse_args()
    unknown = [name for name in args.cases.split(",") if name not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="atheria-zoo-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        results = []
        for name in args.cases.split(","):
            result = Result(CASES[name])
            run_case(CASES[name], args.seeds, args.jobs or args.seeds, folder, result)
            results.append(result)
            print(table(results, args.seeds), file=sys.stderr, flush=True)  # so far, in case a later case is stopped
        print(table(results, args.seeds))
    finally:
        if args.keep is None:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
