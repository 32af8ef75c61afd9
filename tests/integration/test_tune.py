"""`atheria tune` on a real Optuna study of tiny A2C runs: the report, a kill -9 of the driver
and its resume, the pruner, best.yaml, and a resume with a changed space."""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from atheria_cli.cli import app
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.store import AgentStore
from tests.conftest import write_config
from tests.integration.helpers import REPOSITORY, RecordingObserver
from tests.integration.test_jobs import assert_same_run

pytestmark = pytest.mark.integration
runner = CliRunner()

# co2_kg (goal min) of EmissionsEnv: 20-step episodes, one evaluation every 2 episodes.
STUDY: dict[str, Any] = {
    "experiment": "tuned",
    "device": "cpu",
    "env": {"id": "tests.envs:EmissionsEnv", "metrics": [{"name": "co2_kg", "goal": "min"}]},
    "agents": {"A2C": {"hyperparams": {"n_steps": 5, "policy_kwargs": {"net_arch": [8]}}}},
    "train": {"eval": {"every": 2, "episodes": 2}, "threads": 1},
    "tune": {
        "study": "lr",
        "agent": "A2C",
        "trials": 3,
        "episodes": 4,
        "seeds": [0, 1],
        "objective": {"metric": "co2_kg", "window": 2},
        "sampler": {"name": "tpe", "seed": 3, "startup": 2},
        "pruner": {"name": "none"},
        "space": {
            "learning_rate": {"float": [1.0e-5, 1.0e-1], "log": True},
            "gamma": {"one_minus": [0.001, 0.1]},
            "policy_kwargs.net_arch": {"choice": {"small": [8], "wide": [16]}},
        },
        "enqueue": [{}],
        "final": {"seeds": [100, 101], "episodes": 4},
    },
}
STUDY_DIR = Path("checkpoints/tuned/tune/lr")


def _invoke(folder: Path, *options: str) -> Any:
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return runner.invoke(app, ["tune", "--config", "exp.yaml", *options])
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study run once, uninterrupted: the reference of the tests below."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    write_config(folder / "exp.yaml", STUDY)
    result = _invoke(folder)
    assert result.exit_code == 0, result.output
    return folder


def _trials(folder: Path) -> dict[int, dict[str, Any]]:
    """Each trial index's final attempt: state, value, values, intermediate values (the journal's view)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(folder / STUDY_DIR / "journal.log")))
    study = optuna.load_study(study_name="lr", storage=storage)
    trials = {}
    for trial in study.get_trials():
        assert trial.state.name != "RUNNING", f"trial {trial.number} is still RUNNING"
        if trial.user_attrs.get("interrupted"):
            continue
        trials[trial.user_attrs["index"]] = {
            "state": trial.state.name,
            "value": trial.value,
            "params": trial.params,
            "intermediate": trial.intermediate_values,
        }
    return trials


def _run(folder: Path, index: int, seed: int) -> AgentStore:
    return AgentStore(AgentLayout.of(folder / STUDY_DIR / f"trial_{index:04d}" / f"seed_{seed}", "A2C"))


def _episodes(store: AgentStore) -> list[tuple[int, float, dict[str, float]]]:
    return [(record.episode, record.reward, record.metrics) for record in store.episodes(store.history())]


def test_a_study_finishes_and_writes_its_report(finished: Path) -> None:
    study = finished / STUDY_DIR
    assert sorted(path.name for path in study.iterdir() if path.name != "final") == [  # --final may have run
        "best.yaml",
        "history.png",
        "importance.png",
        "journal.log",
        "trial_0000",
        "trial_0001",
        "trial_0002",
        "trials.csv",
        "tune.json",
    ]
    for image in ("history.png", "importance.png"):
        assert (study / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trials = _trials(finished)
    assert sorted(trials) == [0, 1, 2] and all(trial["state"] == "COMPLETE" for trial in trials.values())
    assert trials[0]["params"] == {}  # enqueue: [{}] is the base entry unchanged
    for index, trial in trials.items():
        # Each trial is an ordinary run per seed; its value is the mean over seeds of the mean
        # co2_kg of its last 2 committed evaluations, read here straight from history.json.
        per_seed = []
        for seed in (0, 1):
            store = _run(finished, index, seed)
            assert store.metadata().latest.episode == 4
            evaluations = store.history().evaluations
            assert [item.episode for item in evaluations] == [2, 4]
            per_seed.append(sum(item.metrics["co2_kg"].mean for item in evaluations) / 2)
            hyperparams = store.metadata().hyperparams
            if "learning_rate" in trial["params"]:
                assert hyperparams["learning_rate"] == trial["params"]["learning_rate"]
                assert hyperparams["gamma"] == 1.0 - trial["params"]["gamma"]
        assert trial["value"] == pytest.approx(sum(per_seed) / 2, rel=1e-12)
        assert sorted(trial["intermediate"]) == [2, 4]
    rows = (study / "trials.csv").read_text().splitlines()
    assert rows[0].split(",")[:5] == ["number", "trial", "state", "value", "episodes"] and len(rows) == 4
    best = min(trials, key=lambda index: trials[index]["value"])
    header = (study / "best.yaml").read_text().splitlines()[0]
    assert header.startswith(f"# atheria tune: study lr, trial {best} (trial_{best:04d}")


def test_the_terminal_table_marks_the_best_trial(finished: Path) -> None:
    result = _invoke(finished, "--report")
    assert result.exit_code == 0, result.output
    assert "study lr: co2_kg (min), mean of the last 2 evaluation(s) over seeds 0, 1" in result.stdout
    trials = _trials(finished)
    best = min(trials, key=lambda index: trials[index]["value"])
    assert any(line.startswith(f"│ {best} ★") for line in result.stdout.splitlines()), result.stdout


def test_best_yaml_trains_as_it_is(finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pasted = yaml.safe_load((finished / STUDY_DIR / "best.yaml").read_text())
    config = {key: value for key, value in copy.deepcopy(STUDY).items() if key != "tune"}
    config["agents"] = pasted
    config["experiment"] = "pasted"
    write_config(tmp_path / "exp.yaml", config)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--config", "exp.yaml", "--episodes", "2"])
    assert result.exit_code == 0, result.output
    (name,) = pasted
    assert name == "A2C_tuned"
    trained = AgentStore(AgentLayout.of(tmp_path / "checkpoints" / "pasted", name)).metadata().hyperparams
    trials = _trials(finished)
    best = min(trials, key=lambda index: trials[index]["value"])
    # Every resolved hyperparameter of the pasted entry is the best trial's own.
    assert trained == _run(finished, best, 0).metadata().hyperparams


def test_resume_with_a_changed_space_exits_2(finished: Path, tmp_path: Path) -> None:
    changed = copy.deepcopy(STUDY)
    changed["tune"]["space"]["learning_rate"] = {"float": [1.0e-4, 1.0e-1], "log": True}
    write_config(tmp_path / "exp.yaml", {**changed, "checkpoints_dir": str(finished / "checkpoints")})
    result = _invoke(tmp_path, "--resume")
    assert result.exit_code == 2
    assert "tune.space changed" in result.stderr
    again = _invoke(finished)  # the same study without --resume
    assert again.exit_code == 2 and "use --resume to continue it" in again.stderr


def _start_driver(folder: Path, *options: str, stderr: int = subprocess.PIPE) -> subprocess.Popen[str]:
    """``atheria tune --config exp.yaml OPTIONS`` in ``folder``, in its own process (so it can be
    killed), with this repository on its path for the test envs."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-m", "atheria_cli", "tune", "--config", "exp.yaml", *options],
        cwd=folder,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    )


def _kill_driver_after(folder: Path, metadata: Path, commits: int, signum: int = signal.SIGKILL) -> int:
    """Run the study in a subprocess, send it ``signum`` once ``metadata`` records ``commits``
    checkpoints, and return its exit status."""
    process = _start_driver(folder, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if metadata.exists() and len(json.loads(metadata.read_text()).get("checkpoints", [])) >= commits:
                break
            time.sleep(0.005)
        assert process.poll() is None, "the study ended before it could be killed"
    finally:
        process.send_signal(signum)
    try:
        return process.wait(timeout=60)
    finally:
        process.kill()


def test_a_killed_driver_resumes_to_the_uninterrupted_study(finished: Path, tmp_path: Path) -> None:
    write_config(tmp_path / "exp.yaml", STUDY)
    # Killed in the middle of trial 1: its seed 0 has committed 3 of its 4 episodes.
    metadata = tmp_path / STUDY_DIR / "trial_0001/seed_0/A2C/metadata.json"
    _kill_driver_after(tmp_path, metadata, commits=3)
    committed = max(entry["episode"] for entry in json.loads(metadata.read_text())["checkpoints"])
    with open(tmp_path / STUDY_DIR / "journal.log", "ab") as journal:
        journal.write(b'{"op_code":4,"worker_id":"torn')  # a write the kill cut short
    result = _invoke(tmp_path, "--resume")
    assert result.exit_code == 0, result.output
    assert "cut a torn last line" in result.stderr
    assert "trial 1 (number 1) was left running by a stopped driver" in result.stderr
    resumed, reference = _trials(tmp_path), _trials(finished)
    assert resumed == reference  # same parameters, states, values and intermediate values
    for index in reference:
        for seed in (0, 1):
            assert _episodes(_run(tmp_path, index, seed)) == _episodes(_run(finished, index, seed))
    # The retry resumed the killed run from its newest commit (not a fresh start moved aside).
    retried = _run(tmp_path, 1, 0)
    assert [path.name for path in retried.layout.root.parent.iterdir()] == ["A2C"]
    if committed < 4:
        assert f"episode_{committed:04d}.pt" in [session.resumed_from for session in retried.history().trainings]
    with open(tmp_path / STUDY_DIR / "trials.csv", newline="") as rows:
        interrupted = [row for row in csv.DictReader(rows) if row["interrupted"] == "yes"]
    assert [(row["trial"], row["state"]) for row in interrupted] == [("1", "FAIL")]


def test_a_study_whose_journal_was_lost_is_rebuilt_from_its_trial_folders(finished: Path, tmp_path: Path) -> None:
    write_config(tmp_path / "exp.yaml", STUDY)
    metadata = tmp_path / STUDY_DIR / "trial_0001/seed_0/A2C/metadata.json"
    _kill_driver_after(tmp_path, metadata, commits=3)  # trial 0 ended, trial 1 running
    records = {
        path.parent.name: json.loads(path.read_text()) for path in sorted((tmp_path / STUDY_DIR).glob("trial_*/trial.json"))
    }
    assert [(name, record["state"]) for name, record in records.items()] == [("trial_0000", "COMPLETE"), ("trial_0001", None)]
    (tmp_path / STUDY_DIR / "journal.log").unlink()  # the storage is lost; the trials' folders are not
    result = _invoke(tmp_path, "--resume")
    assert result.exit_code == 0, result.output
    assert (
        "the study's storage held no trial: rebuilt 2 trial(s) from their folders' trial.json (1 still running, queued again)"
        in result.stderr
    )
    assert _trials(tmp_path) == _trials(finished)  # same parameters, states, values and intermediate values
    for index in (0, 1, 2):
        for seed in (0, 1):
            assert _episodes(_run(tmp_path, index, seed)) == _episodes(_run(finished, index, seed))
    ended = json.loads((tmp_path / STUDY_DIR / "trial_0002/trial.json").read_text())
    assert (ended["format"], ended["schema_version"], ended["index"], ended["state"]) == ("atheria-trial", 1, 2, "COMPLETE")
    assert sorted(ended["intermediate"]) == ["2", "4"] and ended["value"] == ended["intermediate"]["4"]


# Long episodes (2,000 steps) and two trials: a job is in the middle of a segment for a while.
LONG = copy.deepcopy(STUDY)
LONG["env"]["kwargs"] = {"steps": 2000}
LONG["tune"].update(trials=2, enqueue=[{}, {"learning_rate": 1.0e-3}])


def _kill_a_job(folder: Path, driver: subprocess.Popen, locks: str, in_the_middle: Callable[[int], bool]) -> int:
    """SIGKILL the job process training a run of the study whose lock matches ``locks`` (a glob
    below the study folder) once the run's newest commit is at an episode ``in_the_middle`` of
    its session; its pid."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:
        for lock in sorted((folder / STUDY_DIR).glob(locks)):
            agent = lock.name.removeprefix(".").removesuffix(".lock")
            try:
                holder = int(lock.read_text().split()[1])  # "pid N on host"
                checkpoints = json.loads((lock.parent / agent / "metadata.json").read_text())["checkpoints"]
            except (OSError, IndexError, ValueError, KeyError):
                continue  # not written yet, or between two writes
            if holder == driver.pid or not checkpoints or not in_the_middle(checkpoints[-1]["episode"]):
                continue
            try:
                os.kill(holder, signal.SIGKILL)
            except ProcessLookupError:
                continue
            return holder
        time.sleep(0.005)
    raise AssertionError("no running job to kill")


def test_a_killed_job_is_retried_from_its_last_commit_and_the_study_ends_as_the_uninterrupted_one(tmp_path: Path) -> None:
    uninterrupted, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    write_config(uninterrupted / "exp.yaml", LONG)
    write_config(killed / "exp.yaml", LONG)
    reference = _invoke(uninterrupted, "--jobs", "1")
    assert reference.exit_code == 0, reference.output
    driver = _start_driver(killed, "--jobs", "2")
    try:
        # A segment ends at an even episode (an evaluation): an odd commit is in its middle.
        _kill_a_job(killed, driver, "trial_*/seed_*/.A2C.lock", lambda episode: episode % 2 == 1)
        _, err = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert driver.returncode == 0, err
    # The kill landed on a running job, and the trial re-trained its segment instead of failing.
    assert "the job process was killed by SIGKILL; retry 1 of 3 continues it from its last commit" in err, err
    assert " FAIL" not in err
    trials = _trials(killed)  # no trial RUNNING
    assert trials == _trials(uninterrupted)  # same parameters, states, values and intermediate values
    assert sorted(trials) == [0, 1] and all(trial["state"] == "COMPLETE" for trial in trials.values())
    for index in trials:
        for seed in (0, 1):
            assert _episodes(_run(killed, index, seed)) == _episodes(_run(uninterrupted, index, seed))
    resumed = [
        session.resumed_from for index in trials for seed in (0, 1) for session in _run(killed, index, seed).history().trainings
    ]
    # The killed job's run continued from an odd episode's commit, which only a retry resumes from.
    assert any(name is not None and int(name.removeprefix("episode_").removesuffix(".pt")) % 2 for name in resumed), resumed


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_driver_after_the_running_trial_commits(signum: int, code: int, tmp_path: Path) -> None:
    write_config(tmp_path / "exp.yaml", STUDY)
    metadata = tmp_path / STUDY_DIR / "trial_0000/seed_0/A2C/metadata.json"
    assert _kill_driver_after(tmp_path, metadata, commits=1, signum=signum) == code
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / STUDY_DIR / "journal.log")))
    (trial,) = optuna.load_study(study_name="lr", storage=storage).get_trials()
    assert trial.state.name == "RUNNING"  # --resume retries it
    store = _run(tmp_path, 0, 0)
    assert store.metadata().latest is not None and store.history().trainings[-1].end_episode >= 1
    assert not (store.layout.root.parent / ".A2C.lock").exists()  # the session ended and let go of its run


PRUNE: dict[str, Any] = {
    **{key: value for key, value in STUDY.items() if key != "tune"},
    "tune": {
        "study": "lr",
        "agent": "A2C",
        "trials": 2,
        "episodes": 6,
        "seeds": [0],
        "objective": {"metric": "co2_kg"},
        "pruner": {"name": "median", "startup": 1},
        "space": {"learning_rate": {"float": [1.0e-8, 10.0], "log": True}},
        # A learning rate of 1 drives the mean action to the clip at once: 220 kg per evaluation
        # episode, against about 20 kg of the untrained policy.
        "enqueue": [{"learning_rate": 1.0e-8}, {"learning_rate": 1.0}],
    },
}


def test_the_pruner_stops_a_bad_trial_at_a_commit(tmp_path: Path) -> None:
    write_config(tmp_path / "exp.yaml", PRUNE)
    result = _invoke(tmp_path)
    assert result.exit_code == 0, result.output
    trials = _trials(tmp_path)
    assert trials[0]["state"] == "COMPLETE" and sorted(trials[0]["intermediate"]) == [2, 4, 6]
    assert trials[1]["state"] == "PRUNED" and list(trials[1]["intermediate"]) == [2]
    assert trials[1]["value"] > trials[0]["intermediate"][2]
    pruned = AgentStore(AgentLayout.of(tmp_path / STUDY_DIR / "trial_0001" / "seed_0", "A2C"))
    assert pruned.metadata().latest.episode == 2  # its last commit is the evaluated one
    assert [entry.episode for entry in pruned.metadata().checkpoints] == [1, 2]
    assert "trial 1 PRUNED" in result.stderr and "pruned at episode 2" in result.stderr
    assert math.isfinite(trials[1]["value"])


def test_a_sqlite_study_with_the_halving_pruner_prunes_the_worse_trial_at_its_first_rung(tmp_path: Path) -> None:
    import optuna

    config = copy.deepcopy(PRUNE)
    config["tune"]["storage"] = "study.db"  # a SQLite file in the study folder
    config["tune"]["pruner"] = {"name": "halving", "min_episodes": 2, "eta": 2}
    write_config(tmp_path / "exp.yaml", config)
    result = _invoke(tmp_path)
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="lr", storage=f"sqlite:///{tmp_path / STUDY_DIR / 'study.db'}")
    states = {trial.user_attrs["index"]: (trial.state.name, sorted(trial.intermediate_values)) for trial in study.get_trials()}
    # Two trials at the first rung (episode 2), eta 2: only the better half goes on.
    assert states == {0: ("COMPLETE", [2, 4, 6]), 1: ("PRUNED", [2])}
    assert not (tmp_path / STUDY_DIR / "journal.log").exists()


def test_a_second_driver_of_a_study_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    from atheria_cli.run.locking import AgentLock
    from atheria_cli.tune.layout import DRIVER_LOCK

    write_config(tmp_path / "exp.yaml", STUDY)
    root = tmp_path / STUDY_DIR
    root.mkdir(parents=True)
    lock = AgentLock(root, DRIVER_LOCK)  # the other driver, in this process
    lock.acquire()
    try:
        before = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))
        result = _invoke(tmp_path)
        after = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))
    finally:
        lock.release()
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"atheria: error: the study {STUDY_DIR} is being run by another atheria tune; wait for it or stop it"
    )
    assert after == before


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_diverged_training_prunes_its_trial_and_a_crash_fails_its_trial(jobs: str, tmp_path: Path) -> None:
    # Trial 0 (the base entry): seed 1's env raises once, mid-segment (CrashOnceEnv). Trial 1: a
    # learning rate of 1e30 makes A2C's actions NaN in its first episode (the session's
    # TrainingDivergedError). Trial 2: the base entry again, the env no longer crashes.
    config = copy.deepcopy(STUDY)
    marker = str(tmp_path / "crashed")
    config["env"].update(id="tests.envs:CrashOnceEnv", kwargs={"crash_seed": 1, "after_steps": 30, "marker": marker})
    config["tune"].update(
        space={"learning_rate": {"choice": [1.0e-3, 1.0e30]}}, enqueue=[{}, {"learning_rate": 1.0e30}, {}], final=None
    )
    write_config(tmp_path / "exp.yaml", config)
    result = _invoke(tmp_path, "--jobs", jobs)
    assert result.exit_code == 0, result.output
    trials = _trials(tmp_path)
    assert {index: trial["state"] for index, trial in trials.items()} == {0: "FAIL", 1: "PRUNED", 2: "COMPLETE"}
    assert trials[1]["value"] is None and trials[1]["intermediate"] == {}  # it diverged before its first evaluation
    reasons = {row["trial"]: row["reason"] for row in csv.DictReader((tmp_path / STUDY_DIR / "trials.csv").open())}
    assert "RuntimeError: injected crash" in reasons["0"]
    assert reasons["1"].startswith("diverged: ") and "training diverged in episode 1" in reasons["1"], reasons["1"]
    assert "trial 0 FAIL" in result.stderr and "trial 1 PRUNED (diverged: " in result.stderr
    assert _run(tmp_path, 2, 1).metadata().latest.episode == 4  # the study went on


def test_final_trains_best_and_base_on_the_test_seeds_and_compares_them(finished: Path) -> None:
    result = _invoke(finished, "--report", "--final")
    assert result.exit_code == 0, result.output
    final = finished / STUDY_DIR / "final"
    assert sorted(path.name for path in final.iterdir()) == ["seed_100", "seed_101"]
    for seed in (100, 101):
        for agent in ("A2C", "A2C_tuned"):
            store = AgentStore(AgentLayout.of(final / f"seed_{seed}", agent))
            assert store.metadata().latest.episode == 4
    assert "seeds 100, 101" in result.stdout and "IQM" in result.stdout
    assert any("│ A2C_tuned" in line for line in result.stdout.splitlines())
    # Each test seed is scored as the objective scores a trial: the mean of its last 2 evaluations.
    for agent in ("A2C", "A2C_tuned"):
        scores = []
        for seed in (100, 101):
            evaluations = AgentStore(AgentLayout.of(final / f"seed_{seed}", agent)).history().evaluations
            assert [item.episode for item in evaluations] == [2, 4]
            scores.append(sum(item.metrics["co2_kg"].mean for item in evaluations) / 2)
        row = next(line for line in result.stdout.splitlines() if line.startswith(f"│ {agent} "))
        mean = float(row.split("│")[3].split("±")[0])
        assert mean == pytest.approx(sum(scores) / 2, abs=0.006)


# One short trial, then long final runs (1,000-step episodes): a job of --final is in the middle
# of its run for a while. The best entry (learning rate 1e-3) differs from the base entry.
FINAL = copy.deepcopy(STUDY)
FINAL["env"]["kwargs"] = {"steps": 1000}
FINAL["tune"].update(
    trials=1,
    episodes=2,
    seeds=[0],
    objective={"metric": "co2_kg", "window": 1},
    enqueue=[{"learning_rate": 1.0e-3}],
    final={"seeds": [100, 101], "episodes": 4},
)


def test_a_job_killed_during_final_is_retried_and_the_final_runs_end_as_uninterrupted_ones(tmp_path: Path) -> None:
    uninterrupted, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    write_config(uninterrupted / "exp.yaml", FINAL)
    write_config(killed / "exp.yaml", FINAL)
    reference = _invoke(uninterrupted, "--final", "--jobs", "1")
    assert reference.exit_code == 0, reference.output
    driver = _start_driver(killed, "--final", "--jobs", "2")
    try:
        # A final run trains its 4 episodes in one session: a commit before the 4th is in its middle.
        _kill_a_job(killed, driver, "final/seed_*/.*.lock", lambda episode: episode < 4)
        _, err = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert driver.returncode == 0, err
    retried = [line for line in err.splitlines() if line.startswith("warning: final/seed_1")]
    assert len(retried) == 1 and retried[0].endswith(
        ": the job process was killed by SIGKILL; retry 1 of 3 continues it from its last commit"
    ), err
    assert "atheria: error" not in err, err
    resumed = []
    for seed in (100, 101):
        for agent in ("A2C", "A2C_tuned"):
            experiment = f"tuned/tune/lr/final/seed_{seed}"
            assert_same_run(uninterrupted / "checkpoints", killed / "checkpoints", agent, experiment=experiment)
            store = AgentStore(AgentLayout.of(killed / STUDY_DIR / "final" / f"seed_{seed}", agent))
            resumed += [session.resumed_from for session in store.history().trainings]
    # A final run trains in one session: only the killed job's retry resumed from a commit.
    assert len([name for name in resumed if name is not None]) == 1, resumed


def test_the_grid_sampler_runs_each_point_once_in_order_then_stops(tmp_path: Path) -> None:
    config = copy.deepcopy(PRUNE)
    config["tune"].update(
        trials=10,
        episodes=2,
        sampler={"name": "grid"},
        pruner={"name": "none"},
        space={"learning_rate": {"choice": [1.0e-3, 1.0e-2]}, "n_steps": {"choice": [5, 10]}},
        enqueue=[],
    )
    write_config(tmp_path / "exp.yaml", config)
    result = _invoke(tmp_path)
    assert result.exit_code == 0, result.output
    trials = _trials(tmp_path)
    assert [trials[index]["params"] for index in sorted(trials)] == [
        {"learning_rate": 1.0e-3, "n_steps": 5},
        {"learning_rate": 1.0e-3, "n_steps": 10},
        {"learning_rate": 1.0e-2, "n_steps": 5},
        {"learning_rate": 1.0e-2, "n_steps": 10},
    ]
    assert all(trial["state"] == "COMPLETE" for trial in trials.values())


def test_history_status_and_compare_read_a_trial_with_trial(finished: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(finished)
    status = runner.invoke(app, ["status", "--config", "exp.yaml", "--trial", "1", "--seed", "0"])
    assert status.exit_code == 0, status.output
    assert "A2C" in status.stdout and "4" in status.stdout
    history = runner.invoke(app, ["history", "A2C", "--config", "exp.yaml", "--trial", "1", "--seed", "1", "--json"])
    assert history.exit_code == 0, history.output
    assert json.loads(history.stdout)["total_episodes"] == 4
    compare = runner.invoke(app, ["compare", "--config", "exp.yaml", "--trial", "2", "--metric", "co2_kg"])
    assert compare.exit_code == 0, compare.output
    assert "tuned/tune/lr/trial_0002" in compare.stdout and "seeds 0, 1" in compare.stdout
    missing = runner.invoke(app, ["status", "--config", "exp.yaml", "--trial", "7"])
    assert missing.exit_code == 2 and "its trials: trial_0000, trial_0001, trial_0002" in missing.stderr


def test_the_experiment_report_shows_the_study(finished: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(finished)
    result = runner.invoke(app, ["report", "--config", "exp.yaml", "--output", "report.md"])
    assert result.exit_code == 0, result.output
    markdown = (finished / "report.md").read_text(encoding="utf-8")
    study = markdown[markdown.index("## Tune study") :]
    trials = list(csv.DictReader((finished / STUDY_DIR / "trials.csv").open(encoding="utf-8")))
    assert trials and all(f"| {row['number']} |" in study for row in trials)
    assert (finished / STUDY_DIR / "best.yaml").read_text(encoding="utf-8").splitlines()[0] in study
    assert "report_files/tune_history.png" in study
    assert (finished / "report_files" / "tune_history.png").read_bytes() == (finished / STUDY_DIR / "history.png").read_bytes()


# CartPole's episodes end when the pole falls: the seeds reach 100 timesteps at different
# episodes, so one seed is finished while the other still trains.
UNTIL: dict[str, Any] = {
    **{key: value for key, value in STUDY.items() if key != "tune"},
    "env": {"id": "CartPole-v1", "max_episode_steps": 20},
    "tune": {
        "study": "lr",
        "agent": "A2C",
        "trials": 1,
        "until_timesteps": 100,
        "seeds": [0, 1],
        "objective": {"window": 2},
        "pruner": {"name": "none"},
        "space": {"learning_rate": {"float": [1.0e-5, 1.0e-1], "log": True}},
        "enqueue": [{}],
        "final": {"seeds": [100, 101]},  # the final runs' budget: the study's
    },
}


def _ends_at_the_first_evaluation_at_or_after(store: AgentStore, until: int) -> int:
    """Assert that the run evaluated every 2 episodes and its last commit is its first evaluation
    at or after ``until`` timesteps; its last episode."""
    latest, evaluations = store.metadata().latest, store.history().evaluations
    assert [item.episode for item in evaluations] == list(range(2, latest.episode + 1, 2))
    assert (evaluations[-1].episode, evaluations[-1].timesteps) == (latest.episode, latest.timesteps)
    assert latest.timesteps >= until and all(item.timesteps < until for item in evaluations[:-1])
    return latest.episode


def test_an_until_timesteps_study_ends_each_seed_at_its_first_evaluation_past_the_budget(tmp_path: Path) -> None:
    from atheria_cli.config import load_config
    from atheria_cli.reports.evaluations import stat_of
    from atheria_cli.tune import trials as trial_runs
    from atheria_cli.tune.layout import StudyLayout

    write_config(tmp_path / "exp.yaml", UNTIL)
    result = _invoke(tmp_path, "--final")
    assert result.exit_code == 0, result.output
    (trial,) = _trials(tmp_path).values()
    assert trial["state"] == "COMPLETE"
    ends = {seed: _ends_at_the_first_evaluation_at_or_after(_run(tmp_path, 0, seed), 100) for seed in (0, 1)}
    assert len(set(ends.values())) == 2, ends  # the seed finished first was not trained on
    assert sorted(trial["intermediate"]) == list(range(2, max(ends.values()) + 1, 2))
    scores = [
        sum(stat_of(item, "reward").mean for item in _run(tmp_path, 0, seed).history().evaluations[-2:]) / 2 for seed in (0, 1)
    ]
    assert trial["value"] == pytest.approx(sum(scores) / 2, rel=1e-12)
    record = json.loads((tmp_path / STUDY_DIR / "tune.json").read_text())
    assert (record["episodes"], record["until_timesteps"]) == (None, 100)
    header = (tmp_path / STUDY_DIR / "best.yaml").read_text().splitlines()[1]
    assert header.endswith(f"of each seed's run to 100 timesteps (all ended by episode {max(ends.values())}).")
    for seed in (100, 101):
        for agent in ("A2C", "A2C_tuned"):
            _ends_at_the_first_evaluation_at_or_after(
                AgentStore(AgentLayout.of(tmp_path / STUDY_DIR / f"final/seed_{seed}", agent)), 100
            )
    # A retry of the trial (a driver killed after its last commit) steps through the committed
    # runs and reports the same steps, ending where the trial ended, without training.
    config = load_config(tmp_path / "exp.yaml", {"checkpoints_dir": str(tmp_path / "checkpoints")})
    reported: list[tuple[int, float, bool]] = []

    def verdict(end: int, objective: Any, last: bool) -> Any:
        reported.append((end, objective.value, last))
        return "continue"

    observer = RecordingObserver()
    trial_experiment = trial_runs.trial_config(config, StudyLayout.of(config.checkpoints_dir, config.experiment, "lr"), 0, {})
    retried = trial_runs.run_trial(
        config, trial_experiment, pool=trial_runs.Pool(), observer=observer, verdict=verdict, stop_requested=lambda: False
    )
    assert [(end, value) for end, value, _ in reported] == sorted(trial["intermediate"].items())
    assert [last for *_, last in reported] == [False] * (len(reported) - 1) + [True]
    assert (retried.state, retried.value, retried.episodes) == ("complete", trial["value"], max(ends.values()))
    assert observer.episodes == []
    changed = copy.deepcopy(UNTIL)
    changed["tune"]["until_timesteps"] = 120
    write_config(tmp_path / "exp.yaml", changed)
    resumed = _invoke(tmp_path, "--resume")
    assert resumed.exit_code == 2 and "tune.until_timesteps changed" in resumed.stderr


def test_a_base_config_ending_sessions_at_train_until_timesteps_does_not_cut_the_trials(tmp_path: Path) -> None:
    """train.until_timesteps ends `atheria train` sessions; a trial's budget is tune's, so its
    segments must not stop at the base config's target (they would end before their evaluation)."""
    study = copy.deepcopy(STUDY)
    study["train"]["until_timesteps"] = 10  # half of the first 20-step episode
    study["tune"].update(trials=1, seeds=[0])
    write_config(tmp_path / "exp.yaml", study)
    result = _invoke(tmp_path)
    assert result.exit_code == 0, result.output
    trials = _trials(tmp_path)
    assert trials[0]["state"] == "COMPLETE" and sorted(trials[0]["intermediate"]) == [2, 4]
    assert _run(tmp_path, 0, 0).metadata().latest.episode == 4


def test_a_final_job_that_crashes_exits_1_without_a_table_and_final_again_finishes(tmp_path: Path) -> None:
    """A crash in --final (the env raises once in the runs of test seed 100) is no result: exit 1
    with the job's line and no compare table; --final again trains what is missing."""
    study = copy.deepcopy(STUDY)
    study["env"] = {
        "id": "tests.envs:CrashOnceEnv",
        "kwargs": {"crash_seed": 100, "after_steps": 30, "marker": str(tmp_path / "crashed")},
        "metrics": [{"name": "co2_kg", "goal": "min"}],
    }
    study["tune"].update(trials=1, episodes=2, seeds=[0], objective={"metric": "co2_kg", "window": 1})
    write_config(tmp_path / "exp.yaml", study)
    crashed = _invoke(tmp_path, "--final", "--jobs", "2")
    assert crashed.exit_code == 1, crashed.output
    errors = [line for line in crashed.stderr.splitlines() if line.startswith("atheria: error: job ")]
    assert errors and all(line.startswith("atheria: error: job seed_100/A2C") for line in errors), crashed.stderr
    assert all("injected crash" in line and line.endswith("; run --final again") for line in errors), crashed.stderr
    assert "Mean ± std" not in crashed.stdout
    again = _invoke(tmp_path, "--report", "--final", "--jobs", "2")
    assert again.exit_code == 0, again.output
    assert "Mean ± std" in again.stdout
    for seed in (100, 101):
        for agent in ("A2C", "A2C_tuned"):
            store = AgentStore(AgentLayout.of(tmp_path / STUDY_DIR / "final" / f"seed_{seed}", agent))
            assert store.metadata().latest.episode == 4
