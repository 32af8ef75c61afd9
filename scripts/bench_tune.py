"""``atheria tune``: a study killed twice and resumed ends as the uninterrupted one; driver overhead.

A small study (default: 12 trials of SAC on Pendulum-v1, 2 seeds, TPE after 4 random trials,
the median pruner) is run three ways, each in its own folder:

- **uninterrupted**: the driver in this process (imports warmed up first), timed;
- **killed twice**: ``atheria tune`` SIGKILLed once trial 2's seed 0 has committed 1 episode
  past its first segment, ``--resume`` SIGKILLed again in trial 6, then ``--resume`` to the
  end. The two studies must have the same trials (parameters, states, values, intermediate
  values) and the same best trial;
- **trials alone**: every trial of the uninterrupted study trained again as a plain
  ``atheria train`` run per seed (in-process: plan_jobs + run_jobs, one session each, the
  episodes the trial reached), no study and no segments.

Driver overhead = (uninterrupted wall - the runs' own session time) / that session time, with
the runs' session time summed from their history.json (what a session spends outside it:
planning, building and restoring the model, counts as overhead); and the uninterrupted wall
against the trials-alone wall, which pays one planning and session start per run where the
study pays one per segment.

Usage: python scripts/bench_tune.py [--trials 12] [--episodes 6] [--every 2] [--steps 200]
Prints a Markdown table and the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPOSITORY = Path(__file__).resolve().parents[1]


def study_config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "experiment": "bench",
        "device": "cpu",
        "env": {"id": "Pendulum-v1", "max_episode_steps": args.steps},
        "agents": {
            "SAC": {"hyperparams": {"buffer_size": 20_000, "learning_starts": 100, "policy_kwargs": {"net_arch": [64, 64]}}}
        },
        "train": {"eval": {"every": args.every, "episodes": 3}, "threads": 1},
        "tune": {
            "study": "bench",
            "agent": "SAC",
            "trials": args.trials,
            "episodes": args.episodes,
            "seeds": [0, 1],
            "objective": {"window": 2},
            "sampler": {"name": "tpe", "seed": 0, "startup": 4},
            "pruner": {"name": "median", "startup": 4, "warmup": args.every},
            "space": {
                "learning_rate": {"float": [1.0e-4, 3.0e-3], "log": True},
                "gamma": {"one_minus": [0.005, 0.1]},
                "batch_size": {"choice": [64, 128, 256]},
                "tau": {"float": [0.002, 0.05], "log": True},
            },
            "enqueue": [{}],
        },
    }


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")])}


def _tune(folder: Path, *options: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "atheria_cli", "tune", "--config", "exp.yaml", *options],
        cwd=folder,
        env=_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _study_dir(folder: Path) -> Path:
    return folder / "checkpoints" / "bench" / "tune" / "bench"


def _commits(folder: Path, trial: int, seed: int) -> int:
    metadata = _study_dir(folder) / f"trial_{trial:04d}" / f"seed_{seed}" / "SAC" / "metadata.json"
    try:
        return len(json.loads(metadata.read_text())["checkpoints"])
    except (OSError, ValueError, KeyError):
        return 0


def _kill_when(process: subprocess.Popen[bytes], folder: Path, trial: int, commits: int) -> bool:
    """SIGKILL the driver once trial ``trial``'s seed 0 has ``commits`` checkpoints; False when
    the study ended (or the trial was pruned before) first."""
    while process.poll() is None:
        if _commits(folder, trial, 0) >= commits:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.01)
    return False


def trials_of(folder: Path) -> dict[int, dict[str, Any]]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = JournalStorage(JournalFileBackend(str(_study_dir(folder) / "journal.log")))
    study = optuna.load_study(study_name="bench", storage=storage)
    found = {}
    for trial in study.get_trials():
        if not trial.user_attrs.get("interrupted"):
            found[trial.user_attrs["index"]] = {
                "state": trial.state.name,
                "value": trial.value,
                "params": trial.params,
                "intermediate": dict(trial.intermediate_values),
                "episodes": trial.last_step,
                "values": trial.user_attrs.get("values", {}),
            }
    return found


def best_of(trials: dict[int, dict[str, Any]]) -> int:
    complete = {index: trial["value"] for index, trial in trials.items() if trial["state"] == "COMPLETE"}
    return max(complete, key=lambda index: (complete[index], -index))  # Pendulum's reward: higher is better


def session_seconds(folder: Path) -> float:
    total = 0.0
    for history in _study_dir(folder).glob("trial_*/seed_*/SAC/history.json"):
        total += sum(session["duration_seconds"] for session in json.loads(history.read_text())["trainings"])
    return total


def uninterrupted_study(folder: Path) -> float:
    """Run the study in this process (its imports already warm, like the trials alone after it)."""
    from atheria_cli.config import load_config
    from atheria_cli.tune.driver import plan_study, run_study
    from atheria_cli.tune.trials import Pool

    cwd = os.getcwd()
    os.chdir(folder)
    try:
        config = load_config(Path("exp.yaml"))
        started = time.perf_counter()
        outcome = run_study(plan_study(config, resume=False), pool=Pool(jobs=1), observer=_Quiet(), train_observer=_Quiet())
        assert outcome.exit_code == 0
        return time.perf_counter() - started
    finally:
        os.chdir(cwd)


def _warm_up() -> None:
    """Import what both timed parts use, so neither pays for the imports."""
    import optuna  # noqa: F401

    import atheria_cli.training.jobs  # noqa: F401
    import atheria_cli.tune.driver  # noqa: F401


def trials_alone(config: dict[str, Any], trials: dict[int, dict[str, Any]], root: Path) -> float:
    """Train each trial's values per seed as a plain run, one session to the episodes it reached."""
    from atheria_cli.config import ExperimentConfig
    from atheria_cli.training.jobs import plan_jobs, run_jobs
    from atheria_cli.tune.space import with_values

    base = ExperimentConfig.model_validate(config)
    assert base.tune is not None
    started = time.perf_counter()
    for index, trial in sorted(trials.items()):
        entry = with_values(base.agents["SAC"], trial["values"])
        document = {**{key: value for key, value in config.items() if key != "tune"}, "checkpoints_dir": str(root)}
        document.update(experiment=f"alone_{index}", seeds=list(base.tune.seeds), agents={"SAC": entry.model_dump(mode="json")})
        plan = plan_jobs(ExperimentConfig.model_validate(document), jobs=1, episodes=trial["episodes"])
        run_jobs(plan, _Quiet())
    return time.perf_counter() - started


class _Quiet:
    def trial_started(self, *args: object) -> None: ...
    def trial_finished(self, *args: object) -> None: ...
    def agent_started(self, *args: object) -> None: ...
    def episode_finished(self, *args: object) -> None: ...
    def checkpoint_committed(self, *args: object) -> None: ...
    def resources(self, *args: object) -> None: ...
    def agent_finished(self, *args: object) -> None: ...
    def evaluation_finished(self, *args: object) -> None: ...
    def warn(self, message: str) -> None: ...


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200, help="Pendulum's max_episode_steps")
    args = parser.parse_args()
    config = study_config(args)
    _warm_up()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        uninterrupted, killed = Path(scratch, "uninterrupted"), Path(scratch, "killed")
        for folder in (uninterrupted, killed):
            folder.mkdir()
            (folder / "exp.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        study_wall = uninterrupted_study(uninterrupted)
        reference = trials_of(uninterrupted)

        kills = 0
        kills += _kill_when(_tune(killed), killed, trial=2, commits=args.every + 1)
        kills += _kill_when(_tune(killed, "--resume"), killed, trial=min(6, args.trials - 1), commits=1)
        assert _tune(killed, "--resume").wait() == 0
        resumed = trials_of(killed)

        inside = session_seconds(uninterrupted)
        alone_wall = trials_alone(config, reference, Path(scratch, "alone"))
    load_after = os.getloadavg()
    same = resumed == reference
    print("| study | trials | kills that landed | same trials (params, states, values) | same best | best trial | value |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| SAC Pendulum-v1 ({args.steps} steps), 2 seeds, {args.episodes} episodes, eval every {args.every} "
        f"| {len(reference)} | {kills} | {'yes' if same else 'NO'} | {'yes' if best_of(resumed) == best_of(reference) else 'NO'} "
        f"| {best_of(reference)} | {reference[best_of(reference)]['value']:.2f} |"
    )
    print()
    print("| uninterrupted study wall | runs' own session time | driver overhead | trials alone wall | study / trials alone |")
    print("|---|---|---|---|---|")
    print(
        f"| {study_wall:.1f} s | {inside:.1f} s | {(study_wall - inside) / inside * 100:.1f} % "
        f"| {alone_wall:.1f} s | {study_wall / alone_wall:.3f} |"
    )
    print()
    states = [trial["state"] for trial in reference.values()]
    print(f"states: {states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, {states.count('FAIL')} failed")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {load_before[0]:.1f} -> {load_after[0]:.1f}"
    )
    if not same:
        for index in sorted(set(reference) | set(resumed)):
            if reference.get(index) != resumed.get(index):
                print(f"trial {index}: uninterrupted {reference.get(index)} vs resumed {resumed.get(index)}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
