"""Real `atheria train --jobs N` processes: a signal stops every job with a commit and --resume
continues each exactly; a job that crashes or is killed does not stop the others."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from atheria_cli.run.formats import read_history
from tests.conftest import TINY_AGENTS, tiny_config, write_config
from tests.integration.test_jobs import assert_same_run, train_jobs

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]

# The built-in building env restores its state mid-episode, so a resume after a signal is exact.
BUILDING_DAY = {
    "id": "atheria/BuildingCO2-v0",
    "kwargs": {"days": 1},
    "max_episode_steps": 24,
    "metrics": [{"name": "co2_kg", "goal": "min"}],
}


def _start(config: dict[str, Any], tmp_path: Path, *args: str, new_session: bool = False) -> subprocess.Popen:
    path = write_config(tmp_path / "exp.yaml", config)
    # The repository root on the path: configs may name test envs ("tests.envs:CrashOnceEnv").
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO_ROOT), os.environ.get("PYTHONPATH"))))}
    return subprocess.Popen(
        [sys.executable, "-m", "atheria_cli", "train", "--config", str(path), *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
        env=env,
    )


def _wait_for(paths: list[Path], process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not all(path.exists() for path in paths):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "no commit in time"
        time.sleep(0.02)


def _episodes_done(root: Path, seed: int, agent: str = "SAC") -> int:
    return read_history(root / f"test/seed_{seed}/{agent}/history.json").total_episodes


@pytest.mark.parametrize("signum, code, to_group", [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)])
def test_a_signal_stops_every_job_with_a_commit_and_resume_is_exact(
    signum: int, code: int, to_group: bool, tmp_path: Path
) -> None:
    config = tiny_config({"SAC": TINY_AGENTS["SAC"]}, env=BUILDING_DAY, seeds=[0, 1], checkpoints_dir=str(tmp_path / "ck"))
    config["train"].update(threads=1, save_every=1000)  # commits only at the signal: each job's is mid-run
    config["train"]["save_every_steps"] = 30  # ... and every 30 steps, which tells us a job is running
    process = _start(config, tmp_path, "--jobs", "2", "--episodes", "100000", new_session=to_group)
    _wait_for([tmp_path / f"ck/test/seed_{seed}/SAC/metadata.json" for seed in (0, 1)], process)
    # Ctrl-C reaches the whole foreground process group; SIGTERM only the parent, which forwards it.
    os.killpg(process.pid, signum) if to_group else os.kill(process.pid, signum)
    _, err = process.communicate(timeout=300)
    assert process.returncode == code, err
    assert f"atheria: stopped by {signal.Signals(signum).name}: 2 run(s) committed a checkpoint; continue with --resume" in err
    assert "Traceback" not in err
    done = {seed: _episodes_done(tmp_path / "ck", seed) for seed in (0, 1)}
    for seed in (0, 1):
        metadata = json.loads((tmp_path / f"ck/test/seed_{seed}/SAC/metadata.json").read_text())
        history = json.loads((tmp_path / f"ck/test/seed_{seed}/SAC/history.json").read_text())
        # The signal's own commit: the session's end, after the last periodic one.
        assert metadata["checkpoints"][-1]["timesteps"] == history["trainings"][-1]["end_timesteps"]
        # Continue each job to one episode past where it stopped; compare with one uninterrupted session.
        total = done[seed] + 1
        resumed, _ = train_jobs({**config, "seeds": [seed]}, tmp_path / "ck", episodes=total - done[seed], jobs=1, resume=True)
        assert resumed.exit_code == 0
        train_jobs({**config, "seeds": [seed]}, tmp_path / "one_go", episodes=total, jobs=1)
        assert_same_run(tmp_path / "one_go", tmp_path / "ck", f"seed_{seed}/SAC")


def test_a_ctrl_c_reaches_each_job_once_through_the_command(tmp_path: Path) -> None:
    """A job leaves the terminal's process group: a Ctrl-C reaches it only as the command forwards
    it, so no copy of that one Ctrl-C can arrive late and be taken for a second one (which exits
    at once, without the job's commit)."""
    config = tiny_config({"SAC": TINY_AGENTS["SAC"]}, env=BUILDING_DAY, seeds=[0, 1], checkpoints_dir=str(tmp_path / "ck"))
    config["train"].update(threads=1, save_every=1000, save_every_steps=30)
    process = _start(config, tmp_path, "--jobs", "2", "--episodes", "100000", new_session=True)
    runs = [tmp_path / f"ck/test/seed_{seed}" for seed in (0, 1)]
    _wait_for([run / "SAC/metadata.json" for run in runs], process)
    holders = [int((run / ".SAC.lock").read_text().split()[1]) for run in runs]
    assert all(os.getpgid(holder) == holder != os.getpgid(process.pid) for holder in holders)
    os.kill(process.pid, signal.SIGSTOP)  # the command cannot forward while stopped
    try:
        os.killpg(process.pid, signal.SIGINT)  # the terminal's Ctrl-C
        time.sleep(3.0)  # longer than any echo window: the group's copy would have stopped the jobs by now
        assert all(_running(holder) for holder in holders)
    finally:
        os.kill(process.pid, signal.SIGCONT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert "atheria: stopped by SIGINT: 2 run(s) committed a checkpoint; continue with --resume" in err
    assert "Traceback" not in err


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_a_crashed_or_killed_job_does_not_stop_the_others(tmp_path: Path) -> None:
    env = {"id": "tests.envs:CrashOnceEnv", "kwargs": {"crash_seed": 1, "after_steps": 30, "marker": str(tmp_path / "crashed")}}
    config = tiny_config({"SAC": TINY_AGENTS["SAC"]}, env=env, seeds=[0, 1, 2], checkpoints_dir=str(tmp_path / "ck"))
    config["train"]["threads"] = 1
    process = _start(config, tmp_path, "--jobs", "3", "--episodes", "8")
    seed_2 = tmp_path / "ck/test/seed_2"
    _wait_for([seed_2 / "SAC/metadata.json"], process)
    holder = (seed_2 / ".SAC.lock").read_text()  # "pid N on host": the job's own process holds its lock
    os.kill(int(holder.split()[1]), signal.SIGKILL)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 1, err
    assert "atheria: error: job seed_1/SAC: RuntimeError: injected crash (envs.py:" in err
    assert "atheria: error: job seed_2/SAC: the job process was killed by SIGKILL; continue it with --resume" in err
    assert _episodes_done(tmp_path / "ck", 0) == 8  # the healthy job finished
    assert 1 <= _episodes_done(tmp_path / "ck", 1) < 8 and 1 <= _episodes_done(tmp_path / "ck", 2) < 8
    # --resume continues each failed job from its last commit.
    for seed in (1, 2):
        before = _episodes_done(tmp_path / "ck", seed)
        resumed, _ = train_jobs({**config, "seeds": [seed]}, tmp_path / "ck", episodes=8 - before, jobs=1, resume=True)
        assert resumed.exit_code == 0
        assert _episodes_done(tmp_path / "ck", seed) == 8
        trainings = read_history(tmp_path / f"ck/test/seed_{seed}/SAC/history.json").trainings
        assert trainings[-1].resumed_from is not None and trainings[-1].start_episode == before + 1
