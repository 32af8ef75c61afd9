"""Fuzz ``atheria train`` with mutated configs: bad input is exit 2, one line, nothing written.

Each case takes one of a few tiny experiments, applies one to three mutations (a key deleted,
renamed or added, a value replaced by a wrong type or a hostile one: unicode, huge and
non-finite numbers, negatives, nested lists, empty strings, ``../`` paths) and runs
``atheria train --episodes 1`` in-process on it, from an empty folder of its own. Every run
must exit 0 or 2; on 2, stderr is exactly one ``atheria: error:`` line, no traceback, and the
case's folder holds only the config (``../`` paths land inside it too). Two outcomes of a valid
config are counted, not failed: a training that diverges (exit 1 with one "training diverged"
line: found while training, not at planning) and one that runs past ``--timeout`` seconds. The test suite
runs a few dozen cases; run more by hand:

    python scripts/fuzz_config.py --cases 500 --seed 0 --workdir /tmp/fuzz
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import random
import signal
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

NET = {"net_arch": [8]}
BASES: list[dict[str, Any]] = [
    {
        "experiment": "fuzz",
        "checkpoints_dir": "checkpoints",
        "seed": 0,
        "device": "cpu",
        "env": {"id": "CartPole-v1", "max_episode_steps": 10},
        "agents": {
            "PPO": {"hyperparams": {"n_steps": 8, "batch_size": 8, "n_epochs": 1, "policy_kwargs": dict(NET)}},
            "DQN": {
                "hyperparams": {
                    "learning_starts": 5,
                    "batch_size": 8,
                    "buffer_size": 100,
                    "train_freq": 4,
                    "target_update_interval": 10,
                    "policy_kwargs": dict(NET),
                }
            },
        },
        "train": {"episodes": 1, "save_every": 1, "schedule_timesteps": 1000},
    },
    {
        "experiment": "fuzz",
        "checkpoints_dir": "checkpoints",
        "seed": 1,
        "device": "cpu",
        "env": {"id": "Pendulum-v1", "max_episode_steps": 10},
        "agents": {
            "A2C": {"hyperparams": {"n_steps": 5, "learning_rate": 0.001, "policy_kwargs": dict(NET)}},
            "SAC": {
                "hyperparams": {
                    "learning_starts": 5,
                    "batch_size": 8,
                    "buffer_size": 100,
                    "train_freq": [1, "episode"],
                    "policy_kwargs": dict(NET),
                }
            },
        },
        "train": {"episodes": 1, "save_every": 1, "schedule_timesteps": 1000, "keep": {"last": 1}},
    },
    {
        "experiment": "fuzz",
        "checkpoints_dir": "checkpoints",
        "seed": 2,
        "device": "cpu",
        "baseline": {"co2_kg": 550},
        "env": {
            "id": "atheria/BuildingCO2-v0",
            "kwargs": {"days": 1},
            "max_episode_steps": 12,
            "normalize": True,
            "metrics": [{"name": "co2_kg", "goal": "min"}],
        },
        "agents": {"A2C": {"hyperparams": {"n_steps": 6, "gamma": 0.95, "policy_kwargs": {"net_arch": [8, 8]}}}},
        "train": {
            "episodes": 1,
            "save_every": 1,
            "schedule_timesteps": 1000,
            "keep": {"best": 1, "metric": "co2_kg"},
            "eval": {"every": 1, "episodes": 1},
        },
    },
]

HOSTILE: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    -0.0,
    10**30,
    -(10**30),
    2**63,
    math.nan,
    math.inf,
    -math.inf,
    "",
    " ",
    "💥",
    "ünïcödé ✓",
    "../escape",
    "../../escape",
    "a/b",
    ".hidden",
    "1e-3",
    "null",
    "\x00",
    "x" * 2000,
    [],
    [1, 2],
    [[1], [2]],
    [None],
    ["💥"],
    {},
    {"a": 1},
    {"": None},
    {"💥": [1]},
    {1: 2},
]

# Fields worth hitting by name (the generic mutations reach the others). Trackers, the Ray
# backend and its address are left out: they would reach the network or start a cluster.
FIELDS = [
    "experiment",
    "checkpoints_dir",
    "seed",
    "seeds",
    "device",
    "baseline",
    "env.id",
    "env.kwargs",
    "env.max_episode_steps",
    "env.n_envs",
    "env.normalize",
    "env.normalize_kwargs",
    "env.frame_stack",
    "env.metrics",
    "train.episodes",
    "train.save_every",
    "train.save_every_steps",
    "train.schedule_timesteps",
    "train.until_timesteps",
    "train.max_hours",
    "train.keep",
    "train.keep.best",
    "train.keep.metric",
    "train.mirror",
    "train.mirror.to",
    "train.eval",
    "train.eval.every",
    "train.threads",
    "train.allow_import",
    "train.tensorboard",
]
AGENT_FIELDS = ["algo", "policy", "seed", "zoo", "env", "env.n_envs", "env.frame_stack", "schedule_timesteps", "hyperparams"]
HYPERPARAMS = [
    "learning_rate",
    "buffer_size",
    "batch_size",
    "n_steps",
    "n_epochs",
    "gamma",
    "gae_lambda",
    "ent_coef",
    "vf_coef",
    "max_grad_norm",
    "clip_range",
    "tau",
    "train_freq",
    "gradient_steps",
    "learning_starts",
    "target_update_interval",
    "exploration_fraction",
    "optimize_memory_usage",
    "use_sde",
    "sde_sample_freq",
    "target_kl",
    "stats_window_size",
    "action_noise",
    "policy_kwargs",
    "policy_kwargs.net_arch",
    "policy_kwargs.activation_fn",
    "policy_kwargs.optimizer_class",
    "policy_kwargs.optimizer_kwargs",
    "policy_kwargs.log_std_init",
    "policy_kwargs.ortho_init",
    "policy_kwargs.n_critics",
    "policy_kwargs.net_archx",
]


@dataclass
class Outcome:
    case: int
    mutations: list[str]
    exit_code: int | None
    stderr: str
    problem: str | None = None  # why the case broke the promise; None when it kept it
    timed_out: bool = False
    diverged: bool = False  # exit 1: training went NaN, reported in one line


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failures(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.problem is not None]

    def counts(self) -> Counter[str]:
        return Counter(
            "failed" if o.problem else "timed out" if o.timed_out else "diverged" if o.diverged else f"exit {o.exit_code}"
            for o in self.outcomes
        )


# --- mutations ----------------------------------------------------------------------------------


def _mappings(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], dict[Any, Any]]]:
    """Every mapping in the config with its path (lists are walked too)."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _mappings(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _mappings(value, (*path, index))


def _typo(key: str, rng: random.Random) -> str:
    if len(key) > 1 and rng.random() < 0.4:
        index = rng.randrange(len(key))
        return key[:index] + key[index + 1 :]  # a letter dropped
    if len(key) > 1 and rng.random() < 0.5:
        index = rng.randrange(len(key) - 1)
        return key[:index] + key[index + 1] + key[index] + key[index + 2 :]  # two swapped
    return rng.choice([key + "x", key.upper(), key + "_", "_" + key])


def _hostile(rng: random.Random) -> Any:
    return copy.deepcopy(rng.choice(HOSTILE))


def _set_path(config: dict[str, Any], dotted: str, value: Any) -> None:
    node = config
    *parents, last = dotted.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value


def _delete(config: dict[str, Any], rng: random.Random) -> str:
    path, mapping = rng.choice([item for item in _mappings(config) if item[1]])
    key = rng.choice(list(mapping))
    del mapping[key]
    return f"delete {'.'.join(map(str, (*path, key)))}"


def _rename(config: dict[str, Any], rng: random.Random) -> str:
    path, mapping = rng.choice([item for item in _mappings(config) if item[1]])
    key = rng.choice(list(mapping))
    new = _typo(str(key), rng)
    mapping[new] = mapping.pop(key)
    return f"rename {'.'.join(map(str, (*path, key)))} -> {new}"


def _unknown(config: dict[str, Any], rng: random.Random) -> str:
    path, mapping = rng.choice(list(_mappings(config)))
    key = rng.choice(["unknown", "💥", "", "policy_kwargs", "hyperparams", "net_arch", "x" * 300])
    mapping[key] = value = _hostile(rng)
    return f"add {'.'.join(map(str, (*path, key)))} = {value!r:.60}"


def _replace(config: dict[str, Any], rng: random.Random) -> str:
    path, mapping = rng.choice([item for item in _mappings(config) if item[1]])
    key = rng.choice(list(mapping))
    mapping[key] = value = _hostile(rng)
    return f"set {'.'.join(map(str, (*path, key)))} = {value!r:.60}"


def _field(config: dict[str, Any], rng: random.Random) -> str:
    dotted = rng.choice(FIELDS)
    _set_path(config, dotted, value := _hostile(rng))
    return f"set {dotted} = {value!r:.60}"


def _agent_field(config: dict[str, Any], rng: random.Random) -> str:
    agents = config.get("agents")
    if not isinstance(agents, dict) or not agents or not all(isinstance(a, dict) for a in agents.values()):
        return _field(config, rng)
    name = rng.choice(list(agents))
    dotted = rng.choice(AGENT_FIELDS + [f"hyperparams.{key}" for key in HYPERPARAMS] * 3)
    _set_path(agents[name], dotted, value := _hostile(rng))
    return f"set agents.{name}.{dotted} = {value!r:.60}"


MUTATIONS: list[Callable[[dict[str, Any], random.Random], str]] = [
    _delete,
    _rename,
    _unknown,
    _replace,
    _field,
    _agent_field,
    _agent_field,
]


def mutated_config(rng: random.Random) -> tuple[Any, list[str]]:
    config: Any = copy.deepcopy(rng.choice(BASES))
    applied = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        if not isinstance(config, dict) or not any(mapping for _, mapping in _mappings(config)):
            break
        applied.append(rng.choice(MUTATIONS)(config, rng))
    if rng.random() < 0.02:
        config = _hostile(rng)  # the whole document: a list, a string, null
        applied.append(f"document = {config!r:.60}")
    return config, applied


# --- running one case -------------------------------------------------------------------------


class _TimedOut(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _TimedOut


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def run_case(case: int, config: Any, mutations: list[str], folder: Path, timeout: float) -> Outcome:
    """Run ``atheria train --episodes 1`` on ``config`` from ``folder/work`` and judge it."""
    from typer.testing import CliRunner

    from atheria_cli.cli import app

    work = folder / "work"
    work.mkdir(parents=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    before = _files(folder)
    cwd = Path.cwd()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        os.chdir(work)
        result = CliRunner().invoke(app, ["train", "--config", str(path), "--episodes", "1"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(cwd)
    outcome = Outcome(case, mutations, result.exit_code, result.stderr)
    if isinstance(result.exception, _TimedOut):
        outcome.timed_out, outcome.exit_code = True, None
    elif result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        outcome.problem = f"exception {type(result.exception).__name__}: {trace[-1500:]}"
    elif result.exit_code == 2:
        outcome.problem = _bad_input_problem(result.stdout, result.stderr, before, _files(folder))
    elif result.exit_code == 1 and _diverged(result.stderr):
        outcome.diverged = True
    elif result.exit_code != 0:
        outcome.problem = f"exit {result.exit_code}"
    return outcome


def _diverged(stderr: str) -> bool:
    """A valid config whose training went NaN: one error line at the end, no traceback (exit 1:
    a run failure, not bad input; the agents before it may have committed)."""
    errors = [line for line in stderr.splitlines() if line.startswith("atheria: error: ")]
    return "Traceback" not in stderr and len(errors) == 1 and ": training diverged in episode " in errors[0]


def _bad_input_problem(stdout: str, stderr: str, before: list[str], after: list[str]) -> str | None:
    lines = stderr.splitlines()
    if "Traceback" in stdout + stderr:
        return "a traceback on exit 2"
    if len(lines) != 1 or not stderr.endswith("\n") or not lines[0].startswith("atheria: error: "):
        return f"exit 2 without exactly one 'atheria: error:' line ({len(lines)} lines)"
    if after != before:
        return f"exit 2 but wrote {sorted(set(after) - set(before))[:8]}"
    return None


def run(cases: int, seed: int, workdir: Path, *, timeout: float = 30.0, progress: bool = False) -> Report:
    """``cases`` seeded cases under ``workdir`` (one folder each, removed when the case passes)."""
    import shutil

    os.environ.setdefault("WANDB_MODE", "disabled")  # no mutation reaches the network
    rng = random.Random(seed)
    report = Report()
    for case in range(cases):
        config, mutations = mutated_config(rng)
        folder = workdir / f"case_{case:04d}"
        outcome = run_case(case, config, mutations, folder, timeout)
        report.outcomes.append(outcome)
        if outcome.problem is None:
            shutil.rmtree(folder, ignore_errors=True)
        if progress:
            status = "FAIL" if outcome.problem else "timeout" if outcome.timed_out else f"exit {outcome.exit_code}"
            status += f": {outcome.stderr.strip().splitlines()[-1][:160]}" if outcome.exit_code and outcome.stderr.strip() else ""
            print(f"case {case}: {status}: {'; '.join(mutations)}", file=sys.stderr, flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a valid case is stopped")
    parser.add_argument("--verbose", action="store_true", help="one line per case")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="atheria-fuzz-"))
    report = run(args.cases, args.seed, workdir, timeout=args.timeout, progress=args.verbose)
    counts = report.counts()
    print(f"{len(report.outcomes)} cases: " + ", ".join(f"{count} {name}" for name, count in sorted(counts.items())))
    for outcome in report.failures:
        print(f"\ncase {outcome.case} ({workdir / f'case_{outcome.case:04d}'}): {'; '.join(outcome.mutations)}")
        print(f"  {outcome.problem}")
        print(f"  stderr: {outcome.stderr.strip()[-600:]}")
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
