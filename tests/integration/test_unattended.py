"""Long unattended runs: locks, signals, mid-episode checkpoints, budget, retention, mirror,
monitoring, TensorBoard, verify, disk full, kill -9."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import numpy as np
import pytest
from typer.testing import CliRunner

import atheria_cli
from atheria_cli.cli import app
from atheria_cli.run.locking import AgentLock
from tests.conftest import TINY_AGENTS, listing, tiny_config, write_config
from tests.integration.helpers import SB3_SECTIONS, agent_dir, assert_same_tree, last_payload, rewards, train

pytestmark = pytest.mark.integration
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]

# The built-in building env implements the state protocol; one day = 24 hourly steps.
BUILDING_DAY = {
    "id": "atheria/BuildingCO2-v0",
    "kwargs": {"days": 1},
    "max_episode_steps": 24,
    "metrics": [{"name": "co2_kg", "goal": "min"}],
}


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def sac_config(in_tmp: Path) -> Path:
    return write_config(in_tmp / "exp.yaml", tiny_config({"SAC": TINY_AGENTS["SAC"]}))


# --- single writer -------------------------------------------------------------------------


def test_a_second_writer_is_refused_with_the_holders_pid(sac_config: Path, in_tmp: Path) -> None:
    lock = AgentLock(in_tmp / "checkpoints/test", "SAC")
    lock.acquire()
    try:
        result = invoke("train", "--config", str(sac_config), "--episodes", "1")
    finally:
        lock.release()
    assert result.exit_code == 2
    assert result.stderr.startswith(f"atheria: error: SAC is being trained by another atheria process (pid {os.getpid()} on ")
    assert not (in_tmp / "checkpoints/test/SAC").exists()
    assert listing(in_tmp / "checkpoints/test") == []


def test_a_stale_lock_of_a_dead_process_is_taken_over(sac_config: Path, in_tmp: Path) -> None:
    (in_tmp / "checkpoints/test").mkdir(parents=True)
    (in_tmp / "checkpoints/test/.SAC.lock").write_text("pid 999999 on elsewhere")  # no flock held
    result = invoke("train", "--config", str(sac_config), "--episodes", "1")
    assert result.exit_code == 0, result.output
    assert listing(in_tmp / "checkpoints/test") == ["SAC"]  # released and removed


# --- config drift --------------------------------------------------------------------------


def test_resume_with_a_changed_config_is_refused_unless_allowed(in_tmp: Path) -> None:
    config = tiny_config({"SAC": TINY_AGENTS["SAC"]})
    path = write_config(in_tmp / "exp.yaml", config)
    assert invoke("train", "--config", str(path), "--episodes", "1").exit_code == 0
    config["agents"]["SAC"]["hyperparams"]["batch_size"] = 32
    write_config(path, config)
    result = invoke("train", "--config", str(path), "--episodes", "1", "--resume")
    assert result.exit_code == 2
    assert result.stderr.startswith("atheria: error: SAC: the config differs from the run's config.json (agents.SAC: ")
    assert "'batch_size': 16" in result.stderr and "'batch_size': 32" in result.stderr
    assert result.stderr.endswith("use --allow-config-change to resume with the new one\n")
    allowed = invoke("train", "--config", str(path), "--episodes", "1", "--resume", "--allow-config-change")
    assert allowed.exit_code == 0, allowed.output
    assert "atheria: warning: SAC: resuming with a changed config (agents.SAC: " in allowed.stderr


# --- signals and mid-episode checkpoints ---------------------------------------------------


class _InterruptAfterFirstCommit:
    """Sends a real SIGINT to this process right after the first (mid-episode) commit."""

    def __init__(self, observer) -> None:
        self.observer, self.sent = observer, False

    def __getattr__(self, name: str):
        return getattr(self.observer, name)

    def checkpoint_committed(self, agent, entry) -> None:
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def _interrupted_session(config: dict, root: Path, episodes: int):
    from atheria_cli.config import ExperimentConfig
    from atheria_cli.training.planning import plan_training
    from atheria_cli.training.session import run_training
    from tests.integration.helpers import RecordingObserver

    experiment = ExperimentConfig.model_validate({**config, "checkpoints_dir": str(root)})
    observer = RecordingObserver()
    outcome = run_training(plan_training(experiment, episodes=episodes), _InterruptAfterFirstCommit(observer))
    return outcome, observer


@pytest.mark.parametrize("agent", ["SAC", "PPO"])
def test_sigint_mid_episode_then_resume_is_exact_with_a_stateful_env(agent: str, tmp_path: Path) -> None:
    config = tiny_config({agent: TINY_AGENTS[agent]}, env=BUILDING_DAY)
    config["train"]["save_every_steps"] = 10  # first commit at step 10, mid-episode
    train(config, tmp_path / "one_go", episodes=3)
    outcome, _ = _interrupted_session(config, tmp_path / "resumed", episodes=3)
    assert (outcome.stopped_by, outcome.exit_code) == ("SIGINT", 130)
    folder = agent_dir(tmp_path / "resumed", agent)
    metadata = json.loads((folder / "metadata.json").read_text())
    # Stopped after the step following the signal: 11 steps into episode 1.
    assert metadata["checkpoints"][-1]["file"] == "episode_0000.t11.pt" and metadata["checkpoints"][-1]["partial"] is True
    assert json.loads((folder / "history.json").read_text())["trainings"][0]["end_timesteps"] == 11
    resumed = train(config, tmp_path / "resumed", episodes=3, resume=True)
    assert resumed.warnings == []  # the env restored its own state: nothing restarted
    assert rewards(tmp_path / "resumed", agent) == rewards(tmp_path / "one_go", agent)
    a, b = last_payload(tmp_path / "one_go", agent), last_payload(tmp_path / "resumed", agent)
    # The extra commit splits the replay stream into other segment files; the rows are the same.
    for payload in (a, b):
        payload["buffer"].pop("segments", None)
        payload["model"]["ep_info_buffer"] = [
            {k: v for k, v in info.items() if k != "t"} for info in payload["model"]["ep_info_buffer"]
        ]
    for section in SB3_SECTIONS:
        assert_same_tree(a[section], b[section], f"{agent}.{section}")
    if agent == "SAC":
        one_go = atheria_cli.load_agent(agent_dir(tmp_path / "one_go", agent) / "episode_0003.pt").replay_buffer
        again = atheria_cli.load_agent(agent_dir(tmp_path / "resumed", agent) / "episode_0003.pt").replay_buffer
        for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
            assert np.array_equal(getattr(one_go, name)[:72], getattr(again, name)[:72]), name


def test_sigint_mid_episode_without_env_state_restarts_that_episode(tmp_path: Path) -> None:
    config = tiny_config({"SAC": TINY_AGENTS["SAC"]})
    config["train"]["save_every_steps"] = 20
    outcome, _ = _interrupted_session(config, tmp_path, episodes=3)
    assert outcome.exit_code == 130
    assert last_payload(tmp_path, "SAC")["buffer"]["rows_total"] == 21  # its transitions are kept
    resumed = train(config, tmp_path, episodes=2, resume=True)
    assert any("cannot restore their state; they start a new episode" in warning for warning in resumed.warnings)
    # The interrupted episode is not counted: episodes 1 and 2 follow, each a full 50 steps.
    assert [record.episode for _, record in resumed.episodes] == [1, 2]
    assert [record.length for _, record in resumed.episodes] == [50, 50]
    assert last_payload(tmp_path, "SAC")["buffer"]["rows_total"] == 121


def _training_process(tmp_path: Path, agent: str) -> tuple[subprocess.Popen, Path, Path]:
    """A real `atheria train` of many episodes, returned once its first checkpoint is committed."""
    config = tiny_config({agent: TINY_AGENTS[agent]}, checkpoints_dir=str(tmp_path / "ck"))
    path = write_config(tmp_path / "exp.yaml", config)
    process = subprocess.Popen(
        [sys.executable, "-m", "atheria_cli", "train", "--config", str(path), "--episodes", "100000"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    metadata = tmp_path / f"ck/test/{agent}/metadata.json"
    deadline = time.monotonic() + 60
    while not metadata.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return process, path, metadata


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_a_real_process_commits_and_exits(signum: int, code: int, tmp_path: Path) -> None:
    process, path, metadata = _training_process(tmp_path, "PPO")
    os.kill(process.pid, signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    last = json.loads(metadata.read_text())["checkpoints"][-1]["file"]
    assert f"atheria: stopped by {signal.Signals(signum).name}: checkpoint {last} committed; continue with --resume" in err
    assert "Traceback" not in err
    resumed = runner.invoke(app, ["train", "--config", str(path), "--episodes", "1", "--resume"])
    assert resumed.exit_code == 0, resumed.output


def test_a_second_sigint_exits_at_once_without_damage(tmp_path: Path) -> None:
    process, path, _ = _training_process(tmp_path, "SAC")
    os.kill(process.pid, signal.SIGINT)
    os.kill(process.pid, signal.SIGINT)  # impatient: the second one must not wait for a commit
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in err
    assert runner.invoke(app, ["verify", "--config", str(path)]).exit_code == 0
    assert runner.invoke(app, ["train", "--config", str(path), "--episodes", "1", "--resume"]).exit_code == 0


def test_save_every_steps_writes_mid_episode_checkpoints(in_tmp: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]})
    config["train"]["save_every_steps"] = 40
    path = write_config(in_tmp / "exp.yaml", config)
    assert invoke("train", "--config", str(path), "--episodes", "2").exit_code == 0
    assert [name for name in listing(in_tmp / "checkpoints/test/A2C") if name.endswith(".pt")] == [
        "episode_0000.t40.pt",
        "episode_0001.pt",
        "episode_0001.t80.pt",
        "episode_0002.pt",
    ]


# --- time budget ---------------------------------------------------------------------------


def test_time_budget_stops_cleanly_with_everything_committed(sac_config: Path, in_tmp: Path) -> None:
    result = invoke("train", "--config", str(sac_config), "--episodes", "5", "--max-hours", "0.000001")
    assert result.exit_code == 0, result.output
    assert "atheria: warning: SAC: stopping before the time budget runs out (after episode 1)" in result.stderr
    metadata = json.loads((in_tmp / "checkpoints/test/SAC/metadata.json").read_text())
    assert metadata["last_episode"] == 1 and metadata["checkpoints"][-1]["file"] == "episode_0001.pt"


def test_max_hours_must_be_positive(sac_config: Path) -> None:
    result = invoke("train", "--config", str(sac_config), "--max-hours", "0")
    assert result.exit_code == 2 and result.stderr == "atheria: error: --max-hours must be positive (got 0.0)\n"


# --- retention -----------------------------------------------------------------------------


def test_retention_keeps_last_best_and_every(in_tmp: Path) -> None:
    config = tiny_config({"SAC": {"hyperparams": {**TINY_AGENTS["SAC"]["hyperparams"], "buffer_size": 120}}})
    config["train"]["keep"] = {"last": 2, "best": 1, "every": 3}
    path = write_config(in_tmp / "exp.yaml", config)
    assert invoke("train", "--config", str(path), "--episodes", "7").exit_code == 0
    folder = in_tmp / "checkpoints/test/SAC"
    episode_rewards = [json.loads(line)["reward"] for line in (folder / "episodes.jsonl").read_text().splitlines()]
    best = max(range(1, 8), key=lambda episode: (episode_rewards[episode - 1], episode))
    expected = sorted({3, 6, 7, best} | {6, 7})
    assert [name for name in listing(folder) if name.endswith(".pt")] == [f"episode_{e:04d}.pt" for e in expected]
    metadata = json.loads((folder / "metadata.json").read_text())
    assert [c["episode"] for c in metadata["checkpoints"]] == expected
    needed = {
        segment["file"]
        for segment in metadata["replay_segments"]
        for c in metadata["checkpoints"]
        if segment["end"] > c["replay_rows"][0] and segment["start"] < c["replay_rows"][1]
    }
    assert needed == {segment["file"] for segment in metadata["replay_segments"]}
    assert {f"replay/{name}" for name in listing(folder / "replay")} == needed
    assert invoke("verify", "--config", str(path)).exit_code == 0
    # The checkpoint a session resumes from is never removed during that session.
    result = invoke("train", "--config", str(path), "--episodes", "1", "--resume")
    assert result.exit_code == 0 and "episode_0007.pt" in listing(folder)


def test_prune_applies_the_policy_to_an_existing_run(in_tmp: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]})
    path = write_config(in_tmp / "exp.yaml", config)
    assert invoke("train", "--config", str(path), "--episodes", "4").exit_code == 0
    refused = invoke("prune", "--config", str(path))
    assert (
        refused.exit_code == 2
        and refused.stderr == "atheria: error: the config has no train.keep policy: every checkpoint is kept\n"
    )
    config["train"]["keep"] = {"last": 1}
    write_config(path, config)
    result = invoke("prune", "--config", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "A2C: removed 3 checkpoint(s): episode_0001.pt, episode_0002.pt, episode_0003.pt\n"
    assert [n for n in listing(in_tmp / "checkpoints/test/A2C") if n.endswith(".pt")] == ["episode_0004.pt"]


# --- mirror --------------------------------------------------------------------------------


@pytest.fixture
def memory_mirror():
    memory = fsspec.filesystem("memory")
    memory.store.clear()
    memory.pseudo_dirs[:] = [""]  # the memory filesystem's root must stay
    yield memory
    memory.store.clear()
    memory.pseudo_dirs[:] = [""]


def test_mirror_copies_commits_and_restores_a_lost_run(in_tmp: Path, memory_mirror) -> None:
    config = tiny_config({"SAC": TINY_AGENTS["SAC"]})
    config["train"]["mirror"] = {"to": "memory://drive/atheria", "every": 1}
    path = write_config(in_tmp / "exp.yaml", config)
    assert invoke("train", "--config", str(path), "--episodes", "2").exit_code == 0
    mirrored = sorted(p.removeprefix("/drive/atheria/test/SAC/") for p in memory_mirror.find("/drive/atheria/test/SAC"))
    local = in_tmp / "checkpoints/test/SAC"
    assert mirrored == sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    # The machine is gone: a new one resumes from the mirror.
    os.rename(in_tmp / "checkpoints", in_tmp / "lost")
    result = invoke("train", "--config", str(path), "--episodes", "1", "--resume")
    assert result.exit_code == 0, result.output
    assert (
        "atheria: warning: SAC: the mirror memory://drive/atheria holds a newer commit; restoring from it first" in result.stderr
    )
    assert "SAC: episodes 3–3 (resuming from episode_0002.pt)" in result.stderr
    history = json.loads((in_tmp / "checkpoints/test/SAC/history.json").read_text())
    assert history["total_episodes"] == 3 and len(history["trainings"]) == 2
    assert json.loads(memory_mirror.cat_file("/drive/atheria/test/SAC/metadata.json"))["last_episode"] == 3


# --- monitoring and TensorBoard ------------------------------------------------------------


def test_resource_readout_every_n_episodes(in_tmp: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]})
    config["train"]["monitor_every"] = 2
    path = write_config(in_tmp / "exp.yaml", config)
    result = invoke("train", "--config", str(path), "--episodes", "4", "--max-hours", "1")
    assert result.exit_code == 0
    lines = [line for line in result.stderr.splitlines() if "episodes/h" in line]
    assert len(lines) == 2
    assert all(
        line.startswith("A2C: elapsed 0:00:") and "budget left 0:59:" in line and "RAM " in line and "CPU " in line
        for line in lines
    )


def test_the_monitor_s_readings_are_kept_in_the_session_record(in_tmp: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]})
    config["train"]["monitor_every"] = 2
    path = write_config(in_tmp / "exp.yaml", config)
    result = invoke("train", "--config", str(path), "--episodes", "4")
    assert result.exit_code == 0, result.output
    printed = [line.removeprefix("A2C: ") for line in result.stderr.splitlines() if "episodes/h" in line]
    session = json.loads((in_tmp / "checkpoints/test/A2C/history.json").read_text())["trainings"][-1]
    resources = session["resources"]
    assert resources["readings"] == 2 and resources["last"] == printed[-1]
    assert resources["peak_rss_bytes"] > 2**20 and resources["mean_cpu_percent"] >= 0
    assert resources["mean_gpu_utilization"] is None  # no GPU here: NVML is not asked on a CPU run


def test_tensorboard_continues_without_duplicated_steps(in_tmp: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config({"SAC": TINY_AGENTS["SAC"]})
    config["train"]["tensorboard"] = True
    path = write_config(in_tmp / "exp.yaml", config)
    assert invoke("train", "--config", str(path), "--episodes", "3").exit_code == 0
    folder = in_tmp / "checkpoints/test/SAC"
    # Lose the last checkpoint: resume falls back to episode 2, so episode 3's events are purged.
    (folder / "episode_0003.pt").write_bytes(b"damaged")
    assert invoke("train", "--config", str(path), "--episodes", "2", "--resume").exit_code == 0
    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    steps = [event.step for event in events.Scalars("episode/reward")]
    assert steps == [50, 100, 150, 200]
    assert "train/actor_loss" in events.Tags()["scalars"]


# --- verify, disk full, kill -9 ------------------------------------------------------------


def test_verify_reports_problems_with_exit_1(sac_config: Path, in_tmp: Path) -> None:
    assert invoke("train", "--config", str(sac_config), "--episodes", "2").exit_code == 0
    good = invoke("verify", "--config", str(sac_config))
    assert good.exit_code == 0 and good.stdout == "SAC: 2 checkpoint(s), ok\n"
    (in_tmp / "checkpoints/test/SAC/replay/episode_0001.npz").write_bytes(b"x")
    (in_tmp / "checkpoints/test/SAC/episode_0009.pt").write_bytes(b"left by a crash")
    bad = invoke("verify", "--config", str(sac_config), "SAC")
    assert bad.exit_code == 1
    assert bad.stdout == (
        "SAC: 2 checkpoint(s), 1 problem(s)\n  replay/episode_0001.npz: sha256 differs from the one its checkpoints record\n"
    )
    assert "episode_0009.pt is not committed" in bad.stderr


def test_disk_full_during_a_save_keeps_the_previous_state(
    sac_config: Path, in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import atheria_cli.run.atomic as atomic

    assert invoke("train", "--config", str(sac_config), "--episodes", "1").exit_code == 0
    before = {p.name: p.read_bytes() for p in (in_tmp / "checkpoints/test/SAC").iterdir() if p.is_file()}
    real = atomic._write_replace

    def disk_full(path: Path, data: bytes) -> None:
        if path.name.endswith(".pt"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)

    monkeypatch.setattr(atomic, "_write_replace", disk_full)
    result = invoke("train", "--config", str(sac_config), "--episodes", "1", "--resume")
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "atheria: error: cannot write checkpoints/test/SAC/episode_0002.pt: No space left on device; the previous state is intact\n"
    )
    after = {p.name: p.read_bytes() for p in (in_tmp / "checkpoints/test/SAC").iterdir() if p.is_file()}
    assert {name: after[name] for name in before} == before
    monkeypatch.setattr(atomic, "_write_replace", real)  # the disk has room again
    assert invoke("verify", "--config", str(sac_config)).exit_code == 0
    assert invoke("train", "--config", str(sac_config), "--episodes", "1", "--resume").exit_code == 0


def test_kill_9_at_random_moments_never_loses_committed_work(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import fault_injection
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    report = fault_injection.run(kills=20, workdir=tmp_path, seed=1)
    assert report.problems == []
    # A kill before the session's first commit proves little: half the kills wait for one.
    assert report.landed_after_commit >= 10, f"only {report.landed_after_commit} of 20 kills landed after a commit"


# --- review fixes: the mirror belongs to one run, prune under a lock, leftovers, segments -----


def test_a_mirror_holding_a_run_is_never_overwritten_by_a_new_one(in_tmp: Path, memory_mirror) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]})
    config["train"]["mirror"] = {"to": "memory://drive/atheria"}
    path = write_config(in_tmp / "exp.yaml", config)
    assert invoke("train", "--config", str(path), "--episodes", "2").exit_code == 0
    os.rename(in_tmp / "checkpoints", in_tmp / "elsewhere")  # a new machine, no --resume
    refused = invoke("train", "--config", str(path), "--episodes", "1")
    assert refused.exit_code == 2
    assert refused.stderr == (
        "atheria: error: A2C: the mirror memory://drive/atheria/test/A2C holds a run (2 episode(s)); "
        "use --resume to continue it or --fresh to move it aside and start over\n"
    )
    fresh = invoke("train", "--config", str(path), "--episodes", "1", "--fresh")
    assert fresh.exit_code == 0, fresh.output
    assert "A2C: the mirrored run moved to /drive/atheria/test/A2C.old-" in fresh.stderr
    old = [p for p in memory_mirror.ls("/drive/atheria/test", detail=False) if ".old-" in p]
    assert len(old) == 1 and json.loads(memory_mirror.cat_file(f"{old[0]}/metadata.json"))["last_episode"] == 2
    assert json.loads(memory_mirror.cat_file("/drive/atheria/test/A2C/metadata.json"))["last_episode"] == 1
    # The first machine's run is another run: resuming it against this mirror is refused.
    os.rename(in_tmp / "checkpoints", in_tmp / "second")
    os.rename(in_tmp / "elsewhere", in_tmp / "checkpoints")
    other = invoke("train", "--config", str(path), "--episodes", "1", "--resume")
    assert other.exit_code == 2 and "holds another run (created " in other.stderr


def test_prune_waits_for_no_one_while_training_holds_the_lock(in_tmp: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]})
    config["train"]["keep"] = {"last": 1}
    path = write_config(in_tmp / "exp.yaml", config)
    assert invoke("train", "--config", str(path), "--episodes", "2").exit_code == 0
    lock = AgentLock(in_tmp / "checkpoints/test", "A2C")
    lock.acquire()
    try:
        result = invoke("prune", "--config", str(path))
    finally:
        lock.release()
    assert result.exit_code == 2 and "A2C is being trained by another atheria process" in result.stderr


def test_leftovers_of_a_session_killed_before_its_first_commit_are_moved_aside(sac_config: Path, in_tmp: Path) -> None:
    folder = in_tmp / "checkpoints/test/SAC"
    (folder / "replay").mkdir(parents=True)
    (folder / "episode_0001.pt").write_bytes(b"half")
    (folder / "replay/episode_0001.npz").write_bytes(b"half")
    result = invoke("train", "--config", str(sac_config), "--episodes", "1", "--resume")
    assert result.exit_code == 0, result.output
    assert "SAC: checkpoints/test/SAC holds no committed checkpoint (a session stopped before its first commit)" in result.stderr
    names = listing(in_tmp / "checkpoints/test")
    assert names[0] == "SAC" and names[1].startswith("SAC.old-")
    assert listing(in_tmp / "checkpoints/test" / names[1]) == ["episode_0001.pt", "replay"]


def test_resume_falls_back_when_a_replay_segment_is_damaged(sac_config: Path, in_tmp: Path) -> None:
    assert invoke("train", "--config", str(sac_config), "--episodes", "3").exit_code == 0
    (in_tmp / "checkpoints/test/SAC/replay/episode_0003.npz").write_bytes(b"damaged")
    result = invoke("train", "--config", str(sac_config), "--episodes", "1", "--resume")
    assert result.exit_code == 0, result.output
    assert "SAC: episode_0003.pt is unusable (replay/episode_0003.npz: " in result.stderr
    assert "resuming from episode_0002.pt" in result.stderr


def test_a_checkpoint_that_cannot_follow_a_config_change_is_one_line(in_tmp: Path) -> None:
    config = tiny_config({"PPO": TINY_AGENTS["PPO"]})
    path = write_config(in_tmp / "exp.yaml", config)
    assert invoke("train", "--config", str(path), "--episodes", "1").exit_code == 0
    config["agents"]["PPO"]["hyperparams"]["policy_kwargs"] = {"net_arch": [32]}
    write_config(path, config)
    result = invoke("train", "--config", str(path), "--episodes", "1", "--resume", "--allow-config-change")
    assert result.exit_code == 2
    assert "atheria: error: PPO: episode_0001.pt cannot be restored into this config (" in result.stderr
    assert result.stderr.endswith("revert the change or use --fresh\n") and "Traceback" not in result.stderr


def test_a_failing_mirror_warns_and_training_goes_on(in_tmp: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]})
    config["train"]["mirror"] = {"to": "/proc/atheria-mirror"}  # the kernel refuses new folders here
    path = write_config(in_tmp / "exp.yaml", config)
    result = invoke("train", "--config", str(path), "--episodes", "2")
    assert result.exit_code == 0, result.output
    assert "A2C: mirroring failed (cannot write /proc/atheria-mirror/test/A2C/episode_0001.pt: " in result.stderr
    assert "training goes on, the next commit retries" in result.stderr
    assert json.loads((in_tmp / "checkpoints/test/A2C/metadata.json").read_text())["last_episode"] == 2


class _InterruptAfterFirstAgent(_InterruptAfterFirstCommit):
    def checkpoint_committed(self, agent, entry) -> None:
        pass

    def agent_finished(self, agent) -> None:
        self.observer.agent_finished(agent)
        os.kill(os.getpid(), signal.SIGINT)


def test_a_signal_between_two_agents_stops_before_the_next(tmp_path: Path) -> None:
    from atheria_cli.config import ExperimentConfig
    from atheria_cli.training.planning import plan_training
    from atheria_cli.training.session import run_training
    from tests.integration.helpers import RecordingObserver

    config = tiny_config({"A2C": TINY_AGENTS["A2C"], "PPO": TINY_AGENTS["PPO"]}, checkpoints_dir=str(tmp_path))
    outcome = run_training(
        plan_training(ExperimentConfig.model_validate(config), episodes=1), _InterruptAfterFirstAgent(RecordingObserver())
    )
    assert (outcome.stopped_by, outcome.exit_code) == ("SIGINT", 130)
    assert [result.agent for result in outcome.results] == ["A2C"]
    assert listing(tmp_path / "test") == ["A2C"]
