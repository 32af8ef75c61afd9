"""Latency of ``atheria history`` (and status, compare) on a long run.

Builds a synthetic run on disk with atheria's own writers: ``--sessions`` sessions committed
with :meth:`AgentStore.commit`, every episode checkpointed (``save_every: 1``, the default, so
``metadata.json`` lists one entry per episode; the checkpoint files are a few bytes each), one
configured metric. Then times each command end to end as a subprocess (Python start-up and
imports included; median of ``--repeats`` runs) and the in-process core of ``atheria history``
(reading and validating the JSON files, computing sessions, episode rows and convergence).

Usage: python scripts/bench_history.py [--episodes 10000] [--sessions 20] [--repeats 7]
Prints a Markdown table (docs/benchmarks.md holds the measured one).
"""

from __future__ import annotations

import argparse
import itertools
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from atheria_cli.config import load_config
from atheria_cli.reports.history import build_history, history_report
from atheria_cli.reports.runs import read_run
from atheria_cli.run.atomic import atomic_write_bytes
from atheria_cli.run.formats import CheckpointEntry, EpisodeRecord, History, Metadata, SessionRecord
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.store import AgentStore, file_sha256, now_iso

AGENT = "PPO"
STEPS_PER_EPISODE = 200
FAKE_CHECKPOINT = b"not a real checkpoint: the inspection commands never open one\n"


def write_config(root: Path) -> Path:
    config = {
        "experiment": "bench",
        "checkpoints_dir": str(root / "checkpoints"),
        "device": "cpu",
        "env": {"id": "Pendulum-v1", "metrics": [{"name": "co2_kg", "goal": "min"}]},
        "agents": {AGENT: {}},
        "baseline": {"co2_kg": 550},
    }
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def episode(number: int, rng: random.Random) -> EpisodeRecord:
    progress = number / 10_000
    return EpisodeRecord(
        episode=number,
        timesteps=number * STEPS_PER_EPISODE,
        reward=-1200 + 900 * progress + rng.gauss(0, 60),
        length=STEPS_PER_EPISODE,
        seconds=1.2 + rng.random() * 0.2,
        metrics={"co2_kg": 550 - 280 * progress + rng.gauss(0, 15)},
    )


def build_run(config_path: Path, episodes: int, sessions: int) -> None:
    """Commit ``sessions`` sessions through the store, one checkpoint entry per episode."""
    config = load_config(config_path)
    store = AgentStore(AgentLayout.of(config.run_dir, AGENT))
    history = History(agent=AGENT)
    metadata = Metadata(
        agent=AGENT,
        algo=AGENT,
        policy="MlpPolicy",
        env_id=config.env.id,
        experiment=config.experiment,
        last_episode=0,
        total_timesteps=0,
        device="cpu",
        hyperparams={},
        versions={},
        created=now_iso(),
        updated=now_iso(),
    )
    rng = random.Random(0)
    bounds = [round(episodes * index / sessions) for index in range(sessions + 1)]
    for start, end in itertools.pairwise(bounds):
        records = [episode(number, rng) for number in range(start + 1, end + 1)]
        for record in records[:-1]:  # save_every: 1 checkpoints every episode; commit() writes the last
            metadata.checkpoints.append(_checkpoint(store, record))
        history.trainings.append(
            SessionRecord(
                session_timestamp=now_iso(),
                start_episode=start + 1,
                end_episode=end,
                episodes_count=end - start,
                device="cpu",
                duration_seconds=sum(record.seconds for record in records),
                start_timesteps=start * STEPS_PER_EPISODE,
                end_timesteps=end * STEPS_PER_EPISODE,
            )
        )
        history.total_episodes = end
        metadata.last_episode, metadata.total_timesteps = end, end * STEPS_PER_EPISODE
        store.commit(
            checkpoint_bytes=FAKE_CHECKPOINT,
            entry_episode=end,
            timesteps=end * STEPS_PER_EPISODE,
            history=history,
            metadata=metadata,
            run_config=None,
            new_episodes=records,
        )


def _checkpoint(store: AgentStore, record: EpisodeRecord) -> CheckpointEntry:
    path = store.layout.checkpoint(record.episode)
    atomic_write_bytes(path, FAKE_CHECKPOINT)
    return CheckpointEntry(
        file=path.name,
        episode=record.episode,
        timesteps=record.timesteps,
        size=len(FAKE_CHECKPOINT),
        sha256=file_sha256(path),
        created=now_iso(),
    )


def atheria_command() -> list[str]:
    script = Path(sys.executable).parent / "atheria"
    return [str(script)] if script.exists() else [sys.executable, "-m", "atheria_cli"]


def time_command(args: list[str], repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of each run; the first run, warming the file cache,
    is not counted. CPU time is what to compare across machines that are busy with other work."""
    subprocess.run(args, check=True, capture_output=True)
    wall, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, cpu


def time_core(config_path: Path, repeats: int) -> tuple[list[float], list[float]]:
    """In-process seconds of the whole core (history_report) and of its read step alone."""
    config = load_config(config_path)
    history_report(config, AGENT)  # warm the file cache and pydantic's validators
    whole, reading = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        run = read_run(config, AGENT)
        read_done = time.perf_counter()
        build_history(config, run)
        whole.append(time.perf_counter() - started)
        reading.append(read_done - started)
    return whole, reading


def row(label: str, wall: list[float], cpu: list[float] | None = None) -> str:
    ms = [value * 1000 for value in wall]
    cpu_ms = f"{statistics.median(cpu) * 1000:.0f}" if cpu else "–"
    return f"| {label} | {statistics.median(ms):.0f} | {min(ms):.0f} | {max(ms):.0f} | {cpu_ms} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="atheria-bench-"))
    try:
        config_path = write_config(root)
        started = time.perf_counter()
        build_run(config_path, options.episodes, options.sessions)
        built = time.perf_counter() - started
        folder = root / "checkpoints" / "bench" / AGENT
        base = [*atheria_command()]
        cfg = ["--config", str(config_path)]
        commands = {
            "`atheria --version` (start-up floor)": [*base, "--version"],
            "`atheria history PPO`": [*base, "history", AGENT, *cfg],
            "`atheria history PPO --json`": [*base, "history", AGENT, *cfg, "--json"],
            "`atheria history PPO --csv FILE`": [*base, "history", AGENT, *cfg, "--csv", str(root / "episodes.csv")],
            "`atheria status`": [*base, "status", *cfg],
            "`atheria compare`": [*base, "compare", *cfg],
        }
        print(
            f"{options.episodes} episodes in {options.sessions} sessions, one checkpoint entry per episode; "
            f"episodes.jsonl {(folder / 'episodes.jsonl').stat().st_size / 1e6:.1f} MB, "
            f"metadata.json {(folder / 'metadata.json').stat().st_size / 1e6:.1f} MB (built in {built:.1f} s)"
        )
        print(f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, {platform.platform()}\n")
        print("| what | wall median ms | wall min ms | wall max ms | CPU median ms |")
        print("|---|---:|---:|---:|---:|")
        for label, args in commands.items():
            print(row(label, *time_command(args, options.repeats)), flush=True)
        whole, reading = time_core(config_path, options.repeats)
        print(row("core in-process: read and validate the run's JSON", reading))
        print(row("core in-process: read + sessions, episode rows, convergence", whole))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
