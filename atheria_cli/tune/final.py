"""``atheria tune --final``: the best entry and the base entry on the test seeds.

Both train ``final.episodes`` (or to ``final.until_timesteps``, as a trial's seeds do; default:
the study's budget) on ``final.seeds`` (never a tuning seed: the config refuses it)
in ``<study>/final/seed_<S>/{<AGENT>, <AGENT>_tuned}/``, through the jobs pool (or Ray), and
``compare``'s table over seeds (:func:`atheria_cli.reports.seeds.seeds_compare_report`)
judges them on those seeds only. A job process killed by a signal is trained again from its
last commit (``train.max_retries``), as a trial's segment is. Run again, it trains only what is
missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from atheria_cli.config import ExperimentConfig, config_to_dict
from atheria_cli.errors import UsageError
from atheria_cli.metrics import quantity_named
from atheria_cli.reports.seeds import SeedsCompareReport, seeds_compare_report
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.seeds import replicates
from atheria_cli.run.store import AgentStore
from atheria_cli.training.jobs import JobsOutcome
from atheria_cli.training.session import TrainObserver
from atheria_cli.tune.layout import StudyLayout, tuned_agent_name
from atheria_cli.tune.report import TuneReport, best_entry
from atheria_cli.tune.trials import Pool, budgeted_by_tune, finished_by, pool_session, train_retried, validated_config


@dataclass
class FinalOutcome:
    config: ExperimentConfig  # the final runs' experiment
    training: JobsOutcome | None
    compare: SeedsCompareReport | None  # None when a signal stopped the training


def final_config(config: ExperimentConfig, report: TuneReport) -> ExperimentConfig:
    tune = config.tune
    assert tune is not None
    if tune.final is None:
        raise UsageError("--final needs tune.final: {seeds: [...], episodes: N} (test seeds apart from the tuning seeds)")
    if report.best is None:
        raise UsageError(f"--final: the study {tune.study} has no complete trial yet")
    layout = StudyLayout.of(config.checkpoints_dir, config.experiment, tune.study)
    document = config_to_dict(config)
    base = {**document["agents"][tune.agent], "seed": None}
    document.update(experiment=layout.final_experiment, seeds=list(tune.final.seeds), tune=None)
    document["agents"] = {tune.agent: base, tuned_agent_name(tune.agent): best_entry(report, config)}
    document["train"] = budgeted_by_tune(document["train"])
    return validated_config(document, config, tune.agent)


def run_final(config: ExperimentConfig, report: TuneReport, *, pool: Pool, observer: TrainObserver) -> FinalOutcome:
    final = final_config(config, report)  # refuses a study without tune.final or a complete trial
    tune = config.tune
    assert tune is not None and tune.final is not None and config.train.eval is not None
    with pool_session(pool, StudyLayout.of(config.checkpoints_dir, config.experiment, tune.study).root):
        training = _train_final(final, tune.final_budget(), config.train.eval.every, pool, observer)
    if training is not None and training.stopped_by in ("SIGINT", "SIGTERM"):
        return FinalOutcome(final, training, None)
    metric = quantity_named(config, tune.objective.metric).name
    # Scored as the objective scores a trial: the mean of its last `window` evaluations (the
    # episode window counts only for a seed stopped before its first evaluation).
    window, evaluations = tune.objective.window * config.train.eval.every, tune.objective.window
    compare = seeds_compare_report(final, window=window, metric=metric, eval_window=evaluations)
    return FinalOutcome(final, training, compare)


def _train_final(
    final: ExperimentConfig, budget: tuple[int | None, int | None], every: int, pool: Pool, observer: TrainObserver
) -> JobsOutcome | None:
    """Train the final runs to their budget: ``episodes`` at once, or ``until_timesteps``
    evaluation by evaluation as a trial's seeds (each run ends at its first evaluation at or
    after it). The last outcome; the first that failed or was stopped ends it."""
    episodes, until_timesteps = budget
    agents = list(final.agents)
    if episodes is not None:
        return train_retried(final, agents, episodes, pool, observer)
    assert until_timesteps is not None  # validated: one budget
    training, end = None, every
    while not all(finished_by(store, until_timesteps) for store in _stores(final)):
        outcome = train_retried(final, agents, end, pool, observer, until_timesteps)
        if outcome is not None and (outcome.failed or outcome.stopped_by is not None):
            return outcome
        training, end = outcome or training, end + every
    return training


def _stores(config: ExperimentConfig) -> list[AgentStore]:
    return [
        AgentStore(AgentLayout.of(replicate.run_dir, agent)) for _, replicate in replicates(config) for agent in config.agents
    ]
