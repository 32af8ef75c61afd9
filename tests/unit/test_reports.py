"""The inspection core (atheria_cli.reports) on runs written with the real store (no torch)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from atheria_cli.config import ExperimentConfig, KeepPolicy, load_config
from atheria_cli.deploy.selection import select_checkpoint
from atheria_cli.errors import ConfigError, DamagedFileError, StorageError, UsageError
from atheria_cli.metrics import Quantity, improvement, main_quantity, percent_of, quantities, verdict, versus_baseline
from atheria_cli.reports.compare import compare_report
from atheria_cli.reports.history import build_history, episodes_csv, history_json, history_report, rolling_mean
from atheria_cli.reports.output import check_output_path, check_plot_path
from atheria_cli.reports.runs import read_run, require_run
from atheria_cli.reports.status import status_report
from atheria_cli.run import atomic
from atheria_cli.run.formats import EpisodeRecord, History, Metadata, SessionRecord
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.retention import kept_checkpoints, ranked_by
from atheria_cli.run.store import AgentStore, now_iso
from tests.conftest import write_config

CHECKPOINT = b"fake checkpoint bytes"


def experiment(root: Path, **overrides: Any) -> ExperimentConfig:
    config = {
        "experiment": "unit",
        "checkpoints_dir": str(root / "checkpoints"),
        "env": {"id": "Pendulum-v1", "metrics": [{"name": "co2_kg", "goal": "min"}, "comfort"]},
        "agents": {"PPO": {}, "SAC": {}},
        **overrides,
    }
    return ExperimentConfig.model_validate(config)


def record(episode: int, reward: float | None, co2: float | None, comfort: float | None = 1.0) -> EpisodeRecord:
    return EpisodeRecord(
        episode=episode,
        timesteps=episode * 10,
        reward=reward,
        length=10,
        seconds=0.5,
        metrics={"co2_kg": co2, "comfort": comfort},
    )


def commit_sessions(config: ExperimentConfig, agent: str, sessions: list[list[EpisodeRecord]]) -> AgentStore:
    """Commit each session's episodes through AgentStore.commit, as training does."""
    store = AgentStore(AgentLayout.of(config.run_dir, agent))
    history = History(agent=agent)
    metadata = Metadata(
        agent=agent,
        algo=agent,
        policy="MlpPolicy",
        env_id="Pendulum-v1",
        experiment=config.experiment,
        last_episode=0,
        total_timesteps=0,
        device="cpu",
        hyperparams={},
        versions={},
        created=now_iso(),
        updated=now_iso(),
    )
    timesteps = 0
    for records in sessions:
        first, last = records[0], records[-1]
        history.trainings.append(
            SessionRecord(
                session_timestamp="2026-11-23T05:08:56+00:00",
                start_episode=first.episode,
                end_episode=last.episode,
                episodes_count=len(records),
                device="cpu",
                duration_seconds=1.5,
                start_timesteps=timesteps,
                end_timesteps=last.timesteps,
            )
        )
        timesteps = last.timesteps
        history.total_episodes = last.episode
        store.commit(
            checkpoint_bytes=CHECKPOINT,
            entry_episode=last.episode,
            timesteps=last.timesteps,
            history=history,
            metadata=metadata,
            run_config=None,
            new_episodes=records,
        )
    return store


@pytest.fixture
def config(tmp_path: Path) -> ExperimentConfig:
    return experiment(tmp_path, baseline={"co2_kg": 100, "reward": -50})


@pytest.fixture
def two_sessions(config: ExperimentConfig) -> AgentStore:
    """PPO: episodes 1-3 then 4-5; co2 falls (better, goal min), reward falls (worse)."""
    return commit_sessions(
        config,
        "PPO",
        [
            [record(1, -10.0, 90.0), record(2, -20.0, 80.0), record(3, -30.0, 70.0)],
            [record(4, -40.0, 60.0), record(5, None, 40.0)],
        ],
    )


# --- small pieces --------------------------------------------------------------------------------


def test_versus_baseline_gives_gain_percent_and_verdict_or_nothing() -> None:
    assert versus_baseline(70.0, 100.0, "min") == (30.0, 30.0, "better")
    assert versus_baseline(-120.0, -100.0, "max") == (-20.0, -20.0, "worse")
    assert versus_baseline(5.0, 0.0, "max") == (5.0, None, "better")  # no percentage of a zero baseline
    assert versus_baseline(None, 100.0, "max") == versus_baseline(70.0, None, "min") == (None, None, None)


def test_quantities_and_main_metric(config: ExperimentConfig, tmp_path: Path) -> None:
    assert quantities(config) == [Quantity("reward", "max"), Quantity("co2_kg", "min"), Quantity("comfort", "max")]
    assert main_quantity(config) == Quantity("co2_kg", "min")
    no_metrics = experiment(tmp_path, env={"id": "Pendulum-v1"})
    assert main_quantity(no_metrics) == Quantity("reward", "max")


@pytest.mark.parametrize(
    "change, goal, expected",
    [(1.0, "max", "better"), (-1.0, "max", "worse"), (-1.0, "min", "better"), (1.0, "min", "worse"), (0.0, "min", "same")],
)
def test_verdict_follows_the_goal(change: float, goal: str, expected: str) -> None:
    assert verdict(improvement(1.0 + change, 1.0, goal)) == expected  # type: ignore[arg-type]


def test_percent_is_relative_to_the_magnitude_of_the_reference() -> None:
    assert percent_of(-279.0, 550.0) == pytest.approx(-50.727, abs=1e-3)
    assert percent_of(5.0, -10.0) == 50.0
    assert percent_of(1.0, 0.0) is None


def test_rolling_mean_is_trailing_and_skips_missing_values() -> None:
    assert rolling_mean([1.0, 2.0, 3.0, 4.0], 2) == [1.0, 1.5, 2.5, 3.5]
    assert rolling_mean([1.0, None, 3.0, None, None, None], 2) == [1.0, 1.0, 3.0, 3.0, None, None]
    values = [float(v) for v in range(100)]
    assert rolling_mean(values, 10)[-1] == pytest.approx(sum(values[-10:]) / 10)


def test_output_paths_are_checked(tmp_path: Path) -> None:
    check_output_path(tmp_path / "x.csv", "--csv")
    with pytest.raises(UsageError, match=r"^--csv .*/nope/x.csv: folder .*/nope does not exist$"):
        check_output_path(tmp_path / "nope" / "x.csv", "--csv")
    with pytest.raises(UsageError, match="is a folder; give a file name"):
        check_output_path(tmp_path, "--csv")
    check_plot_path(tmp_path / "curve.SVG")
    with pytest.raises(UsageError, match=r"unsupported image type '\(none\)'; use .png, .svg or .pdf"):
        check_plot_path(tmp_path / "curve")


# --- reading a run -------------------------------------------------------------------------------


def test_run_states(config: ExperimentConfig, two_sessions: AgentStore) -> None:
    assert read_run(config, "SAC").state == "no run"
    (config.run_dir / "SAC").mkdir()
    assert read_run(config, "SAC").state == "no run"  # an empty folder is no run either
    (config.run_dir / "SAC" / "episodes.jsonl").write_text("")
    assert read_run(config, "SAC").state == "uncommitted"
    run = read_run(config, "PPO")
    assert run.state == "committed" and run.latest is not None and run.latest.file == "episode_0005.pt"
    assert [r.episode for r in run.records] == [1, 2, 3, 4, 5]


def test_require_run_says_what_to_do(config: ExperimentConfig, two_sessions: AgentStore) -> None:
    with pytest.raises(UsageError, match=r"^unknown agent 'TD3': the experiment has PPO, SAC$"):
        require_run(config, "TD3")
    with pytest.raises(UsageError) as caught:
        require_run(config, "SAC")
    assert str(caught.value) == f"SAC has no run in {config.run_dir / 'SAC'}; start one with: atheria train --agent SAC"
    (config.run_dir / "SAC").mkdir()
    (config.run_dir / "SAC" / "history.json").write_text("{}")
    with pytest.raises(
        UsageError, match="SAC has files but no committed checkpoint in .*; start over with: atheria train --agent SAC --fresh"
    ):
        require_run(config, "SAC")


def test_history_ahead_of_metadata_is_cut_to_the_commit(config: ExperimentConfig, two_sessions: AgentStore) -> None:
    """A crash after history.json and before metadata.json: the last session is not committed."""
    layout = two_sessions.layout
    metadata = json.loads(layout.metadata.read_text())
    metadata["checkpoints"] = metadata["checkpoints"][:1]  # only episode_0003.pt committed
    layout.metadata.write_text(json.dumps(metadata))
    run = read_run(config, "PPO")
    assert run.latest is not None and run.latest.episode == 3
    assert [r.episode for r in run.records] == [1, 2, 3]
    report = build_history(config, run)
    assert report.total_episodes == 3 and [s.end_episode for s in report.sessions] == [3]


def test_damaged_latest_entry_names_the_field(config: ExperimentConfig, two_sessions: AgentStore) -> None:
    path = two_sessions.layout.metadata
    metadata = json.loads(path.read_text())
    metadata["checkpoints"][-1]["sha256"] = "not hex"
    path.write_text(json.dumps(metadata))
    with pytest.raises(DamagedFileError) as caught:
        read_run(config, "PPO")
    assert str(caught.value) == f"{path}: checkpoints.1.sha256: String should match pattern '^[0-9a-f]{{64}}$'"


def test_a_mid_episode_checkpoint_is_the_latest(config: ExperimentConfig, two_sessions: AgentStore) -> None:
    """A signal or save_every_steps commits episode_0005.t57.pt: no new episode, more timesteps."""
    store = two_sessions
    store.commit(
        checkpoint_bytes=CHECKPOINT,
        entry_episode=5,
        timesteps=57,
        partial=True,
        history=store.history(),
        metadata=store.metadata(),
        run_config=None,
        new_episodes=[],
    )
    ppo = status_report(config).agents[0]
    assert (ppo.episodes, ppo.timesteps, ppo.resumable) == (5, 57, True)
    assert ppo.last_checkpoint == str(config.run_dir / "PPO" / "episode_0005.t57.pt")
    report = history_report(config, "PPO")
    assert (report.total_episodes, report.total_timesteps, len(report.episodes())) == (5, 57, 5)


def test_checkpoints_that_are_not_a_list_are_damage(config: ExperimentConfig, two_sessions: AgentStore) -> None:
    path = two_sessions.layout.metadata
    path.write_text(json.dumps({**json.loads(path.read_text()), "checkpoints": {"file": "episode_0005.pt"}}))
    with pytest.raises(DamagedFileError) as caught:
        read_run(config, "PPO")
    assert str(caught.value) == f"{path}: checkpoints: Input should be a valid list"


def test_missing_history_is_damage(config: ExperimentConfig, two_sessions: AgentStore) -> None:
    two_sessions.layout.history.unlink()
    with pytest.raises(DamagedFileError, match="history.json: file is missing"):
        read_run(config, "PPO")


# --- history ---------------------------------------------------------------------------------------


def test_history_sessions_rows_and_convergence(config: ExperimentConfig, two_sessions: AgentStore) -> None:
    report = history_report(config, "PPO")
    assert report.total_episodes == 5 and report.total_timesteps == 50
    assert [(s.session, s.start_episode, s.end_episode, s.episodes) for s in report.sessions] == [(1, 1, 3, 3), (2, 4, 5, 2)]
    assert [row.session for row in report.episodes()] == [1, 1, 1, 2, 2]
    assert [row.episode for row in report.episodes(2)] == [4, 5] and report.episodes(0) == []
    reward, co2, comfort = report.convergence
    assert [m.mean for m in reward.sessions] == [-20.0, -40.0]  # episode 5's missing reward is skipped
    assert (reward.sessions[1].change, reward.sessions[1].change_percent, reward.sessions[1].verdict) == (-20.0, -100.0, "worse")
    assert [m.mean for m in co2.sessions] == [80.0, 50.0]
    assert (co2.sessions[1].change, co2.sessions[1].change_percent, co2.sessions[1].verdict) == (-30.0, -37.5, "better")
    assert co2.sessions[0].change is None and co2.sessions[0].verdict is None
    assert comfort.sessions[1].verdict == "same"


def test_history_json_and_csv(config: ExperimentConfig, two_sessions: AgentStore) -> None:
    report = history_report(config, "PPO")
    document = json.loads(json.dumps(history_json(report, 1), allow_nan=False))
    assert document["episodes_shown"] == 1 and document["episodes"][0]["episode"] == 5
    assert document["episodes"][0]["reward"] is None
    assert [trend["quantity"] for trend in document["convergence"]] == ["reward", "co2_kg", "comfort"]
    rows = list(csv.reader(io.StringIO(episodes_csv(report).decode())))
    assert rows[0] == ["episode", "session", "timesteps", "reward", "length", "co2_kg", "comfort", "seconds"]
    assert rows[1] == ["1", "1", "10", "-10.0", "10", "90.0", "1.0", "0.5"]
    assert rows[5] == ["5", "2", "50", "", "10", "40.0", "1.0", "0.5"]


def test_history_writes_csv_and_plot(config: ExperimentConfig, two_sessions: AgentStore, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    out.mkdir()
    report = history_report(config, "PPO", csv_path=out / "e.csv", plot_path=out / "curve.png")
    assert report.written == [str(out / "e.csv"), str(out / "curve.png")]
    assert sorted(path.name for path in out.iterdir()) == ["curve.png", "e.csv"]
    assert (out / "curve.png").read_bytes().startswith(b"\x89PNG")


def test_a_crash_before_the_rename_leaves_the_previous_csv_whole(
    config: ExperimentConfig, two_sessions: AgentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "e.csv"
    target.write_bytes(b"previous export\n")

    def crash(source: str, destination: object) -> None:
        raise OSError(28, "No space left on device")  # between the temporary write and the rename

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(StorageError, match="the previous state is intact"):
        history_report(config, "PPO", csv_path=target)
    assert target.read_bytes() == b"previous export\n"
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.endswith(".csv") or ".tmp" in path.name) == ["e.csv"]


def test_bad_output_path_fails_before_reading(config: ExperimentConfig) -> None:
    # PPO has no run: the output path is still what is reported, since it is checked first.
    with pytest.raises(UsageError, match="^--plot .*: folder .* does not exist$"):
        history_report(config, "PPO", plot_path=Path(config.checkpoints_dir) / "nowhere" / "c.png")


# --- status and compare ------------------------------------------------------------------------------


def test_status_rows(config: ExperimentConfig, two_sessions: AgentStore) -> None:
    report = status_report(config)
    assert report.metric == Quantity("co2_kg", "min")
    ppo, sac = report.agents
    assert (ppo.state, ppo.episodes, ppo.timesteps, ppo.last_value, ppo.best_value, ppo.best_episode) == (
        "committed",
        5,
        50,
        40.0,
        40.0,
        5,
    )
    assert ppo.last_checkpoint == str(config.run_dir / "PPO" / "episode_0005.pt")
    folder = config.run_dir / "PPO"
    assert ppo.disk_bytes == sum(path.stat().st_size for path in folder.iterdir())
    assert ppo.resumable and ppo.resume_problem is None
    assert (sac.state, sac.resumable, sac.disk_bytes) == ("no run", False, 0)


def test_status_best_follows_the_goal(tmp_path: Path) -> None:
    config = experiment(tmp_path, env={"id": "Pendulum-v1", "metrics": [{"name": "co2_kg", "goal": "max"}]})
    commit_sessions(config, "PPO", [[record(1, -1.0, 5.0), record(2, -1.0, 9.0), record(3, -1.0, 9.0), record(4, -1.0, None)]])
    ppo = status_report(config).agents[0]
    # Episodes 2 and 3 tie: the later one is best (atheria_cli.metrics.rank).
    assert (ppo.best_value, ppo.best_episode, ppo.last_value) == (9.0, 3, None)


@pytest.mark.parametrize("goal, values, best_episode", [("max", [9.0, 5.0, 9.0, 1.0], 3), ("min", [1.0, 5.0, 1.0, 9.0], 3)])
def test_status_checkpoint_best_and_retention_agree_on_a_tie(
    tmp_path: Path, goal: str, values: list[float], best_episode: int
) -> None:
    config = experiment(tmp_path, env={"id": "Pendulum-v1", "metrics": [{"name": "co2_kg", "goal": goal}]})
    store = commit_sessions(config, "PPO", [[record(episode, -1.0, value)] for episode, value in enumerate(values, start=1)])
    assert status_report(config).agents[0].best_episode == best_episode
    assert select_checkpoint(store, "PPO", "best", config).episode == best_episode
    policy = KeepPolicy(best=1)
    kept = kept_checkpoints(store.metadata().checkpoints, policy, store.episodes(store.history()), main_quantity(config))
    # The newest checkpoint is always kept; the other survivor is the best one.
    assert sorted(entry.episode for entry in kept) == sorted({best_episode, len(values)})


def test_retention_ranks_a_non_main_metric_by_its_own_goal(tmp_path: Path) -> None:
    # comfort (max) is the main metric; keep.metric names co2_kg, whose goal is min.
    env = {"id": "Pendulum-v1", "metrics": ["comfort", {"name": "co2_kg", "goal": "min"}]}
    config = experiment(tmp_path, env=env, train={"keep": {"best": 1, "metric": "co2_kg"}})
    assert ranked_by(config) == Quantity("co2_kg", "min")
    store = commit_sessions(config, "PPO", [[record(episode, -1.0, co2)] for episode, co2 in enumerate([5.0, 9.0, 1.0, 7.0], 1)])
    policy = config.train.keep
    assert policy is not None
    kept = kept_checkpoints(store.metadata().checkpoints, policy, store.episodes(store.history()), ranked_by(config))
    assert [entry.episode for entry in kept] == [3, 4]  # 3: the lowest co2; 4: the newest
    overridden = experiment(tmp_path, env=env, train={"keep": {"best": 1, "metric": "co2_kg", "goal": "max"}})
    assert ranked_by(overridden) == Quantity("co2_kg", "max")
    assert ranked_by(experiment(tmp_path, env=env, train={"keep": {"best": 1}})) == Quantity("comfort", "max")


def test_keep_metric_must_be_a_recorded_quantity(tmp_path: Path) -> None:
    base = {"env": {"id": "X-v0", "metrics": [{"name": "co2_kg", "goal": "min"}]}, "agents": {"PPO": {}}}
    for name in ("reward", "co2_kg"):
        config = load_config(write_config(tmp_path / "good.yaml", {**base, "train": {"keep": {"best": 1, "metric": name}}}))
        assert config.train.keep is not None and config.train.keep.metric == name
    path = write_config(tmp_path / "bad.yaml", {**base, "train": {"keep": {"best": 1, "metric": "co2"}}})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (
        str(caught.value)
        == f"{path}: train.keep.metric: 'co2' is not 'reward' or a metric of env.metrics (known: reward, co2_kg)"
    )


def test_compare_against_baseline(config: ExperimentConfig, two_sessions: AgentStore) -> None:
    report = compare_report(config, window=2)
    assert (report.metric.name, report.baseline, report.best_agent) == ("co2_kg", 100.0, "PPO")
    ppo, sac = report.agents
    assert (ppo.episodes, ppo.first_episode, ppo.last_episode, ppo.mean, ppo.std) == (2, 4, 5, 50.0, 10.0)
    assert (ppo.improvement, ppo.improvement_percent, ppo.verdict) == (50.0, 50.0, "better")
    assert sac.mean is None and sac.state == "no run"
    reward = compare_report(config, window=10, metric="reward").agents[0]
    # Only 4 of the 5 episodes have a reward; goal max: -25 against a baseline of -50 is better.
    assert (reward.episodes, reward.mean, reward.improvement, reward.improvement_percent) == (4, -25.0, 25.0, 50.0)
    assert math.isclose(reward.std or 0.0, math.sqrt(125.0))


def test_compare_without_baseline_and_bad_options(tmp_path: Path) -> None:
    config = experiment(tmp_path)
    commit_sessions(config, "PPO", [[record(1, -1.0, 5.0)]])
    report = compare_report(config)
    assert report.baseline is None and report.agents[0].improvement is None and report.agents[0].verdict is None
    with pytest.raises(UsageError, match="^unknown metric 'co2': the experiment records reward, co2_kg, comfort$"):
        compare_report(config, metric="co2")
    with pytest.raises(UsageError, match=r"^--window must be at least 1 \(got 0\)$"):
        compare_report(config, window=0)


# --- the baseline field of the config ------------------------------------------------------------------


def test_baseline_field(tmp_path: Path) -> None:
    base = {"env": {"id": "X-v0", "metrics": [{"name": "co2_kg", "goal": "min"}]}, "agents": {"PPO": {}}}
    assert load_config(write_config(tmp_path / "a.yaml", base)).baseline == {}
    config = load_config(write_config(tmp_path / "b.yaml", {**base, "baseline": {"co2_kg": 550, "reward": -3.5}}))
    assert config.baseline == {"co2_kg": 550.0, "reward": -3.5}
    for baseline, message in [
        ({"co2": 550}, "baseline.co2: not 'reward' or a metric of env.metrics (known: reward, co2_kg)"),
        ({"co2_kg": "lots"}, "baseline.co2_kg: Input should be a valid number"),
        ({"co2_kg": float("inf")}, "baseline.co2_kg: Input should be a finite number"),
    ]:
        path = write_config(tmp_path / "bad.yaml", {**base, "baseline": baseline})
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert str(caught.value).startswith(f"{path}: {message}"), str(caught.value)
