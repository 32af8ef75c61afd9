"""Are atheria's zoo runs the rl-zoo3 runs? Compare final policies tensor by tensor, seed by seed.

Reads the runs ``scripts/bench_zoo_fidelity.py --keep A`` trained through atheria and those
``scripts/bench_zoo_reference.py --keep B`` trained with rl-zoo3's own trainer, and prints, per
entry and seed, the timesteps each ran and how many policy tensors are bit-identical.

rl-zoo3 (SB3's ``learn``) stops at the end of the collection chunk that reaches ``n_timesteps``
(a DQN with ``train_freq: 256`` trains once more there); atheria's ``--until-timesteps`` stops at
the first episode end at or after it. Where those differ, so does the last training, and only
the tensors it touches differ. And a PPO's last rollout ends past ``n_timesteps``, where SB3's
progress_remaining is below 0: rl-zoo3's ``lin_X`` (``progress_remaining * X``) then trains it
with a negative learning rate and clip range, while atheria floors the progress at 0.

Usage: python scripts/compare_zoo_weights.py A/checkpoints B [--cases sac,td3,ppo,dqn] [--seeds 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from stable_baselines3 import DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm

from atheria_cli.agents.checkpoint import read_checkpoint

CASES: dict[str, tuple[type[BaseAlgorithm], str]] = {
    "sac": (SAC, "Pendulum-v1"),
    "td3": (TD3, "Pendulum-v1"),
    "ppo": (PPO, "CartPole-v1"),
    "dqn": (DQN, "CartPole-v1"),
}


def compare(atheria_runs: Path, zoo_runs: Path, name: str, seed: int) -> str:
    algo, env_id = CASES[name]
    run = atheria_runs / f"zoo-{name}" / f"seed_{seed}" / name.upper()
    payload = read_checkpoint(sorted(run.glob("episode_*.pt"))[-1])
    ours = payload["model"]["state_dicts"]["policy"]
    # rl-zoo3 pickles its linear schedules as rl_zoo3.utils functions, which import its heavy
    # dependencies; the policy tensors are all this needs, so the schedules are replaced.
    schedules = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0}
    path = next((zoo_runs / name / f"seed_{seed}" / name).glob(f"{env_id}_*")) / f"{env_id}.zip"
    zoo = algo.load(path, device="cpu", custom_objects=schedules)
    theirs = zoo.policy.state_dict()
    same = [key for key in theirs if torch.equal(ours[key], theirs[key])]
    differing = sorted({key.split(".")[0] for key in theirs if key not in same})
    return (
        f"| {name}/{env_id} | {seed} | {payload['num_timesteps']} | {zoo.num_timesteps} | "
        f"{len(same)}/{len(theirs)} | {', '.join(differing) or '–'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("atheria_runs", type=Path, help="the checkpoints folder of bench_zoo_fidelity.py --keep")
    parser.add_argument("zoo_runs", type=Path, help="the folder of bench_zoo_reference.py --keep")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print("| entry | seed | atheria timesteps | rl-zoo3 timesteps | policy tensors bit-identical | differing modules |")
    print("|---|---|---|---|---|---|")
    for name in args.cases.split(","):
        for seed in range(args.seeds):
            print(compare(args.atheria_runs, args.zoo_runs, name, seed), flush=True)


if __name__ == "__main__":
    main()
