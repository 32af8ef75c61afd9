"""A user's trainer in a real ``atheria train`` process, stopped the hard ways: kill -9 at random
moments, Ctrl-C or SIGTERM in the middle of an episode (which atheria does not interrupt), and a
second Ctrl-C."""

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
from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import write_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_kill_9_at_random_moments_ends_identical_to_an_uninterrupted_run(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import fault_injection
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    report = fault_injection.run(kills=8, workdir=tmp_path, seed=5, profile="trainer")
    # The survivor is compared with a run of the same episodes that was never killed.
    assert report.problems == []
    assert report.landed_after_commit >= 4, f"only {report.landed_after_commit} of 8 kills landed after a commit"


def _slow_trainer_process(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, Path]:
    """A real `atheria train` of a trainer whose episodes last ~0.5 s, once it has committed."""
    config = {
        "experiment": "test",
        "checkpoints_dir": str(tmp_path / "ck"),
        "device": "cpu",
        "seed": 1,
        "agents": {"fit": {"trainer": "tests.trainers:Shuffler", "kwargs": {"samples": 4000}, "metrics": ["loss"]}},
        "train": {"allow_import": True},
    }
    path = write_config(tmp_path / "exp.yaml", config)
    process = subprocess.Popen(
        [sys.executable, "-m", "atheria_cli", "train", "--config", str(path), "--episodes", "100000"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    metadata = tmp_path / "ck/test/fit/metadata.json"
    deadline = time.monotonic() + 60
    while not metadata.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return process, path, metadata


def _committed(metadata: Path) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(metadata.read_text())["checkpoints"][-1]
    return entry


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_episode_finishes_the_episode_commits_it_and_exits(signum: int, code: int, tmp_path: Path) -> None:
    process, path, metadata = _slow_trainer_process(tmp_path)
    before = _committed(metadata)["episode"]
    time.sleep(0.2)  # inside the next episode
    os.kill(process.pid, signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    last = _committed(metadata)
    # The episode under way was not cut: it ended, and its end is the last commit (not a partial one).
    assert last["episode"] > before and not last["partial"]
    history = json.loads((tmp_path / "ck/test/fit/history.json").read_text())
    assert history["total_episodes"] == last["episode"]
    assert (
        f"atheria: stopped by {signal.Signals(signum).name}: checkpoint {last['file']} committed; continue with --resume" in err
    )
    assert "Traceback" not in err
    assert runner.invoke(app, ["verify", "--config", str(path)]).exit_code == 0


def test_a_second_sigint_mid_episode_exits_at_once_without_damage(tmp_path: Path) -> None:
    process, path, metadata = _slow_trainer_process(tmp_path)
    os.kill(process.pid, signal.SIGINT)
    os.kill(process.pid, signal.SIGINT)  # impatient: the second one does not wait for the episode
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in err
    assert runner.invoke(app, ["verify", "--config", str(path)]).exit_code == 0
    committed = _committed(metadata)["episode"]
    resumed = runner.invoke(app, ["train", "--config", str(path), "--episodes", "1", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert _committed(metadata)["episode"] == committed + 1


def test_a_run_of_trainers_imports_neither_sb3_nor_gymnasium(tmp_path: Path) -> None:
    # Planning built SB3's envs module for every run, and the session recorded gymnasium's version:
    # ~0.3 s of imports before a trainer's first episode, for libraries it never uses.
    config = {
        "experiment": "test",
        "checkpoints_dir": str(tmp_path / "ck"),
        "device": "cpu",
        "agents": {"fit": {"trainer": "tests.trainers:Shuffler", "metrics": ["loss"]}},
        "train": {"allow_import": True},
    }
    path = write_config(tmp_path / "exp.yaml", config)
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from atheria_cli.cli import app\n"
        f"result = CliRunner().invoke(app, ['train', '--config', {str(path)!r}, '--episodes', '2'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(','.join(sorted(m for m in ('stable_baselines3', 'gymnasium') if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
    metadata = json.loads((tmp_path / "ck/test/fit/metadata.json").read_text())
    assert set(metadata["versions"]) == {"atheria", "python", "torch", "numpy"}
