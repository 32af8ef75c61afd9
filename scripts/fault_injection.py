"""Kill a real ``atheria train`` with SIGKILL at random moments, resume, and check the run.

After every kill the committed run must be intact (``atheria verify`` finds no problem) with
consecutive episode numbers; after a final clean session no uncommitted file may be left.
The test suite runs 20 kills; run more by hand:

    python scripts/fault_injection.py --kills 200 --workdir /tmp/faults
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

import yaml

CONFIG = {
    "experiment": "faults",
    "checkpoints_dir": "checkpoints",
    "device": "cpu",
    "env": {"id": "Pendulum-v1", "max_episode_steps": 30},
    "agents": {
        "SAC": {"hyperparams": {"learning_starts": 10, "batch_size": 16, "buffer_size": 500, "policy_kwargs": {"net_arch": [8]}}},
    },
    "train": {"episodes": 1, "save_every": 1, "save_every_steps": 7, "schedule_timesteps": 5000},
}


def check(workdir: Path) -> tuple[int, list[str]]:
    """(committed episodes, problems) of the run, read the way atheria reads it."""
    from atheria_cli.config import load_config
    from atheria_cli.run.layout import AgentLayout
    from atheria_cli.run.store import AgentStore, RunState
    from atheria_cli.training.integrity import verify_agent

    config = load_config(workdir / "faults.yaml", {"checkpoints_dir": str(workdir / "checkpoints")})
    store = AgentStore(AgentLayout.of(config.run_dir, "SAC"))
    if store.state() is not RunState.COMMITTED:
        return 0, []
    report = verify_agent(config, "SAC")
    history = store.history()
    numbers = [record.episode for record in store.episodes(history)]
    problems = list(report.problems)
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"episode numbers are not consecutive: {numbers}")
    return history.total_episodes, problems


def train_command(workdir: Path, episodes: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "atheria_cli",
        "train",
        "--config",
        str(workdir / "faults.yaml"),
        "--resume",
        "--episodes",
        str(episodes),
    ]


def committed_timesteps(workdir: Path) -> int:
    metadata = workdir / "checkpoints" / "faults" / "SAC" / "metadata.json"
    if not metadata.exists():
        return 0
    from atheria_cli.run.formats import read_metadata

    latest = read_metadata(metadata).latest
    return latest.timesteps if latest is not None else 0


def kill_once(workdir: Path, rng: random.Random, *, after_a_commit: bool) -> None:
    """Start a long session, wait until it trains (and, with ``after_a_commit``, until it has
    committed once), then kill it at a random moment."""
    lock = workdir / "checkpoints" / "faults" / ".SAC.lock"
    before = committed_timesteps(workdir)
    process = subprocess.Popen(train_command(workdir, 10_000), cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not lock.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    while after_a_commit and committed_timesteps(workdir) == before and process.poll() is None and time.monotonic() < deadline:
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


def run(kills: int, workdir: Path, seed: int = 0) -> FaultReport:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "faults.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    rng = random.Random(seed)
    report = FaultReport()
    problems = report.problems
    last = 0
    for attempt in range(1, kills + 1):
        before = committed_timesteps(workdir)
        # Every other kill waits for the session's first commit, so the kills strike commits in
        # progress however slow the machine is; the others may strike anywhere, start-up included.
        kill_once(workdir, rng, after_a_commit=attempt % 2 == 0)
        report.landed_after_commit += committed_timesteps(workdir) > before
        episodes, found = check(workdir)
        problems += [f"after kill {attempt}: {problem}" for problem in found]
        if episodes < last:
            problems.append(f"after kill {attempt}: committed episodes went back from {last} to {episodes}")
        last = episodes
    final = subprocess.run(train_command(workdir, 2), cwd=workdir, capture_output=True, text=True)
    if final.returncode != 0:
        problems.append(f"final resume failed ({final.returncode}): {final.stderr.strip()}")
    episodes, found = check(workdir)
    problems += [f"after the final session: {problem}" for problem in found]
    if episodes != last + 2:
        problems.append(f"final session ended at episode {episodes}, expected {last + 2}")
    from atheria_cli.config import load_config
    from atheria_cli.training.integrity import verify_agent

    config = load_config(workdir / "faults.yaml", {"checkpoints_dir": str(workdir / "checkpoints")})
    leftovers = verify_agent(config, "SAC").leftovers
    if leftovers:
        problems.append(f"uncommitted files left after a clean commit: {leftovers}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    report = run(args.kills, args.workdir, args.seed)
    print(
        f"{args.kills} kills in {time.monotonic() - started:.0f} s ({report.landed_after_commit} after a commit): "
        f"{len(report.problems)} problem(s)"
    )
    for problem in report.problems:
        print(f"  {problem}")
    sys.exit(1 if report.problems or not report.landed_after_commit else 0)


if __name__ == "__main__":
    main()
