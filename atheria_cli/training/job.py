"""One job of ``--jobs`` / ``--backend ray``: what it is, what it returns, how it is labelled,
its body, and how the results of many become one outcome; both backends use this module.

A job is one (agent, seed) run, labelled ``"SAC"`` or ``"seed_3/SAC"``
(:func:`~atheria_cli.training.events.run_label`, the label its observer events carry too).
Its body, :func:`train_job`, runs wherever the backend puts it (a forkserver child of
:mod:`atheria_cli.training.jobs`, a Ray actor of :mod:`atheria_cli.training.ray_backend`).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from atheria_cli.errors import RunExistsError
from atheria_cli.run.locking import AgentLock
from atheria_cli.training.events import run_label
from atheria_cli.training.planning import AgentPlan, TrainPlan, still_current
from atheria_cli.training.session import AgentResult, TrainObserver, TrainOutcome, train_one_agent
from atheria_cli.training.stopping import StopSignals, TimeBudget

TIME_BUDGET = "time budget"


@dataclass(frozen=True)
class Job:
    """One (agent, seed) run: the plan of its replicate and its agent's plan (both picklable)."""

    label: str  # "SAC", or "seed_3/SAC" in a multi-seed experiment (run_label)
    seed: int | None
    plan: TrainPlan
    agent: AgentPlan


@dataclass
class JobResult(AgentResult):
    """What a job that ran to its end returns to its backend."""

    stopped_by: str | None = None  # "time budget" when the shared deadline ended it


@dataclass
class JobsOutcome:
    results: list[tuple[TrainPlan, list[AgentResult]]]
    stopped_by: str | None = None
    exit_code: int = 0
    failed: list[str] = field(default_factory=list)  # "<label>: <why>"
    # The labels of failed jobs whose process a signal killed (kill -9, the OOM killer), not the
    # run's own stop signal: each run is intact at its newest commit, so training it again costs nothing.
    killed: list[str] = field(default_factory=list)
    # The failed jobs whose training diverged (TrainingDivergedError: the policy's outputs became
    # NaN or inf), label -> the session's message; their runs keep their last commit.
    diverged: dict[str, str] = field(default_factory=dict)
    committed: int = 0  # jobs that ended with a checkpoint

    def crashed(self) -> list[str]:
        """The failures that are neither a killed job's nor a diverged one's: an exception, a
        refusal, an exit code."""
        apart = [*self.killed, *self.diverged]
        return [line for line in self.failed if not any(line.startswith(f"{label}: ") for label in apart)]


def train_job(job: Job, observer: TrainObserver, signals: StopSignals, budget: TimeBudget) -> JobResult:
    """A job's body wherever it runs: lock, re-check the disk, train one agent."""
    lock = AgentLock(job.plan.config.run_dir, job.agent.name)
    lock.acquire()
    try:
        if not still_current(job.agent):
            raise RunExistsError(f"{job.label}: the run changed on disk while this command was starting; run it again")
        if not budget.allows_another_episode():  # this job's turn came after the shared deadline
            observer.warn(f"{job.agent.name}: the time budget ran out before this job started; nothing trained")
            return JobResult(agent=job.agent.name, stopped_by=TIME_BUDGET)
        session = TrainOutcome(results=[])
        result = train_one_agent(job.plan, job.agent, observer, signals, budget, session)
        return JobResult(**vars(result), stopped_by=session.stopped_by)
    finally:
        lock.release()


def failure_line(exc: BaseException) -> str:
    """A job's unexpected exception as the one line its backend reports: type, message, where."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    where = f"{os.path.basename(last.filename)}:{last.lineno}" if last else "no traceback"
    return f"{type(exc).__name__}: {exc} ({where})"


def finish_outcome(
    outcome: JobsOutcome,
    plans: Sequence[TrainPlan],
    seeds: Sequence[int | None],
    results: Mapping[str, JobResult],
    *,
    skipped: bool = False,
) -> JobsOutcome:
    """The outcome of a backend's jobs: failures make exit 1 (unless a signal set its own code),
    a job ended by the time budget (or one never started, ``skipped``) makes the run's
    ``stopped_by``, the results are grouped per replicate in the plan's order."""
    if outcome.failed and not outcome.exit_code:
        outcome.exit_code = 1
    if not outcome.stopped_by and (skipped or any(result.stopped_by == TIME_BUDGET for result in results.values())):
        outcome.stopped_by = TIME_BUDGET
    for replicate, seed in zip(plans, seeds, strict=True):
        labels = [run_label(agent.name, seed) for agent in replicate.agents]
        done: list[AgentResult] = [results[label] for label in labels if label in results]
        outcome.results.append((replicate, done))
    outcome.committed = sum(1 for _, done in outcome.results for result in done if result.last_checkpoint)
    return outcome
