"""The driver: the one process that owns a study, asks for trials, runs them, tells the results.

Each trial has an index ``i`` (its folder ``trial_000i`` and its sampler seed); Optuna's trial
number counts retries too. In order, trial ``i`` is ``tune.enqueue[i]`` while there are
enqueued entries, then a grid point (grid sampler) or what the sampler suggests.

``--resume`` finds the trials a stopped driver left RUNNING (none of their runs' locks held),
marks each FAIL (``interrupted``) and re-queues it WAITING with the same parameters, the same
index and ``retry_of``; the retry trains the same folders, each seed from its newest intact
commit, so it ends where the uninterrupted trial would have. FAIL trials do not count for the
samplers (TPE reads COMPLETE and PRUNED trials) nor for the median pruner.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import ClusterError, ConfigError, RunExistsError, RunLockedError, UsageError
from atheria_cli.run.locking import AgentLock
from atheria_cli.run.seeds import replicates
from atheria_cli.run.store import now_iso
from atheria_cli.trainers import kind_of
from atheria_cli.training.planning import plan_training
from atheria_cli.training.session import TrainObserver, library_versions
from atheria_cli.training.stopping import StopSignals
from atheria_cli.tune.extra import require_optuna
from atheria_cli.tune.layout import DRIVER_LOCK, StudyLayout
from atheria_cli.tune.objective import TrialObjective
from atheria_cli.tune.rebuild import rebuild_study, recorded_trials
from atheria_cli.tune.record import StudyRecord, check_unchanged, read_record, study_record, write_record
from atheria_cli.tune.space import applied_values, check_space, grid_points, suggest
from atheria_cli.tune.storage import open_study, repair_journal, sampler_for
from atheria_cli.tune.trial_record import TrialRecord, write_trial_record
from atheria_cli.tune.trials import Pool, TrialResult, Verdict, pool_session, run_trial, trial_config


@dataclass(frozen=True)
class TrialLine:
    """What the progress line of a finished trial shows."""

    number: int  # Optuna's trial number
    index: int  # the trial's folder, trial_000<index>
    state: str  # COMPLETE, PRUNED or FAIL
    value: float | None
    reason: str | None
    best_value: float | None
    best_index: int | None
    complete: int
    pruned: int
    failed: int
    remaining: int
    eta_seconds: float | None


class TuneObserver(Protocol):
    def trial_started(self, index: int, number: int, values: dict[str, Any], retry_of: int | None) -> None: ...

    def trial_finished(self, line: TrialLine) -> None: ...

    def warn(self, message: str) -> None: ...


@dataclass(frozen=True)
class StudyPlan:
    config: ExperimentConfig
    layout: StudyLayout
    record: StudyRecord
    existing: bool  # tune.json is there: the study continues


@dataclass
class TuneOutcome:
    layout: StudyLayout
    finished: int = 0  # trials this session finished
    stopped_by: str | None = None
    exit_code: int = 0
    notices: list[str] = field(default_factory=list)


def plan_study(config: ExperimentConfig, *, resume: bool) -> StudyPlan:
    """Check everything before anything is written: Optuna installed, the space fits the base
    agent, a trial's config trains, and an existing study is resumed with its own settings."""
    tune = config.tune
    if tune is None:
        raise ConfigError("the config has no tune: section (see docs/tune.md)")
    optuna = require_optuna()
    refusal = kind_of(config, tune.agent).refusal("evaluate", config, tune.agent)
    if refusal is not None:
        raise ConfigError(f"tune.agent: {tune.agent}: a study's objective reads evaluations (train.eval), and {refusal}")
    check_space(config)
    layout = StudyLayout.of(config.checkpoints_dir, config.experiment, tune.study)
    record = study_record(config, now_iso(), {**library_versions(), "optuna": optuna.__version__})
    stored = read_record(layout)
    if stored is not None:
        if not resume:
            raise RunExistsError(
                f"the study {tune.study} exists in {layout.root}; use --resume to continue it, --report to read it, "
                "or name a new tune.study"
            )
        check_unchanged(stored, record, layout)
    _, first = replicates(trial_config(config, layout, 0, {}))[0]
    plan_training(first, episodes=1, resume=True)  # the env, the metrics and the base model: exit 2 now
    return StudyPlan(config, layout, stored or record, existing=stored is not None)


def run_study(plan: StudyPlan, *, pool: Pool, observer: TuneObserver, train_observer: TrainObserver) -> TuneOutcome:
    """Run trials until the study has ``tune.trials`` finished ones, or a signal stops it. With
    the Ray backend one Ray serves every segment; a Ray failure that ends a segment
    (:class:`ClusterError`) ends the study too, the trial left RUNNING for ``--resume``."""
    outcome = TuneOutcome(plan.layout)
    lock = AgentLock(plan.layout.root, DRIVER_LOCK)
    try:
        lock.acquire()
    except RunLockedError:
        raise UsageError(f"the study {plan.layout.root} is being run by another atheria tune; wait for it or stop it") from None
    try:
        with warnings.catch_warnings(), pool_session(pool, plan.layout.root):
            warnings.simplefilter("ignore", category=_experimental_warning())
            return _drive(plan, pool, observer, train_observer, outcome)
    finally:
        lock.release()


def _drive(
    plan: StudyPlan, pool: Pool, observer: TuneObserver, train_observer: TrainObserver, outcome: TuneOutcome
) -> TuneOutcome:
    tune = plan.config.tune
    assert tune is not None
    if not plan.existing:
        write_record(plan.layout, plan.record)
    if (notice := repair_journal(plan.layout.journal)) is not None:
        observer.warn(notice)
    recorded = recorded_trials(plan.layout) if plan.existing else []  # before the storage is opened (created)
    study = open_study(tune, plan.layout, plan.record.direction)
    if recorded and not study.get_trials(deepcopy=False) and (rebuilt := rebuild_study(study, recorded)):
        observer.warn(
            f"the study's storage held no trial: rebuilt {len(rebuilt)} trial(s) from their folders' trial.json "
            f"({sum(record.state is None for record in rebuilt)} still running, queued again)"
        )
    recover_running(study, plan, observer)
    durations: list[float] = []
    with StopSignals() as signals:
        while len(_finished_indices(study)) < _budget(plan) and signals.received is None:
            asked = _next_trial(study, plan)
            if asked is None:
                break  # the grid is exhausted
            trial, index, fixed = asked
            started = time.monotonic()
            stop_requested = lambda: signals.received is not None  # noqa: E731
            result = _run_one(plan, study, (trial, index, fixed), pool, observer, train_observer, stop_requested)
            if result.state == "stopped":
                outcome.stopped_by = result.stopped_by if result.stopped_by != "signal" else signals.name
                outcome.exit_code = result.exit_code or (signals.exit_code if signals.received else 130)
                return outcome
            durations.append(time.monotonic() - started)
            outcome.finished += 1
            observer.trial_finished(_line(study, trial, index, durations, _budget(plan)))
        if signals.received is not None:
            outcome.stopped_by, outcome.exit_code = signals.name, signals.exit_code
    return outcome


def _run_one(
    plan: StudyPlan,
    study: Any,
    asked: tuple[Any, int, list[str] | None],
    pool: Pool,
    observer: TuneObserver,
    train_observer: TrainObserver,
    stop_requested: Any,
) -> TrialResult:
    """Sample (or take the fixed values of) one trial, train it, tell Optuna how it ended."""
    from optuna.trial import TrialState

    tune = plan.config.tune
    assert tune is not None
    trial, index, fixed = asked
    sampled = suggest(trial, tune.space, fixed)
    values = applied_values(tune.space, sampled)
    trial.set_user_attr("values", json.loads(json.dumps(values)))
    record = started_record(trial, index, values)
    write_trial_record(plan.layout.trial_folder(index), record)
    observer.trial_started(index, trial.number, values, trial.user_attrs.get("retry_of"))

    def verdict(episode: int, objective: TrialObjective, last: bool) -> Verdict:
        trial.report(objective.value, episode)
        if last:
            return "continue"  # the trial's value: nothing left to prune
        return "prune" if trial.should_prune() else "continue"

    try:
        config = trial_config(plan.config, plan.layout, index, values)
        result = run_trial(
            plan.config, config, pool=pool, observer=train_observer, verdict=verdict, stop_requested=stop_requested
        )
    except ClusterError:
        raise  # Ray is gone: no later trial would train either; the trial stays RUNNING for --resume
    except ConfigError as exc:  # values SB3 rejects when it builds the model: this trial fails, the study goes on
        result = TrialResult("failed", reason=exc.message)
    except Exception as exc:  # a crash of the trial's training in this process (--jobs 1) fails the trial only
        result = TrialResult(
            "failed", reason=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )
    if result.state == "stopped":
        return result  # left RUNNING: --resume retries it
    if result.reason is not None:
        trial.set_user_attr("reason", result.reason)
    if result.state == "complete":
        study.tell(trial, result.value)
    elif result.state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)
    told = next(each for each in study.get_trials(deepcopy=False) if each.number == trial.number)
    ended = record.ended(told.state.name, told.value, dict(told.intermediate_values), result.reason)
    write_trial_record(plan.layout.trial_folder(index), ended)
    return result


def started_record(trial: Any, index: int, values: dict[str, Any]) -> TrialRecord:
    """Trial ``index``'s record as it starts (no end yet)."""
    from optuna.distributions import distribution_to_json

    distributions = {path: distribution_to_json(distribution) for path, distribution in trial.distributions.items()}
    plain = json.loads(json.dumps(values))
    return TrialRecord(index=index, params=dict(trial.params), distributions=distributions, values=plain)


def recover_running(study: Any, plan: StudyPlan, observer: TuneObserver) -> None:
    """Mark each trial a stopped driver left RUNNING as FAIL (``interrupted``) and re-queue it
    with the same parameters and index (``retry_of``). Refuses while a run of it is locked."""
    from optuna.trial import TrialState

    tune = plan.config.tune
    assert tune is not None
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        index = trial.user_attrs.get("index")
        if index is not None:
            _check_unlocked(plan, index, trial.number)
        # FrozenTrial has no public id; the storage's user-attribute setter needs it.
        study._storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
        study.tell(trial.number, state=TrialState.FAIL)
        if index is None:
            continue  # stopped between ask and the index: nothing trained, the index is free again
        study.enqueue_trial(trial.params, user_attrs={"index": index, "retry_of": trial.number})
        observer.warn(
            f"trial {index} (number {trial.number}) was left running by a stopped driver: "
            "marked FAIL and queued again with the same parameters; each seed resumes from its newest intact commit"
        )


def _check_unlocked(plan: StudyPlan, index: int, number: int) -> None:
    tune = plan.config.tune
    assert tune is not None
    for _, replicate in replicates(trial_config(plan.config, plan.layout, index, {})):
        lock = AgentLock(replicate.run_dir, tune.agent)
        try:
            lock.acquire()
        except RunLockedError:
            raise UsageError(
                f"trial {index} (number {number}) is still training ({replicate.run_dir}); wait for its job to commit and end"
            ) from None
        lock.release()


def _next_trial(study: Any, plan: StudyPlan) -> tuple[Any, int, list[str] | None] | None:
    """Ask for the next trial: a queued one (a retry, an enqueued entry, a grid point) first.
    Returns the trial, its index, and the paths whose values are fixed (None: sample all)."""
    from optuna.trial import TrialState

    tune = plan.config.tune
    assert tune is not None
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    if not waiting:
        index = _next_index(study)
        queued_values = _queued_values(plan, index)
        if queued_values is None and tune.sampler.name == "grid":
            return None
        if queued_values is not None:
            study.enqueue_trial(queued_values, user_attrs={"index": index})
            waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    fixed: list[str] | None = None
    if waiting:
        queued = min(waiting, key=lambda trial: trial.number)  # the one Optuna's ask takes
        index, fixed = int(queued.user_attrs["index"]), list(queued.system_attrs.get("fixed_params", {}))
    study.sampler = sampler_for(tune, index)
    trial = study.ask()
    if "index" not in trial.user_attrs:
        trial.set_user_attr("index", index)
    return trial, index, fixed


def _queued_values(plan: StudyPlan, index: int) -> dict[str, Any] | None:
    """Optuna's parameters of trial ``index`` when they are fixed: an enqueued entry, a grid point."""
    tune = plan.config.tune
    assert tune is not None
    if index < len(tune.enqueue):
        return {path: tune.space[path].sampled(value) for path, value in tune.enqueue[index].items()}
    if tune.sampler.name == "grid":
        points = grid_points(tune.space)
        return points[index - len(tune.enqueue)] if index - len(tune.enqueue) < len(points) else None
    return None


def _next_index(study: Any) -> int:
    indices = [trial.user_attrs["index"] for trial in study.get_trials(deepcopy=False) if "index" in trial.user_attrs]
    return max(indices) + 1 if indices else 0


def _finished_indices(study: Any) -> set[int]:
    return {
        int(trial.user_attrs["index"])
        for trial in study.get_trials(deepcopy=False)
        if trial.state.is_finished() and not trial.user_attrs.get("interrupted") and "index" in trial.user_attrs
    }


def _budget(plan: StudyPlan) -> int:
    tune = plan.config.tune
    assert tune is not None
    if tune.sampler.name == "grid":
        return min(tune.trials, len(tune.enqueue) + len(grid_points(tune.space)))
    return tune.trials


def _line(study: Any, trial: Any, index: int, durations: list[float], budget: int) -> TrialLine:
    from optuna.trial import TrialState

    finished = [
        each for each in study.get_trials(deepcopy=False) if each.state.is_finished() and not each.user_attrs.get("interrupted")
    ]
    frozen = next(each for each in finished if each.number == trial.number)
    states = [each.state for each in finished]
    complete = [
        each for each in finished if each.state == TrialState.COMPLETE and each.value is not None and math.isfinite(each.value)
    ]
    best = None
    if complete:
        best = (
            min(complete, key=lambda each: each.value)
            if study.direction.name == "MINIMIZE"
            else max(complete, key=lambda each: each.value)
        )
    remaining = max(budget - len({each.user_attrs.get("index") for each in finished}), 0)
    return TrialLine(
        number=trial.number,
        index=index,
        state=frozen.state.name,
        value=frozen.value,
        reason=frozen.user_attrs.get("reason"),
        best_value=None if best is None else best.value,
        best_index=None if best is None else best.user_attrs.get("index"),
        complete=states.count(TrialState.COMPLETE),
        pruned=states.count(TrialState.PRUNED),
        failed=states.count(TrialState.FAIL),
        remaining=remaining,
        eta_seconds=sum(durations) / len(durations) * remaining if durations else None,
    )


def _experimental_warning() -> type[Warning]:
    from optuna.exceptions import ExperimentalWarning

    return ExperimentalWarning
