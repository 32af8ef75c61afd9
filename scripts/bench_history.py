"""Latency of ``atheria history`` (and status, compare) on a long run.

Builds two synthetic runs on disk with atheria's own writers, ``--episodes`` episodes in
``--sessions`` sessions and a 5-episode one, each committed with :meth:`AgentStore.commit`,
every episode checkpointed (``save_every: 1``, the default, so ``metadata.json`` lists one
entry per episode; the checkpoint files are a few bytes each), one configured metric. Then
times ``history``, ``status`` and ``compare`` on each, end to end as subprocesses of the
console script (Python start-up and imports included), against ``python -c pass`` and against a
bare Typer command on the same stack (Typer and its pydantic coercion, PyYAML, one Rich table:
the floor of any reading command): the median of ``--repeats`` rounds in which every command
runs once (alternating), after a warm-up round; and the in-process core of ``atheria history``
on the long run (reading and validating the JSON files; then sessions, episode rows and
convergence).

Usage: python scripts/bench_history.py [--episodes 10000] [--sessions 20] [--repeats 11]
Prints a Markdown table (docs/benchmarks.md holds the measured one).
"""

from __future__ import annotations

import argparse
import itertools
import os
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
SHORT_EPISODES = 5  # a run as a new user first inspects it
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


# The stack every reading command stands on, without atheria: a Typer command with one string
# option (Typer 0.29 coerces every non-flag option through a pydantic TypeAdapter, so pydantic is
# imported whatever atheria does), that parses the config with PyYAML and draws one 5-row Rich table.
FLOOR_COMMAND = """
import sys, typer, yaml
from rich.console import Console
from rich.table import Table
app = typer.Typer()
@app.command()
def main(config: str = typer.Option(...)) -> None:
    with open(config, encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    table = Table("episode", "reward")
    for number in range(1, 6):
        table.add_row(str(number), f"{number * 1.5:.2f}")
    Console().print(document["experiment"], table)
sys.argv[0] = "floor"
app()
"""
# The same with atheria's own start-up measures (atheria_cli/cli/__init__.py): the collector off
# during start-up and pydantic's plugin scan skipped.
TUNED_FLOOR_COMMAND = (
    """
import gc, os
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
gc.disable()
"""
    + FLOOR_COMMAND
)


def atheria_command() -> list[str]:
    script = Path(sys.executable).parent / "atheria"
    return [str(script)] if script.exists() else [sys.executable, "-m", "atheria_cli"]


def child_env() -> dict[str, str]:
    """This environment, less PYTHONDONTWRITEBYTECODE: an installed package has its bytecode
    cached (pip compiles it), so the warm-up run writes the caches a user's machine has."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def timed(args: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``args``, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env=child_env())
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def time_alternating(commands: dict[str, list[str]], repeats: int) -> dict[str, list[tuple[float, float]]]:
    """Every command once per round, ``repeats`` rounds after a warm-up round (file cache,
    bytecode caches): a burst of load on a shared machine then falls on every command alike."""
    for args in commands.values():
        timed(args)
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in commands}
    for _ in range(repeats):
        for label, args in commands.items():
            runs[label].append(timed(args))
    return runs


def table_rows(runs: dict[str, list[tuple[float, float]]], targets: dict[str, str], floor: str) -> list[str]:
    """Markdown rows: wall median, min and max, CPU median, the wall median over the floor's."""
    floor_wall = statistics.median(wall for wall, _ in runs[floor])
    rows = []
    for label, measured in runs.items():
        wall = sorted(run[0] * 1000 for run in measured)
        cpu = statistics.median(run[1] * 1000 for run in measured)
        ratio = statistics.median(run[0] for run in measured) / floor_wall
        rows.append(
            f"| {label} | {statistics.median(wall):.0f} | {wall[0]:.0f} | {wall[-1]:.0f} | {cpu:.0f} | {ratio:.1f}× | {targets.get(label, '–')} |"
        )
    return rows


TABLE_HEADER = [
    "| what | wall median ms | wall min ms | wall max ms | CPU median ms | × `python -c pass` | target (wall median) |",
    "|---|---:|---:|---:|---:|---:|---|",
]


def load_average() -> str:
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


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


def core_row(label: str, seconds: list[float]) -> str:
    ms = sorted(value * 1000 for value in seconds)
    return f"| {label} | {statistics.median(ms):.0f} | {ms[0]:.0f} | {ms[-1]:.0f} | – | – | – |"


def build(root: Path, episodes: int, sessions: int) -> Path:
    root.mkdir(parents=True)
    config_path = write_config(root)
    build_run(config_path, episodes, sessions)
    return config_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=11)
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="atheria-bench-"))
    try:
        started = time.perf_counter()
        long_run = build(root / "long", options.episodes, options.sessions)
        short_run = build(root / "short", SHORT_EPISODES, 1)
        built = time.perf_counter() - started
        folder = root / "long" / "checkpoints" / "bench" / AGENT
        base = atheria_command()
        commands = {
            "`python -c pass`": [sys.executable, "-c", "pass"],
            "floor: a bare Typer command (one option, PyYAML, a Rich table)": [
                sys.executable,
                "-c",
                FLOOR_COMMAND,
                "--config",
                str(short_run),
            ],
            "the same floor, with atheria's gc and pydantic-plugin start-up measures": [
                sys.executable,
                "-c",
                TUNED_FLOOR_COMMAND,
                "--config",
                str(short_run),
            ],
        }
        targets = {}
        for episodes, config_path in ((options.episodes, long_run), (SHORT_EPISODES, short_run)):
            cfg = ["--config", str(config_path)]
            for name, args in (("history", ["history", AGENT]), ("status", ["status"]), ("compare", ["compare"])):
                label = f"`atheria {name}`, {episodes:,} episodes"
                commands[label] = [*base, *args, *cfg]
                targets[label] = "≤ 300 ms (≤ 10× python)" if episodes > SHORT_EPISODES else "≤ 200 ms"
        print(
            f"{options.episodes:,} episodes in {options.sessions} sessions, one checkpoint entry per episode; "
            f"episodes.jsonl {(folder / 'episodes.jsonl').stat().st_size / 1e6:.1f} MB, "
            f"metadata.json {(folder / 'metadata.json').stat().st_size / 1e6:.1f} MB (built in {built:.1f} s); "
            f"and a {SHORT_EPISODES}-episode run"
        )
        print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")
        print(f"load average before: {load_average()}\n")
        print("\n".join(TABLE_HEADER))
        runs = time_alternating(commands, options.repeats)
        print("\n".join(table_rows(runs, targets, "`python -c pass`")), flush=True)
        whole, reading = time_core(long_run, options.repeats)
        print(core_row(f"core in-process, {options.episodes:,} episodes: read and validate the run's JSON", reading))
        print(core_row(f"core in-process, {options.episodes:,} episodes: read + sessions, rows, convergence", whole))
        print(f"\nload average after: {load_average()}; medians of {options.repeats} alternating rounds")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
