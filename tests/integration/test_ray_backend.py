"""--backend ray on a real local Ray: the same bits as a sequential run, a killed worker retried
to an exact finish, a killed hub restarted at no cost, a stop that commits and resumes exactly,
evaluations recorded as in a sequential run, and bad storage refused (exit 2)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from atheria_cli.run.formats import read_history, read_metadata
from tests.conftest import TINY_AGENTS, tiny_config
from tests.integration.test_jobs import EVALUATED, assert_same_evaluations, assert_same_run, train_jobs

ray = pytest.importorskip("ray", reason="the Ray backend needs the 'ray' extra: pip install 'atheria-cli[ray]'")

pytestmark = pytest.mark.integration

BUILDING_DAY = {
    "id": "atheria/BuildingCO2-v0",
    "kwargs": {"days": 1},
    "max_episode_steps": 24,
    "metrics": [{"name": "co2_kg", "goal": "min"}],
}


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="atheria", log_to_driver=False)
    yield
    ray.shutdown()


def _after_first_commit(folder: Path, action: Any) -> threading.Thread:
    """Run ``action`` once the job has committed (the test's main thread is the Ray driver)."""

    def wait() -> None:
        deadline = time.monotonic() + 90
        while not (folder / "metadata.json").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        action()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


def test_two_jobs_on_ray_write_the_same_bits_as_sequential_runs(tmp_path: Path) -> None:
    config = tiny_config(
        {"A2C": TINY_AGENTS["A2C"], "SAC": TINY_AGENTS["SAC"]}, train={"episodes": 3, "schedule_timesteps": 2000, "threads": 1}
    )
    sequential, _ = train_jobs(config, tmp_path / "sequential", episodes=3, jobs=1)
    on_ray, observer = train_jobs(config, tmp_path / "ray", episodes=3, jobs=2, backend="ray")
    assert (sequential.exit_code, on_ray.exit_code, on_ray.failed) == (0, 0, [])
    for agent in ("A2C", "SAC"):
        assert_same_run(tmp_path / "sequential", tmp_path / "ray", agent)
    # The actors' events reached the driver's observer, each under its own agent.
    assert sorted(agent for agent, _ in observer.episodes) == ["A2C"] * 3 + ["SAC"] * 3
    assert observer.warnings == []


def test_a_killed_worker_is_retried_and_finishes_exactly(tmp_path: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, train={"episodes": 8, "schedule_timesteps": 2000, "threads": 1})
    folder = tmp_path / "ray/test/A2C"

    def kill_the_worker() -> None:
        holder = (folder.parent / ".A2C.lock").read_text()  # "pid N on host": the actor holds the job's lock
        os.kill(int(holder.split()[1]), signal.SIGKILL)

    killer = _after_first_commit(folder, kill_the_worker)
    on_ray, observer = train_jobs(config, tmp_path / "ray", episodes=8, jobs=1, backend="ray")
    killer.join()
    assert (on_ray.exit_code, on_ray.failed) == (0, [])
    assert any(
        "A2C: its Ray worker died (ActorDiedError); retry 1 of 3 resumes its newest commit" in w for w in observer.warnings
    )
    trainings = read_history(folder / "history.json").trainings
    assert len(trainings) == 2 and trainings[1].resumed_from is not None  # the retry was a --resume
    entries = read_metadata(folder / "metadata.json").checkpoints
    assert [entry.episode for entry in entries] == sorted({entry.episode for entry in entries})  # no duplicate commit
    train_jobs(config, tmp_path / "one_go", episodes=8, jobs=1)
    assert_same_run(tmp_path / "one_go", tmp_path / "ray", "A2C")


def test_a_stop_commits_every_job_and_resume_is_exact(tmp_path: Path) -> None:
    config = tiny_config({"SAC": TINY_AGENTS["SAC"]}, env=BUILDING_DAY)
    config["train"].update(threads=1, save_every=1000, save_every_steps=30)  # the stop's commit is mid-run
    root = tmp_path / "ck"
    stopper = _after_first_commit(root / "test/SAC", lambda: os.kill(os.getpid(), signal.SIGINT))
    stopped, _ = train_jobs(config, root, episodes=100000, jobs=1, backend="ray")
    stopper.join()
    assert (stopped.exit_code, stopped.stopped_by, stopped.committed) == (130, "SIGINT", 1)
    history = read_history(root / "test/SAC/history.json")
    metadata = read_metadata(root / "test/SAC/metadata.json")
    assert metadata.checkpoints[-1].timesteps == history.trainings[-1].end_timesteps  # the stop's own commit
    total = history.total_episodes + 1
    resumed, _ = train_jobs(config, root, episodes=total - history.total_episodes, jobs=1, resume=True, backend="ray")
    assert resumed.exit_code == 0
    train_jobs(config, tmp_path / "one_go", episodes=total, jobs=1)
    assert_same_run(tmp_path / "one_go", root, "SAC")


def test_a_job_out_of_retries_is_reported_and_exits_1(tmp_path: Path) -> None:
    config = tiny_config(
        {"A2C": TINY_AGENTS["A2C"]}, train={"episodes": 8, "schedule_timesteps": 2000, "threads": 1, "max_retries": 0}
    )
    folder = tmp_path / "ray/test/A2C"

    def kill_the_worker() -> None:
        os.kill(int((folder.parent / ".A2C.lock").read_text().split()[1]), signal.SIGKILL)

    killer = _after_first_commit(folder, kill_the_worker)
    on_ray, _ = train_jobs(config, tmp_path / "ray", episodes=8, jobs=1, backend="ray")
    killer.join()
    assert (on_ray.exit_code, on_ray.failed) == (1, ["A2C: its Ray worker died 1 time(s) (train.max_retries: 0)"])
    assert 1 <= read_history(folder / "history.json").total_episodes < 8  # what it committed stays, for --resume


def hub_pid(driver: int) -> int:
    """The newest live hub actor's process under ``driver`` (whose local Ray's raylet starts the
    workers): Ray titles it ``ray::Hub``, ``ray::Hub.drain`` while busy. Only the driver's own
    descendants: other Ray sessions may run on this machine."""
    hubs = []
    for process in psutil.Process(driver).children(recursive=True):
        try:
            if process.cmdline()[:1] and process.cmdline()[0].startswith("ray::Hub") and process.status() != "zombie":
                hubs.append(process)
        except psutil.Error:  # ended meanwhile
            continue
    assert hubs, "no ray::Hub process"
    return max(hubs, key=lambda process: process.create_time()).pid


def test_a_killed_hub_is_restarted_and_the_run_finishes_exactly(tmp_path: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"], "PPO": TINY_AGENTS["PPO"]}, train={"schedule_timesteps": 2000, "threads": 1})
    killed: list[int] = []

    def kill_the_hub() -> None:
        killed.append(hub_pid(os.getpid()))
        os.kill(killed[0], signal.SIGKILL)

    killer = _after_first_commit(tmp_path / "ray/test/A2C", kill_the_hub)
    on_ray, observer = train_jobs(config, tmp_path / "ray", episodes=8, jobs=2, backend="ray")
    killer.join()
    assert killed and not psutil.pid_exists(killed[0])
    assert (on_ray.exit_code, on_ray.failed) == (0, [])
    assert observer.warnings == ["the Ray hub actor (ray::Hub) died and was restarted; the jobs resend their progress to it"]
    _, sequential = train_jobs(config, tmp_path / "one_go", episodes=8, jobs=1)
    for agent in ("A2C", "PPO"):
        assert_same_run(tmp_path / "one_go", tmp_path / "ray", agent)
        trainings = read_history(tmp_path / "ray/test" / agent / "history.json").trainings
        assert len(trainings) == 1  # no job was retried: the hub's death cost the jobs nothing
    # Every event reached the driver once and in order, although the hub lost what it held.
    shown = {agent: [record.episode for name, record in observer.episodes if name == agent] for agent in ("A2C", "PPO")}
    assert shown == {"A2C": list(range(1, 9)), "PPO": list(range(1, 9))}
    assert [(agent, record.model_dump(exclude={"seconds"})) for agent, record in sorted(observer.episodes, key=_by_agent)] == [
        (agent, record.model_dump(exclude={"seconds"})) for agent, record in sorted(sequential.episodes, key=_by_agent)
    ]


def _by_agent(item: tuple[str, Any]) -> tuple[str, int]:
    return item[0], item[1].episode


def test_evaluations_on_ray_are_recorded_as_in_a_sequential_run(tmp_path: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, seeds=[0, 1], train=EVALUATED)
    sequential, seen_sequentially = train_jobs(config, tmp_path / "sequential", episodes=4, jobs=1)
    on_ray, seen_on_ray = train_jobs(config, tmp_path / "ray", episodes=4, jobs=2, backend="ray")
    assert (sequential.exit_code, on_ray.exit_code, on_ray.failed) == (0, 0, [])
    assert_same_evaluations(tmp_path / "sequential", seen_sequentially, tmp_path / "ray", seen_on_ray)
