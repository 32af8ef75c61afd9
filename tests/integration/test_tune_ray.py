"""`atheria tune --backend ray` on a real local Ray: the same study as with the local backend; a
Ray failure that ends a segment ends the study with one line, the trial left for --resume."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_config
from tests.integration.helpers import REPOSITORY, wait_for_release
from tests.integration.test_jobs import assert_same_run
from tests.integration.test_tune import STUDY, STUDY_DIR, _episodes, _invoke, _run, _start_driver, _trials

pytest.importorskip("ray", reason="the Ray backend needs the 'ray' extra: pip install 'atheria-cli[ray]'")

pytestmark = pytest.mark.integration


def test_a_study_on_ray_ends_as_the_same_study_on_the_local_backend(tmp_path: Path) -> None:
    config = copy.deepcopy(STUDY)
    config["tune"].update(trials=2, final=None)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    write_config(local / "exp.yaml", config)
    write_config(on_ray / "exp.yaml", config)
    reference = _invoke(local, "--jobs", "2", "--checkpoints-dir", str(local / "checkpoints"))
    assert reference.exit_code == 0, reference.output
    # In its own process: Ray's workers import tests.envs through PYTHONPATH, and one Ray serves
    # the study's 4 segments (2 trials of 2 evaluations).
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", "atheria_cli", "tune", "--config", "exp.yaml", "--backend", "ray", "--jobs", "2"],
        cwd=on_ray,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # One Ray for the whole study, started once; its own lines go to the study's driver log, not
    # to the terminal (only with --verbose).
    assert "Started a local Ray instance" not in done.stderr
    assert (on_ray / STUDY_DIR / "ray-driver.log").read_text(encoding="utf-8").count("Started a local Ray instance") == 1
    assert not (local / STUDY_DIR / "ray-driver.log").exists()
    trials = _trials(on_ray)
    assert trials == _trials(local)  # same parameters, states, values and intermediate values
    assert sorted(trials) == [0, 1] and all(trial["state"] == "COMPLETE" for trial in trials.values())
    for index in trials:
        for seed in (0, 1):
            assert _episodes(_run(on_ray, index, seed)) == _episodes(_run(local, index, seed))


# One trial of two seeds, one segment of two 2,000-step episodes (it runs for seconds after its
# first commit), and no restart of the hub: train.max_retries: 0.
LOST = copy.deepcopy(STUDY)
LOST["env"]["kwargs"] = {"steps": 2000}
LOST["train"]["max_retries"] = 0
LOST["tune"].update(trials=1, episodes=2, objective={"metric": "co2_kg", "window": 1}, enqueue=[{}], final=None)


def _kill_the_hub_in_the_middle_of_a_segment(folder: Path, driver: subprocess.Popen) -> int:
    """SIGKILL the running segment's hub actor once a seed has committed an odd episode (a
    segment ends at an even one, an evaluation); its pid."""
    from tests.integration.test_ray_backend import hub_pid

    runs = [folder / STUDY_DIR / f"trial_0000/seed_{seed}/A2C/metadata.json" for seed in (0, 1)]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:
        for metadata in runs:
            try:
                checkpoints = json.loads(metadata.read_text())["checkpoints"]
            except (OSError, ValueError, KeyError):
                continue  # not written yet, or between two writes
            if checkpoints and checkpoints[-1]["episode"] % 2 == 1:
                hub = hub_pid(driver.pid)
                os.kill(hub, signal.SIGKILL)
                return hub
        time.sleep(0.005)
    raise AssertionError("no segment in its middle")


def test_a_ray_failure_ends_the_study_with_one_line_and_resume_finishes_the_trial(tmp_path: Path) -> None:
    """The Ray failure: the hub actor (ray::Hub, the jobs' progress and stop channel, one per
    segment) is SIGKILLed while the segment trains, and train.max_retries: 0 lets Ray restart it
    no more, so it is gone for good: the driver's next poll of it fails. That is deterministic
    once the kill lands before the segment's last poll, which the 2,000-step episodes leave
    seconds for. (A killed job actor would be retried from its commit instead: the hub is the
    part of Ray whose death ends a segment.)"""
    reference, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    write_config(reference / "exp.yaml", LOST)
    write_config(killed / "exp.yaml", LOST)
    uninterrupted = _invoke(reference, "--jobs", "2")
    assert uninterrupted.exit_code == 0, uninterrupted.output
    driver = _start_driver(killed, "--backend", "ray", "--jobs", "2")
    try:
        _kill_the_hub_in_the_middle_of_a_segment(killed, driver)
        _, err = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert driver.returncode == 1, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("atheria: error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "atheria: error: the Ray hub actor (ray::Hub, the jobs' progress and stop channel) died, and "
        "train.max_retries (0) allows no more restarts ("
    ), err
    assert "every committed checkpoint is intact: continue with --resume" in errors[0]
    log = killed / errors[0].rsplit("(Ray's report: ", 1)[1].removesuffix(")")
    assert "ray.exceptions.ActorDiedError" in log.read_text(encoding="utf-8")  # the detail, off the terminal
    assert [line for line in err.splitlines() if line not in errors] == ["trial 0: the base entry"], err
    (trial,) = _journal(killed)
    assert trial.state.name == "RUNNING"  # left for --resume
    # Ray ends the jobs' actors after the driver: --resume refuses while one still holds a run.
    for seed in (0, 1):
        wait_for_release(killed / STUDY_DIR / f"trial_0000/seed_{seed}", "A2C")
    resumed = _invoke(killed, "--resume", "--jobs", "2")  # on the local backend
    assert resumed.exit_code == 0, resumed.output
    assert "trial 0 (number 0) was left running by a stopped driver" in resumed.stderr
    interrupted, retry = _journal(killed)
    assert (interrupted.state.name, interrupted.user_attrs["interrupted"]) == ("FAIL", True)
    assert (retry.state.name, retry.user_attrs["retry_of"], retry.user_attrs["index"]) == ("COMPLETE", 0, 0)
    assert _trials(killed) == _trials(reference)  # nothing RUNNING; the same values and intermediate values
    for seed in (0, 1):  # every episode record and every tensor of the last checkpoint
        run = f"tuned/tune/lr/trial_0000/seed_{seed}"
        assert_same_run(reference / "checkpoints", killed / "checkpoints", "A2C", experiment=run)


def _journal(folder: Path) -> list[Any]:
    """The study's trials, in number order, as its journal holds them."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(folder / STUDY_DIR / "journal.log")))
    return list(optuna.load_study(study_name="lr", storage=storage).get_trials())
