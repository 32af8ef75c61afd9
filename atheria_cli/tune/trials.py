"""One trial: the base entry with the trial's values, trained on every tuning seed as ordinary
atheria runs, in segments that end at the evaluations.

Trial ``i`` is the experiment ``<experiment>/tune/<study>/trial_000i`` with the tuning seeds
as its ``seeds``, so each seed's run is ``.../trial_000i/seed_<S>/<AGENT>/`` with its lock,
retention, mirror and ``verify``, like any multi-seed run. The seeds train to episode ``e``
(a multiple of ``train.eval.every``, each ending in a committed evaluation) through the jobs
pool or on a Ray cluster (:func:`atheria_cli.training.jobs.run_jobs`, :class:`Pool`; one Ray
for the whole study, :func:`pool_session`); only then does the driver report the
objective at step ``e`` and ask the pruner, so a pruned trial's last commit is that one. The
next segment resumes each seed from its newest intact commit, which is also how a killed
trial continues, and how a segment whose job process was killed is trained again (up to
``train.max_retries`` times): a seed that already reached ``e`` is not trained again.

With ``tune.until_timesteps`` instead of ``tune.episodes``, the segments go on evaluation by
evaluation: a seed is finished at its first evaluation commit at or after that many timesteps
and is not trained again; the trial's last step is the one at which every seed is finished.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from atheria_cli.config import ExperimentConfig, config_to_dict
from atheria_cli.config.tune import TuneConfig
from atheria_cli.errors import ConfigError, TrainingDivergedError, UsageError
from atheria_cli.reports.evaluations import committed_evaluations
from atheria_cli.run.layout import RAY_DRIVER_LOG, AgentLayout
from atheria_cli.run.seeds import replicates
from atheria_cli.run.store import AgentStore, RunState
from atheria_cli.training.jobs import JobsOutcome, JobsPlan, checked_backend, run_jobs
from atheria_cli.training.planning import plan_training
from atheria_cli.training.session import TrainObserver
from atheria_cli.training.threads import threads_per_job
from atheria_cli.tune.layout import StudyLayout
from atheria_cli.tune.objective import TrialObjective, trial_objective
from atheria_cli.tune.space import with_values

# The verdict after a segment: go on, stop as pruned, or (the driver's) stop the whole study.
Verdict = Literal["continue", "prune"]


@dataclass(frozen=True)
class Pool:
    """Where a trial's seeds train, as ``atheria train``'s ``--jobs``, ``--backend``,
    ``--address`` and ``--verbose`` say: ``jobs`` at once, on this machine or a Ray cluster."""

    jobs: int = 1
    backend: str = "local"
    address: str | None = None
    verbose: bool = False


def plan_pool(
    config: ExperimentConfig,
    *,
    jobs: int | None = None,
    backend: str | None = None,
    address: str | None = None,
    verbose: bool = False,
) -> Pool:
    """The options, else ``train.jobs`` / ``train.backend`` / ``train.address``, checked before
    anything is written (exit 2): an unknown backend, Ray without its extra, a cluster that may
    span machines without ``train.shared_storage`` (the driver reads every trial's evaluations
    from ``checkpoints_dir``; a mirror alone is not enough here)."""
    backend, address = checked_backend(config, backend, address)
    if backend == "ray":
        from atheria_cli.training.ray_backend import is_remote

        if is_remote(address) and not config.train.shared_storage:
            raise UsageError(
                f"atheria tune --address {address}: the driver reads each trial's evaluations from checkpoints_dir; "
                "put it on a filesystem every node mounts and set train.shared_storage: true"
            )
    return Pool(jobs=config.train.jobs if jobs is None else jobs, backend=backend, address=address, verbose=verbose)


@contextmanager
def pool_session(pool: Pool, folder: Path) -> Iterator[None]:
    """With the Ray backend, Ray started (or joined) once for every segment trained inside, its
    driver log in ``folder``; nothing with the local one."""
    if pool.backend != "ray":
        yield
        return
    from atheria_cli.training.ray_backend import ray_session

    with ray_session(pool.address, pool.verbose, folder / RAY_DRIVER_LOG):
        yield


@dataclass
class TrialResult:
    state: Literal["complete", "pruned", "failed", "stopped"]
    value: float | None = None
    reason: str | None = None  # why pruned or failed
    episodes: int = 0  # the last step reported
    stopped_by: str | None = None  # SIGINT / SIGTERM
    exit_code: int = 0


def trial_config(config: ExperimentConfig, layout: StudyLayout, index: int, values: dict[str, Any]) -> ExperimentConfig:
    """The experiment of trial ``index``: the base agent alone, with ``values`` applied, on the
    tuning seeds, in the trial's folder; validated like any config."""
    tune = config.tune
    assert tune is not None
    entry = with_values(config.agents[tune.agent], values)
    document = config_to_dict(config)
    document.update(experiment=layout.trial_experiment(index), seeds=list(tune.seeds), tune=None)
    document["agents"] = {tune.agent: {**entry.model_dump(mode="json"), "seed": None}}
    document["train"] = budgeted_by_tune(document["train"])
    return validated_config(document, config, tune.agent)


def budgeted_by_tune(train: dict[str, Any]) -> dict[str, Any]:
    """A trial's or ``--final``'s ``train`` section without the limits that end an ``atheria
    train`` session (``max_hours``, ``until_timesteps``): their runs end at tune's budget, and a
    session cut short by the base config's target would end before the segment's evaluation."""
    return {**train, "max_hours": None, "until_timesteps": None}


def validated_config(document: dict[str, Any], config: ExperimentConfig, agent: str) -> ExperimentConfig:
    """``document`` (a :func:`config_to_dict` of ``config``, edited) validated as a config; the
    base agent's rl-zoo3 origin carried over."""
    from pydantic import ValidationError

    from atheria_cli.config import format_validation_error

    try:
        built = ExperimentConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"tune: a trial's config is invalid: {format_validation_error(exc)}") from None
    origin = config.zoo_origin(agent)
    if origin is not None:
        built._zoo_origins[agent] = origin
    return built


def segment_ends(episodes: int | None, every: int) -> Iterable[int]:
    """The episodes a trial's segments end at: each evaluation, and the trial's last episode;
    with no episode budget (``tune.until_timesteps``), each evaluation until every seed is finished."""
    if episodes is None:
        return itertools.count(every, every)
    ends = list(range(every, episodes + 1, every))
    return ends if ends and ends[-1] == episodes else [*ends, episodes]


def finished_by(store: AgentStore, until_timesteps: int, upto: int | None = None) -> bool:
    """Whether a run has used up a ``until_timesteps`` budget (by episode ``upto``): it committed
    an evaluation at or after that many timesteps. Read from the committed run alone, so a killed
    study decides as the uninterrupted one did (a retry steps through the segments a finished
    seed has passed); a finished run is not trained again, so its first such evaluation is its
    last commit."""
    if store.state() is not RunState.COMMITTED:
        return False
    evaluations = committed_evaluations(store.history(), store.metadata().latest)
    return any(item.timesteps >= until_timesteps and (upto is None or item.episode <= upto) for item in evaluations)


def _trial_ended(tune: TuneConfig, trial: ExperimentConfig, end: int) -> bool:
    """Whether the evaluation at ``end`` is the trial's last: its episodes reached, or every seed finished."""
    if tune.episodes is not None:
        return end >= tune.episodes
    assert tune.until_timesteps is not None  # validated: exactly one budget
    return all(
        finished_by(AgentStore(AgentLayout.of(replicate.run_dir, tune.agent)), tune.until_timesteps, end)
        for _, replicate in replicates(trial)
    )


def run_trial(
    config: ExperimentConfig,
    trial: ExperimentConfig,
    *,
    pool: Pool,
    observer: TrainObserver,
    verdict: Callable[[int, TrialObjective, bool], Verdict],
    stop_requested: Callable[[], bool],
) -> TrialResult:
    """Train the trial segment by segment; after each evaluation ``verdict(episode, objective,
    last)`` records the objective at that step and says whether to go on (the last one only records).
    Returns at the end, when pruned, failed, or stopped by a signal. A training that diverged
    (the policy's outputs NaN or inf) prunes the trial with the divergence as its reason, as a
    non-finite evaluation does; any other exception of a job fails it."""
    tune, evaluation = config.tune, config.train.eval
    assert tune is not None and evaluation is not None
    metric = _metric_name(config)
    objective: TrialObjective | None = None
    for end in segment_ends(tune.episodes, evaluation.every):
        if stop_requested():
            return TrialResult("stopped", stopped_by="signal")
        try:
            outcome = train_segment(trial, tune.agent, end, pool, observer, tune.until_timesteps)
        except TrainingDivergedError as exc:  # --jobs 1: the session raised it in this process
            return TrialResult("pruned", reason=f"diverged: {exc.message}", episodes=end)
        if outcome is not None and (ended := _segment_ended(outcome, trial, end)) is not None:
            return ended
        if end % evaluation.every:
            continue  # the last episode is not an evaluation: the objective is the last one's
        objective = trial_objective(trial, tune.agent, metric, tune.objective.window, end)
        if objective.problem is not None:
            return TrialResult("pruned", reason=f"diverged: {objective.problem}", episodes=end)
        last = _trial_ended(tune, trial, end)
        if verdict(end, objective, last) == "prune" and not last:
            return TrialResult("pruned", value=objective.value, reason=f"pruned at episode {end}", episodes=end)
        if last:
            break
    assert objective is not None  # tune.episodes >= eval.every * window (validated); each seed ends at an evaluation
    return TrialResult("complete", value=objective.value, episodes=end)


def _segment_ended(outcome: JobsOutcome, trial: ExperimentConfig, end: int) -> TrialResult | None:
    """How a segment's jobs ended the trial, in order of precedence; None when all trained to ``end``."""
    if outcome.crashed():
        return TrialResult("failed", reason="; ".join(outcome.crashed()), episodes=end)
    if outcome.stopped_by in ("SIGINT", "SIGTERM"):
        return TrialResult("stopped", stopped_by=outcome.stopped_by, exit_code=outcome.exit_code)
    if outcome.diverged:  # --jobs N: a job's training diverged
        lines = "; ".join(f"{label}: {message}" for label, message in outcome.diverged.items())
        return TrialResult("pruned", reason=f"diverged: {lines}", episodes=end)
    if outcome.failed:  # killed more often than train.max_retries allows
        retries = f"retried {trial.train.max_retries} time(s), train.max_retries"
        return TrialResult("failed", reason=f"{'; '.join(outcome.failed)} ({retries})", episodes=end)
    return None


def train_segment(
    trial: ExperimentConfig, agent: str, end: int, pool: Pool, observer: TrainObserver, until_timesteps: int | None = None
) -> JobsOutcome | None:
    """Train every seed of the trial that has not committed episode ``end`` (nor finished its
    ``until_timesteps`` budget) up to it; None when all have. ``pool.jobs`` stays the same for
    every segment, so each seed trains with the same torch threads in every session and the
    trial stays bit-exact. A job killed by a signal is trained again (:func:`train_retried`)."""
    return train_retried(trial, [agent], end, pool, observer, until_timesteps)


def train_retried(
    config: ExperimentConfig,
    agents: list[str],
    end: int,
    pool: Pool,
    observer: TrainObserver,
    until_timesteps: int | None = None,
) -> JobsOutcome | None:
    """:func:`train_until`, again while a job's process was killed by a signal (kill -9, the OOM
    killer), up to ``train.max_retries`` times per job, with one warning each. A killed job
    left its run intact at its newest commit, so each run continues from there (one that
    reached ``end`` is not trained again) and ends as if nothing had been killed. Returns the
    last outcome: a crash, a divergence, a stop, or a job killed once too often is the caller's
    to report. A trial's segments and ``--final`` both train through it."""
    kills: Counter[str] = Counter()
    retries = config.train.max_retries
    while True:
        outcome = train_until(config, agents, end, pool, observer, until_timesteps)
        if outcome is None or not outcome.killed or outcome.crashed() or outcome.diverged or outcome.stopped_by is not None:
            return outcome
        kills.update(outcome.killed)
        if any(kills[label] > retries for label in outcome.killed):
            return outcome
        folder = config.experiment.rsplit("/", 1)[-1]  # trial_0003, final
        for line in outcome.failed:
            label = line.split(": ", 1)[0]
            observer.warn(f"{folder}/{line}; retry {kills[label]} of {retries} continues it from its last commit")


def train_until(
    config: ExperimentConfig, agents: list[str], end: int, pool: Pool, observer: TrainObserver, until_timesteps: int | None = None
) -> JobsOutcome | None:
    """Train each (seed, agent) run of ``config`` that has not committed episode ``end`` up to
    it, through the jobs pool or on Ray (``pool``); None when all have. Each run is planned on its own, so each
    resumes from its own newest intact commit (a killed study's runs stop at different episodes).
    With ``until_timesteps``, a run that has finished that budget (:func:`finished_by`) is left as it is."""
    plans, seeds = [], []
    for seed, replicate in replicates(config):
        for agent in agents:
            store = AgentStore(AgentLayout.of(replicate.run_dir, agent))
            done = _committed_episodes(store)
            if done >= end or (until_timesteps is not None and finished_by(store, until_timesteps)):
                continue
            resume = store.state() is RunState.COMMITTED
            plans.append(plan_training(replicate, agents=[agent], episodes=end - done, resume=resume))
            seeds.append(seed)
    if not plans:
        return None
    threads = threads_per_job(config.train.threads, pool.jobs)
    plan = JobsPlan(
        plans=tuple(plans),
        seeds=tuple(seeds),
        jobs=pool.jobs,
        threads=threads,
        backend=pool.backend,
        address=pool.address,
        verbose=pool.verbose,
    )
    return run_jobs(plan, observer)


def _committed_episodes(store: AgentStore) -> int:
    if store.state() is not RunState.COMMITTED:
        return 0
    latest = store.metadata().latest
    return 0 if latest is None else latest.episode


def _metric_name(config: ExperimentConfig) -> str:
    from atheria_cli.metrics import quantity_named

    assert config.tune is not None
    return quantity_named(config, config.tune.objective.metric).name
