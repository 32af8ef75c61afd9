"""A trial's segment whose job process was killed is trained again, up to train.max_retries
times per job; a crash is not (the process-level test is in tests/integration/test_tune.py)."""

from __future__ import annotations

from typing import Any

import pytest

from atheria_cli.config import ExperimentConfig
from atheria_cli.training.job import JobsOutcome
from atheria_cli.tune import trials
from tests.conftest import TINY_AGENTS, tiny_config

KILLED = "seed_0/A2C: the job process was killed by SIGKILL"


class _Warnings:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warn(self, message: str) -> None:
        self.lines.append(message)


def _segment(monkeypatch: pytest.MonkeyPatch, outcomes: list[JobsOutcome | None], retries: int = 2) -> tuple[Any, list[str], int]:
    """Run train_segment on a trial whose training returns ``outcomes`` in turn: the last
    outcome, the warnings, and how many times it trained."""
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, experiment="tuned/tune/lr/trial_0003", seeds=[0, 1])
    config["train"]["max_retries"] = retries
    trial = ExperimentConfig.model_validate(config)
    calls = iter(outcomes)
    trained = []

    def train_until(*args: Any) -> JobsOutcome | None:
        trained.append(args)
        return next(calls)

    monkeypatch.setattr(trials, "train_until", train_until)
    observer = _Warnings()
    outcome = trials.train_segment(trial, "A2C", 2, trials.Pool(jobs=2), observer)  # type: ignore[arg-type]
    return outcome, observer.lines, len(trained)


def _killed() -> JobsOutcome:
    return JobsOutcome(results=[], exit_code=1, failed=[KILLED], killed=["seed_0/A2C"])


def test_a_killed_job_trains_its_segment_again_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    done = JobsOutcome(results=[])
    outcome, warnings, trained = _segment(monkeypatch, [_killed(), _killed(), done])
    assert outcome is done and trained == 3
    assert warnings == [
        f"trial_0003/{KILLED}; retry 1 of 2 continues it from its last commit",
        f"trial_0003/{KILLED}; retry 2 of 2 continues it from its last commit",
    ]


def test_a_job_killed_more_often_than_max_retries_is_the_trials_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome, warnings, trained = _segment(monkeypatch, [_killed(), _killed()], retries=1)
    assert trained == 2 and len(warnings) == 1 and outcome.killed == ["seed_0/A2C"]


def test_a_crash_beside_a_kill_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    crashed = _killed()
    crashed.failed.append("seed_1/A2C: RuntimeError: boom (envs.py:9)")
    outcome, warnings, trained = _segment(monkeypatch, [crashed])
    assert (outcome, warnings, trained) == (crashed, [], 1)


def test_a_trial_whose_job_was_killed_too_often_fails_naming_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.test_tune import STUDY

    config = ExperimentConfig.model_validate(STUDY)
    monkeypatch.setattr(trials, "train_segment", lambda *args: _killed())
    result = trials.run_trial(
        config,
        config,
        pool=trials.Pool(jobs=2),
        observer=_Warnings(),
        verdict=lambda *args: "continue",
        stop_requested=lambda: False,
    )  # type: ignore[arg-type]
    assert (result.state, result.episodes) == ("failed", 2)
    assert result.reason == f"{KILLED} (retried 3 time(s), train.max_retries)"


DIVERGED = "agents.A2C: training diverged in episode 3: the policy's outputs are no longer finite (NaN or inf)"


def test_a_divergence_beside_a_kill_is_not_retried_and_prunes_the_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.test_tune import STUDY

    diverged = _killed()
    diverged.failed.append(f"seed_1/A2C: {DIVERGED}")
    diverged.diverged["seed_1/A2C"] = DIVERGED
    outcome, warnings, trained = _segment(monkeypatch, [diverged])
    assert (outcome, warnings, trained) == (diverged, [], 1)
    config = ExperimentConfig.model_validate(STUDY)
    monkeypatch.setattr(trials, "train_segment", lambda *args: diverged)
    result = trials.run_trial(
        config,
        config,
        pool=trials.Pool(jobs=2),
        observer=_Warnings(),
        verdict=lambda *args: "continue",
        stop_requested=lambda: False,
    )  # type: ignore[arg-type]
    assert (result.state, result.episodes, result.reason) == ("pruned", 2, f"diverged: seed_1/A2C: {DIVERGED}")
