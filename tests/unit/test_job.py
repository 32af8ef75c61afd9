"""How the results of many jobs become one outcome: the same for the local and the Ray backend."""

from __future__ import annotations

from pathlib import Path

from atheria_cli.config import ExperimentConfig
from atheria_cli.run.formats import CheckpointEntry
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.store import AgentStore
from atheria_cli.training.job import JobResult, JobsOutcome, finish_outcome
from atheria_cli.training.planning import AgentPlan, TrainPlan
from tests.conftest import tiny_config


def _plan(tmp_path: Path, seed: int) -> TrainPlan:
    config = ExperimentConfig.model_validate(tiny_config(checkpoints_dir=str(tmp_path), seed=seed))
    agents = tuple(
        AgentPlan(name, AgentStore(AgentLayout.of(config.run_dir, name)), resume_from=None, move_aside=False)
        for name in config.agents
    )
    return TrainPlan(config, 2, "cpu", agents, resume=False, allow_config_change=False, max_hours=None)


def _entry() -> CheckpointEntry:
    return CheckpointEntry(
        file="episode_0002.pt", episode=2, partial=False, timesteps=100, size=1, sha256="0" * 64, created="now"
    )


def test_results_are_grouped_per_seed_in_plan_order_and_commits_counted(tmp_path: Path) -> None:
    plans = [_plan(tmp_path, 1), _plan(tmp_path, 2)]
    results = {
        "seed_2/SAC": JobResult(agent="SAC", last_checkpoint=_entry()),
        "seed_1/A2C": JobResult(agent="A2C", last_checkpoint=_entry()),
        "seed_1/PPO": JobResult(agent="PPO"),
    }
    outcome = finish_outcome(JobsOutcome(results=[]), plans, [1, 2], results)
    assert [(plan.config.seed, [result.agent for result in done]) for plan, done in outcome.results] == [
        (1, ["A2C", "PPO"]),
        (2, ["SAC"]),
    ]
    assert outcome.committed == 2 and outcome.exit_code == 0 and outcome.stopped_by is None


def test_a_failed_job_makes_exit_1_unless_a_signal_set_the_code(tmp_path: Path) -> None:
    plans = [_plan(tmp_path, 1)]
    failed = finish_outcome(JobsOutcome(results=[], failed=["SAC: boom"]), plans, [None], {})
    assert failed.exit_code == 1
    signalled = finish_outcome(
        JobsOutcome(results=[], failed=["SAC: boom"], stopped_by="SIGINT", exit_code=130), plans, [None], {}
    )
    assert (signalled.exit_code, signalled.stopped_by) == (130, "SIGINT")


def test_the_time_budget_stops_the_run_when_a_job_ran_out_or_never_started(tmp_path: Path) -> None:
    plans = [_plan(tmp_path, 1)]
    ran_out = finish_outcome(JobsOutcome(results=[]), plans, [None], {"SAC": JobResult(agent="SAC", stopped_by="time budget")})
    assert ran_out.stopped_by == "time budget"
    assert finish_outcome(JobsOutcome(results=[]), plans, [None], {}, skipped=True).stopped_by == "time budget"
    assert finish_outcome(JobsOutcome(results=[]), plans, [None], {}).stopped_by is None


def test_a_job_killed_by_a_signal_is_told_apart_from_a_crash_and_from_the_runs_own_stop() -> None:
    import signal

    from atheria_cli.training.jobs import _killed

    assert _killed(-signal.SIGKILL, None)  # kill -9, the OOM killer
    assert _killed(-signal.SIGKILL, signal.SIGTERM)  # killed while the run was stopping
    assert not _killed(-signal.SIGTERM, signal.SIGTERM)  # the run's own stop, forwarded
    assert not _killed(143, signal.SIGTERM)
    assert not _killed(1, None)  # an exception: exit 1
    outcome = JobsOutcome(
        results=[],
        failed=["seed_0/A2C: the job process was killed by SIGKILL", "seed_1/A2C: RuntimeError: boom (envs.py:9)"],
        killed=["seed_0/A2C"],
    )
    assert outcome.crashed() == ["seed_1/A2C: RuntimeError: boom (envs.py:9)"]
    assert JobsOutcome(results=[], failed=["A2C_x: killed"], killed=["A2C"]).crashed() == ["A2C_x: killed"]


def test_a_diverged_job_is_a_failure_of_its_own_not_a_crash() -> None:
    from atheria_cli.training.jobs import _receive, _Running

    diverged = "agents.A2C: training diverged in episode 3: the policy's outputs are no longer finite (NaN or inf)"

    class _Reader:
        def __init__(self, message: tuple[str, str]) -> None:
            self.message = message

        def recv(self) -> tuple[str, str]:
            return self.message

    outcome = JobsOutcome(results=[])
    for label, message in (("seed_0/A2C", ("diverged", diverged)), ("seed_1/A2C", ("failed", "RuntimeError: boom (envs.py:9)"))):
        entry = _Running(job=type("Job", (), {"label": label})(), process=None)  # type: ignore[arg-type]
        assert _receive(_Reader(message), entry, None, {}, outcome)  # type: ignore[arg-type]
        assert entry.done
    assert outcome.failed == [f"seed_0/A2C: {diverged}", "seed_1/A2C: RuntimeError: boom (envs.py:9)"]
    assert outcome.diverged == {"seed_0/A2C": diverged}
    assert outcome.crashed() == ["seed_1/A2C: RuntimeError: boom (envs.py:9)"]
