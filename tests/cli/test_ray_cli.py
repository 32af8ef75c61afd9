"""`atheria train --backend ray`: bad input exits 2 with one line, before anything is written; a
Ray part that dies for good ends the run with one line and its detail in the driver log; Ray's
own log lines stay off the terminal unless --verbose."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from atheria_cli.run.formats import read_history
from tests.conftest import TINY_AGENTS, tiny_config, write_config
from tests.integration.helpers import wait_for_release

runner = CliRunner()


def test_a_remote_address_without_shared_storage_or_mirror_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the Ray backend needs the 'ray' extra: pip install 'atheria-cli[ray]'")
    path = write_config(tmp_path / "exp.yaml", tiny_config(checkpoints_dir=str(tmp_path / "ck")))
    result = runner.invoke(app, ["train", "--config", str(path), "--backend", "ray", "--address", "ray://127.0.0.1:10001"])
    assert result.exit_code == 2
    assert result.stderr == (
        "atheria: error: --address ray://127.0.0.1:10001 may place jobs on other machines, which must see the run: "
        "put checkpoints_dir on a filesystem every node mounts and set train.shared_storage: true, or set train.mirror.to "
        "to storage every node reaches (the mirror is then the store of record)\n"
    )
    assert not (tmp_path / "ck").exists()


def test_the_ray_backend_without_the_extra_exits_2_naming_it(tmp_path: Path) -> None:
    path = write_config(tmp_path / "exp.yaml", tiny_config(checkpoints_dir=str(tmp_path / "ck")))
    code = "import sys; sys.modules['ray'] = None; from atheria_cli.cli import main; sys.argv[0] = 'atheria'; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "train", "--config", str(path), "--backend", "ray"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == "atheria: error: --backend ray needs the 'ray' extra: pip install 'atheria-cli[ray]'\n"
    assert not (tmp_path / "ck").exists()


# What atheria itself prints on stderr when it is not a terminal (no bars): nothing of Ray's.
ATHERIA_LINE = re.compile(r"^A2C: episodes \d+–\d+ \((new run|resuming from episode_\d+\.pt)\)$|^A2C episode \d+: reward=\S+$")


def _train(
    tmp_path: Path, config: dict[str, Any], *args: str, on_first_commit: Callable[[int], None] | None = None
) -> tuple[int, str]:
    """``atheria train --backend ray`` in its own process (its own local Ray); (exit code, stderr)."""
    path = write_config(tmp_path / "exp.yaml", {**config, "checkpoints_dir": str(tmp_path / "ck")})
    with open(tmp_path / "stderr", "w+", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "atheria_cli", "train", "--config", str(path), "--backend", "ray", *args],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            if on_first_commit is not None:
                metadata, deadline = tmp_path / "ck/test/A2C/metadata.json", time.monotonic() + 120
                while not metadata.exists() and time.monotonic() < deadline and process.poll() is None:
                    time.sleep(0.02)
                on_first_commit(process.pid)
            code = process.wait(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
        stderr.seek(0)
        return code, stderr.read()


def test_a_hub_that_dies_for_good_ends_the_run_with_one_line_and_resume_continues(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the Ray backend needs the 'ray' extra: pip install 'atheria-cli[ray]'")
    from tests.integration.test_ray_backend import hub_pid

    train = {"schedule_timesteps": 2000, "threads": 1, "max_retries": 0}  # no restart of the hub
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, train=train)
    # Far more episodes than the seconds the driver needs to notice the hub's death: a run that
    # finished first (8 episodes once did, on a loaded machine) would test nothing.
    code, stderr = _train(
        tmp_path, config, "--episodes", "400", on_first_commit=lambda pid: os.kill(hub_pid(pid), signal.SIGKILL)
    )
    log = tmp_path / "ck/test/ray-driver.log"
    assert code == 1, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("atheria: error:")]
    assert errors == [
        "atheria: error: the Ray hub actor (ray::Hub, the jobs' progress and stop channel) died, and train.max_retries (0) "
        "allows no more restarts (ActorDiedError: The actor died unexpectedly before finishing this task); every "
        f"committed checkpoint is intact: continue with --resume (Ray's report: {log})"
    ]
    assert all(ATHERIA_LINE.match(line) for line in stderr.splitlines() if line not in errors), stderr
    detail = log.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in detail and "ray.exceptions.ActorDiedError" in detail
    # As the line says: --resume continues from the last commit. Read it once the job's actor has
    # let go of the run (Ray ends the driver's actors asynchronously), from metadata.json: a
    # commit cut short has written history.json but not yet metadata.json, the commit itself.
    trained = _committed_episode(tmp_path / "ck/test", "A2C")
    assert 1 <= trained < 400
    code, stderr = _train(tmp_path, config, "--resume", "--episodes", "2")
    assert code == 0, stderr
    assert read_history(tmp_path / "ck/test/A2C/history.json").total_episodes == trained + 2


def test_rays_own_log_lines_stay_off_the_terminal_unless_verbose(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the Ray backend needs the 'ray' extra: pip install 'atheria-cli[ray]'")
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, train={"schedule_timesteps": 2000, "threads": 1})
    code, stderr = _train(tmp_path, config, "--episodes", "1")
    assert code == 0, stderr
    assert stderr.splitlines() and all(ATHERIA_LINE.match(line) for line in stderr.splitlines()), stderr
    started = "Started a local Ray instance."
    assert started in (tmp_path / "ck/test/ray-driver.log").read_text(encoding="utf-8")  # kept, not shown
    code, stderr = _train(tmp_path, config, "--episodes", "1", "--resume", "--verbose")
    assert code == 0, stderr
    assert started in stderr


def test_an_address_where_nothing_answers_ends_at_once_with_one_line(tmp_path: Path) -> None:
    """ray.init retries such an address for ever, its core printing each retry on the terminal."""
    pytest.importorskip("ray", reason="the Ray backend needs the 'ray' extra: pip install 'atheria-cli[ray]'")
    with socket.socket() as unused:  # a port of this machine that nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, train={"shared_storage": True})
    started = time.monotonic()
    code, stderr = _train(tmp_path, config, "--episodes", "1", "--address", f"127.0.0.1:{port}")
    assert code == 1
    log = tmp_path / "ck/test/ray-driver.log"
    assert stderr == (
        f"atheria: error: could not connect to the Ray cluster at 127.0.0.1:{port} (ConnectionError: nothing answers at "
        f"127.0.0.1:{port} (Connection refused)); nothing trained (Ray's report: {log})\n"
    )
    assert time.monotonic() - started < 60
    assert "ConnectionError: nothing answers" in log.read_text(encoding="utf-8")
    assert sorted(path.name for path in (tmp_path / "ck/test").iterdir()) == ["ray-driver.log"]


def _committed_episode(run_dir: Path, agent: str) -> int:
    """The episode of the run's newest commit, once no process holds the run's lock (60 s at most)."""
    wait_for_release(run_dir, agent)
    metadata = json.loads((run_dir / agent / "metadata.json").read_text(encoding="utf-8"))
    return int(metadata["checkpoints"][-1]["episode"])
