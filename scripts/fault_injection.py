"""Kill a real ``atheria train`` with SIGKILL at random moments, resume, and check the run.

After every kill the committed run must be intact (``atheria verify`` finds no problem) with
consecutive episode numbers; after a final clean session no uncommitted file may be left. With
``--profile trainer`` (a user's PyTorch trainer, ``tests.trainers:Shuffler``) the run that
survived the kills must also equal, record for record and tensor for tensor, one that trained
the same episodes without being killed. The test suite runs 20 kills of SAC and 10 of the
trainer; run more by hand:

    python scripts/fault_injection.py --kills 200 --workdir /tmp/faults
    python scripts/fault_injection.py --profile trainer --kills 100 --workdir /tmp/faults-trainer
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Profile:
    """What is trained and killed: one agent of one config."""

    agent: str
    config: dict[str, Any]
    # Whether the survivor must equal an uninterrupted run (a trainer's episodes are whole: a
    # kill strikes before or after one, never inside a committed one).
    compare_uninterrupted: bool


PROFILES = {
    "sac": Profile(
        agent="SAC",
        config={
            "experiment": "faults",
            "checkpoints_dir": "checkpoints",
            "device": "cpu",
            "env": {"id": "Pendulum-v1", "max_episode_steps": 30},
            "agents": {
                "SAC": {
                    "hyperparams": {
                        "learning_starts": 10,
                        "batch_size": 16,
                        "buffer_size": 500,
                        "policy_kwargs": {"net_arch": [8]},
                    }
                },
            },
            "train": {"episodes": 1, "save_every": 1, "save_every_steps": 7, "schedule_timesteps": 5000},
        },
        compare_uninterrupted=False,
    ),
    # ~0.1 s episodes on the 2-core VM: kills land inside episodes and inside commits alike.
    "trainer": Profile(
        agent="fit",
        config={
            "experiment": "faults",
            "checkpoints_dir": "checkpoints",
            "device": "cpu",
            "seed": 3,
            "agents": {
                "fit": {
                    "trainer": "tests.trainers:Shuffler",
                    "kwargs": {"samples": 1000},
                    "metrics": [{"name": "loss", "goal": "min"}, "lr"],
                }
            },
            "train": {"episodes": 1, "save_every": 1, "allow_import": True},
        },
        compare_uninterrupted=True,
    ),
}
CONFIG = PROFILES["sac"].config


def _config(workdir: Path) -> Any:
    from atheria_cli.config import load_config

    return load_config(workdir / "faults.yaml", {"checkpoints_dir": str(workdir / "checkpoints")})


def check(workdir: Path, agent: str = "SAC") -> tuple[int, list[str]]:
    """(committed episodes, problems) of the run, read the way atheria reads it."""
    from atheria_cli.run.layout import AgentLayout
    from atheria_cli.run.store import AgentStore, RunState
    from atheria_cli.training.integrity import verify_agent

    config = _config(workdir)
    store = AgentStore(AgentLayout.of(config.run_dir, agent))
    if store.state() is not RunState.COMMITTED:
        return 0, []
    report = verify_agent(config, agent)
    history = store.history()
    numbers = [record.episode for record in store.episodes(history)]
    problems = list(report.problems)
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"episode numbers are not consecutive: {numbers}")
    return history.total_episodes, problems


def train_command(workdir: Path, episodes: int, *, resume: bool = True) -> list[str]:
    return [
        sys.executable,
        "-m",
        "atheria_cli",
        "train",
        "--config",
        str(workdir / "faults.yaml"),
        *(["--resume"] if resume else []),
        "--episodes",
        str(episodes),
    ]


def child_environment() -> dict[str, str]:
    """The trainer profile's class lives in the repository's ``tests`` package."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def committed_timesteps(workdir: Path, agent: str = "SAC") -> int:
    metadata = workdir / "checkpoints" / "faults" / agent / "metadata.json"
    if not metadata.exists():
        return 0
    from atheria_cli.run.formats import read_metadata

    latest = read_metadata(metadata).latest
    return latest.timesteps if latest is not None else 0


def kill_once(workdir: Path, rng: random.Random, *, after_a_commit: bool, agent: str = "SAC") -> None:
    """Start a long session, wait until it trains (and, with ``after_a_commit``, until it has
    committed once), then kill it at a random moment."""
    lock = workdir / "checkpoints" / "faults" / f".{agent}.lock"
    before = committed_timesteps(workdir, agent)
    process = subprocess.Popen(
        train_command(workdir, 10_000), cwd=workdir, env=child_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while not lock.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    while (
        after_a_commit
        and committed_timesteps(workdir, agent) == before
        and process.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 1.5))
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@dataclass
class FaultReport:
    problems: list[str] = field(default_factory=list)  # empty when the run survived every kill
    # Kills that struck a session after it had committed: only those test recovery from a
    # half-written commit rather than a session that never got going.
    landed_after_commit: int = 0


def run(kills: int, workdir: Path, seed: int = 0, profile: str = "sac") -> FaultReport:
    chosen = PROFILES[profile]
    agent = chosen.agent
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "faults.yaml").write_text(yaml.safe_dump(chosen.config), encoding="utf-8")
    rng = random.Random(seed)
    report = FaultReport()
    problems = report.problems
    last = 0
    for attempt in range(1, kills + 1):
        before = committed_timesteps(workdir, agent)
        # Every other kill waits for the session's first commit, so the kills strike commits in
        # progress however slow the machine is; the others may strike anywhere, start-up included.
        kill_once(workdir, rng, after_a_commit=attempt % 2 == 0, agent=agent)
        report.landed_after_commit += committed_timesteps(workdir, agent) > before
        episodes, found = check(workdir, agent)
        problems += [f"after kill {attempt}: {problem}" for problem in found]
        if episodes < last:
            problems.append(f"after kill {attempt}: committed episodes went back from {last} to {episodes}")
        last = episodes
    final = subprocess.run(train_command(workdir, 2), cwd=workdir, env=child_environment(), capture_output=True, text=True)
    if final.returncode != 0:
        problems.append(f"final resume failed ({final.returncode}): {final.stderr.strip()}")
    episodes, found = check(workdir, agent)
    problems += [f"after the final session: {problem}" for problem in found]
    if episodes != last + 2:
        problems.append(f"final session ended at episode {episodes}, expected {last + 2}")
    from atheria_cli.training.integrity import verify_agent

    leftovers = verify_agent(_config(workdir), agent).leftovers
    if leftovers:
        problems.append(f"uncommitted files left after a clean commit: {leftovers}")
    if chosen.compare_uninterrupted and not problems:
        problems += differences_from_uninterrupted(workdir, chosen, episodes)
    return report


def differences_from_uninterrupted(workdir: Path, profile: Profile, episodes: int) -> list[str]:
    """Train the same episodes in one session beside the killed run, and compare every episode
    record (but its seconds) and the last checkpoint, tensor for tensor."""
    straight = workdir / "uninterrupted"
    straight.mkdir(exist_ok=True)
    (straight / "faults.yaml").write_text(yaml.safe_dump(profile.config), encoding="utf-8")
    done = subprocess.run(
        train_command(straight, episodes, resume=False), cwd=straight, env=child_environment(), capture_output=True, text=True
    )
    if done.returncode != 0:
        return [f"the uninterrupted run failed ({done.returncode}): {done.stderr.strip()}"]
    killed, unkilled = _run_contents(workdir, profile.agent), _run_contents(straight, profile.agent)
    if killed[0] != unkilled[0]:
        first = next(i for i, (a, b) in enumerate(zip(killed[0], unkilled[0], strict=False)) if a != b)
        return [f"episode {first + 1} differs from the uninterrupted run: {killed[0][first]} != {unkilled[0][first]}"]
    from atheria_cli.training.exactness import first_difference

    found = first_difference(unkilled[1], killed[1])
    return [] if found is None else [f"the last checkpoint differs from the uninterrupted run's: {found}"]


def _run_contents(workdir: Path, agent: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(episode records without their seconds, the last checkpoint's state and generators)."""
    import torch

    from atheria_cli.run.layout import AgentLayout
    from atheria_cli.run.store import AgentStore

    store = AgentStore(AgentLayout.of(_config(workdir).run_dir, agent))
    history = store.history()
    records = [record.model_dump(exclude={"seconds"}) for record in store.episodes(history)]
    latest = store.metadata().latest
    assert latest is not None
    payload = torch.load(store.layout.root / latest.file, weights_only=True)
    return records, {key: payload[key] for key in ("state", "rng", "model", "loop") if key in payload}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="sac")
    args = parser.parse_args()
    started = time.monotonic()
    report = run(args.kills, args.workdir, args.seed, args.profile)
    print(
        f"{args.kills} kills in {time.monotonic() - started:.0f} s ({report.landed_after_commit} after a commit): "
        f"{len(report.problems)} problem(s)"
    )
    for problem in report.problems:
        print(f"  {problem}")
    sys.exit(1 if report.problems or not report.landed_after_commit else 0)


if __name__ == "__main__":
    main()
