"""--jobs N: each (agent, seed) run in its own process gives the same bits as running alone;
seeds: each seed is an ordinary run in <run_dir>/seed_<S>/<AGENT>/."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from atheria_cli.config import ExperimentConfig
from atheria_cli.run.formats import read_history
from atheria_cli.training.jobs import JobsOutcome, plan_jobs, run_jobs
from tests.conftest import TINY_AGENTS, listing, tiny_config
from tests.integration.helpers import SB3_SECTIONS, RecordingObserver, assert_same_tree, episodes, last_payload

pytestmark = pytest.mark.integration

COMPARED_SECTIONS = SB3_SECTIONS
EVALUATED = {"schedule_timesteps": 2000, "threads": 1, "eval": {"every": 2, "episodes": 2, "seed": 7}}


def train_jobs(
    config: dict[str, Any], root: Path, episodes: int, jobs: int, **request: Any
) -> tuple[JobsOutcome, RecordingObserver]:
    experiment = ExperimentConfig.model_validate({**config, "checkpoints_dir": str(root)})
    observer = RecordingObserver()
    outcome = run_jobs(plan_jobs(experiment, jobs=jobs, episodes=episodes, **request), observer)
    return outcome, observer


def assert_same_run(left: Path, right: Path, agent: str, right_agent: str | None = None, experiment: str = "test") -> None:
    """Every tensor of the last checkpoint, and every episode record but its wall time, of the
    run ``<root>/<experiment>/<agent>`` under each root.

    Replay segment files are compared by their rows (the buffer), not by how commits split them.
    """
    right_agent = right_agent or agent
    a, b = last_payload(left, agent, experiment), last_payload(right, right_agent, experiment)
    for payload in (a, b):
        payload["buffer"].pop("segments", None)
    assert (a["episode"], a["num_timesteps"]) == (b["episode"], b["num_timesteps"])
    for section in COMPARED_SECTIONS:
        first, second = a[section], b[section]
        if section == "model":  # the Monitor's per-episode wall time "t" differs run to run
            first, second = (
                {**state, "ep_info_buffer": [{k: v for k, v in info.items() if k != "t"} for info in state["ep_info_buffer"]]}
                for state in (first, second)
            )
        assert_same_tree(first, second, f"{agent}.{section}")
    sides = ((left, agent), (right, right_agent))
    records = [[record.model_dump(exclude={"seconds"}) for record in episodes(root, name, experiment)] for root, name in sides]
    assert records[0] == records[1] and len(records[0]) == a["episode"]


def assert_same_evaluations(left: Path, left_seen: RecordingObserver, right: Path, right_seen: RecordingObserver) -> None:
    """The evaluations in every run's history, and those the observer was shown (each once, under
    the run's label), are a sequential run's: an A2C experiment with seeds 0 and 1, 4 episodes
    evaluated every 2."""
    runs = ["seed_0/A2C", "seed_1/A2C"]
    for run in runs:
        stored = [
            [item.model_dump(exclude={"seconds"}) for item in read_history(root / "test" / run / "history.json").evaluations]
            for root in (left, right)
        ]
        assert stored[0] == stored[1] and [item["episode"] for item in stored[0]] == [2, 4], run
    shown = [
        [(run, record.model_dump(exclude={"seconds"})) for run, record in sorted(seen.evaluations, key=_run_and_episode)]
        for seen in (left_seen, right_seen)
    ]
    assert shown[0] == shown[1] and [run for run, _ in shown[0]] == sorted(runs * 2)


def _run_and_episode(item: tuple[str, Any]) -> tuple[str, int]:
    return item[0], item[1].episode


def test_parallel_jobs_write_the_same_bits_as_sequential_runs(tmp_path: Path) -> None:
    train = {"episodes": 3, "schedule_timesteps": 2000, "threads": 1}
    config = tiny_config({"A2C": TINY_AGENTS["A2C"], "SAC": TINY_AGENTS["SAC"]}, train=train)
    sequential, _ = train_jobs(config, tmp_path / "sequential", episodes=3, jobs=1)
    parallel, observer = train_jobs(config, tmp_path / "parallel", episodes=3, jobs=2)
    assert (sequential.exit_code, parallel.exit_code, parallel.failed) == (0, 0, [])
    for agent in ("A2C", "SAC"):
        assert_same_run(tmp_path / "sequential", tmp_path / "parallel", agent)
        history = read_history(tmp_path / "parallel/test" / agent / "history.json")
        assert [session.threads for session in history.trainings] == [1]
    # The children's events reached the parent's observer, each under its own agent.
    assert sorted(agent for agent, _ in observer.episodes) == ["A2C"] * 3 + ["SAC"] * 3
    assert observer.warnings == []


def test_evaluations_under_parallel_jobs_are_recorded_as_in_a_sequential_run(tmp_path: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, seeds=[0, 1], train=EVALUATED)
    sequential, seen_sequentially = train_jobs(config, tmp_path / "sequential", episodes=4, jobs=1)
    parallel, seen_in_parallel = train_jobs(config, tmp_path / "parallel", episodes=4, jobs=2)
    assert (sequential.exit_code, parallel.exit_code, parallel.failed) == (0, 0, [])
    assert_same_evaluations(tmp_path / "sequential", seen_sequentially, tmp_path / "parallel", seen_in_parallel)


def test_each_seed_is_an_ordinary_run_in_its_own_folder(tmp_path: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, seeds=[0, 3])
    outcome, observer = train_jobs(config, tmp_path / "seeds", episodes=2, jobs=1)
    assert outcome.exit_code == 0
    assert listing(tmp_path / "seeds/test") == ["seed_0", "seed_3"]
    assert listing(tmp_path / "seeds/test/seed_3") == ["A2C"]
    stored = json.loads((tmp_path / "seeds/test/seed_3/A2C/config.json").read_text())
    assert stored["config"]["seed"] == 3
    assert {agent for agent, _ in observer.episodes} == {"seed_0/A2C", "seed_3/A2C"}
    # Seed 3 of a multi-seed experiment is the run that `seed: 3` alone would have made.
    plain = tiny_config({"A2C": TINY_AGENTS["A2C"]}, seed=3)
    train_jobs(plain, tmp_path / "plain", episodes=2, jobs=1)
    assert_same_run(tmp_path / "seeds", tmp_path / "plain", "seed_3/A2C", "A2C")
    seed_0, seed_3 = (episodes(tmp_path / "seeds", f"seed_{seed}/A2C") for seed in (0, 3))
    assert [record.reward for record in seed_0] != [record.reward for record in seed_3]


def test_max_hours_is_one_deadline_for_every_job(tmp_path: Path) -> None:
    config = tiny_config({"SAC": TINY_AGENTS["SAC"]}, seeds=[0, 1], train={"schedule_timesteps": 2000, "threads": 1})
    experiment = ExperimentConfig.model_validate({**config, "checkpoints_dir": str(tmp_path)})
    plan = plan_jobs(experiment, jobs=2, episodes=100_000, max_hours=15 / 3600)
    observer, started = RecordingObserver(), datetime.now(timezone.utc)
    outcome = run_jobs(plan, observer)
    assert (outcome.exit_code, outcome.stopped_by, outcome.failed) == (0, "time budget", [])
    # Each job stopped before the deadline, or (on a machine too loaded to start it in time) never started.
    said = {warning.split(":")[0] for warning in observer.warnings if "time budget" in warning}
    assert said == {"seed_0/SAC", "seed_1/SAC"}
    for seed in (0, 1):
        history = tmp_path / f"test/seed_{seed}/SAC/history.json"
        if not history.exists():
            continue
        session = read_history(history).trainings[-1]
        slowest = max(record.seconds for record in episodes(tmp_path, f"seed_{seed}/SAC"))
        began = (datetime.fromisoformat(session.session_timestamp) - started).total_seconds()
        ended = began + session.duration_seconds
        # The deadline counts from the parent's start, not from each job's own (later) start: no
        # episode begins after it. (A loaded machine may start a job's session late; the budget
        # is checked between episodes, so such a job ends after one.) Timestamps are to the second.
        assert ended <= max(15, began) + slowest + 1, f"seed {seed}"


def test_resuming_with_another_thread_count_warns(tmp_path: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, train={"schedule_timesteps": 2000, "threads": 1})
    train_jobs(config, tmp_path, episodes=1, jobs=1)
    config["train"]["threads"] = 2
    _, observer = train_jobs(config, tmp_path, episodes=1, jobs=1, resume=True)
    assert observer.warnings == [
        "A2C: resuming with 2 torch thread(s) instead of 1; float results may differ from an uninterrupted run"
    ]
    history = read_history(tmp_path / "test/A2C/history.json")
    assert [session.threads for session in history.trainings] == [1, 2]
