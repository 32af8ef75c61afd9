"""The reference column of the fidelity benchmark: the same rl-zoo3 entries trained by rl-zoo3 itself.

``scripts/bench_zoo_fidelity.py`` trains each entry through atheria; this script trains it with
rl-zoo3's own trainer (``python -m rl_zoo3.train --algo A --env E --seed S --eval-freq -1``, the
entry's ``n_timesteps``, one torch thread), on the same seeds, then evaluates the final model
(not a best-model snapshot) exactly as the fidelity script does: deterministic, 10 episodes,
reset seeds 1000..1009, on the plain Gymnasium env. So a score that misses the zoo's published
figure can be told apart: seed variance of the entry itself, or something atheria does.

It needs a virtualenv with the whole rl-zoo3 (its trainer imports huggingface_hub, optuna, ...),
which atheria's own venv does not carry (``atheria-cli[zoo]`` installs it without dependencies):

    python3 -m venv /tmp/zooref && . /tmp/zooref/bin/activate
    pip install torch==2.13.0 rl_zoo3==2.9.2
    python scripts/bench_zoo_reference.py [--cases sac,td3,ppo,dqn] [--seeds 3] [--jobs N] [--keep DIR]

Seed S here is seed S there: both seed SB3 the same way, so ``scripts/compare_zoo_weights.py``
can compare the final policies of the two tensor by tensor (``--keep`` both folders).
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
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

CASES = {  # algo, env id, the zoo's published mean and std (rl-baselines3-zoo benchmark.md)
    "sac": ("sac", "Pendulum-v1", -157.0, 89.0),
    "td3": ("td3", "Pendulum-v1", -152.0, 90.0),
    "ppo": ("ppo", "CartPole-v1", 500.0, 0.0),
    "dqn": ("dqn", "CartPole-v1", 500.0, 0.0),
}
EVAL_EPISODES, EVAL_SEED = 10, 1000


def train(algo: str, env_id: str, seed: int, folder: Path) -> float:
    started = time.perf_counter()
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", algo, "--env", env_id, "--seed", str(seed)]
    command += ["--eval-freq", "-1", "--num-threads", "1", "--log-folder", str(folder / f"seed_{seed}"), "--device", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def evaluate(algo: str, env_id: str, seed: int, folder: Path) -> list[float]:
    import gymnasium as gym
    from rl_zoo3 import ALGOS

    run = next((folder / f"seed_{seed}" / algo).glob(f"{env_id}_*"))
    model = ALGOS[algo].load(run / f"{env_id}.zip", device="cpu")  # the final model
    env = gym.make(env_id)
    returns = []
    for episode in range(EVAL_EPISODES):
        observation, _ = env.reset(seed=EVAL_SEED + episode)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(observation, deterministic=True)
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def iqm(values: list[float]) -> float:
    ordered = sorted(values)
    cut = int(len(ordered) * 0.25)
    return statistics.fmean(ordered[cut : len(ordered) - cut] or ordered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="seeds trained at once (default: all of them)")
    parser.add_argument("--keep", type=Path, default=None, help="train in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="zoo-reference-"))
    print(
        f"rl-zoo3's own trainer, {args.seeds} seed(s) per entry, deterministic evaluation on {EVAL_EPISODES} episodes "
        f"per seed; {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n\n"
        "| entry | mean | IQM | per seed | zoo | target (IQM ≥ zoo mean − std) | train wall time, all seeds |\n"
        "|---|---|---|---|---|---|---|"
    )
    for name in args.cases.split(","):
        algo, env_id, zoo_mean, zoo_std = CASES[name]
        where = folder / name
        started = time.perf_counter()
        with ThreadPoolExecutor(args.jobs or args.seeds) as pool:
            list(pool.map(partial(train, algo, env_id, folder=where), range(args.seeds)))
        wall = time.perf_counter() - started
        per_seed = [evaluate(algo, env_id, seed, where) for seed in range(args.seeds)]
        pooled = [value for returns in per_seed for value in returns]
        scores = [statistics.fmean(returns) for returns in per_seed]
        verdict = "met" if iqm(pooled) >= zoo_mean - zoo_std else "missed"
        print(
            f"| {algo}/{env_id} | {statistics.fmean(scores):.1f} | {iqm(pooled):.1f} | "
            f"{', '.join(f'{score:.1f}' for score in scores)} | {zoo_mean:.0f} ± {zoo_std:.0f} | "
            f"{verdict} (≥ {zoo_mean - zoo_std:.0f}) | {wall:.0f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
