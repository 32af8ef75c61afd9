"""The study's report: trials.csv, best.yaml, importance.png, history.png (torch-free).

``trials.csv`` has every Optuna trial, the interrupted ones (FAIL, ``interrupted``) and their
retries included, so the file tells the whole story; the terminal table and the plots show the
study's trials, one per index. ``best.yaml`` is an agent entry to paste under ``agents:``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import UsageError
from atheria_cli.run.atomic import atomic_write_bytes
from atheria_cli.tune.extra import require_optuna
from atheria_cli.tune.layout import StudyLayout, trial_dir_name, tuned_agent_name
from atheria_cli.tune.record import StudyRecord, read_record
from atheria_cli.tune.space import with_values
from atheria_cli.tune.storage import open_study, repair_journal

MIN_TRIALS_FOR_IMPORTANCE = 2


@dataclass(frozen=True)
class TrialRow:
    number: int  # Optuna's
    index: int | None  # the trial's folder trial_000<index>
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    value: float | None
    episodes: int | None  # the last step reported
    values: dict[str, Any]  # the hyperparameter values tried
    reason: str | None
    retry_of: int | None
    interrupted: bool
    seconds: float | None


@dataclass
class TuneReport:
    study: str
    metric: str
    goal: str
    window: int
    seeds: list[int]
    paths: list[str]
    rows: list[TrialRow]  # every Optuna trial
    best: TrialRow | None
    until_timesteps: int | None = None  # the study's budget when it is timesteps, not episodes
    importance: dict[str, float] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def trials(self) -> list[TrialRow]:
        """The study's trials: the rows that are not interrupted attempts."""
        return [row for row in self.rows if not row.interrupted]


def study_report(config: ExperimentConfig) -> TuneReport:
    """Read the study of ``config``'s tune section, write the report files, return the table."""
    tune = config.tune
    if tune is None:
        raise UsageError("the config has no tune: section (see docs/tune.md)")
    require_optuna()  # before the journal's repair writes anything
    layout = StudyLayout.of(config.checkpoints_dir, config.experiment, tune.study)
    record = read_record(layout)
    if record is None:
        raise UsageError(f"no study {tune.study} in {layout.root}: run atheria tune first")
    notes = [notice] if (notice := repair_journal(layout.journal)) is not None else []
    study = open_study(tune, layout, record.direction)
    report = build_report(study, record)
    report.notes += notes
    write_report(report, config, layout, study)
    return report


def build_report(study: Any, record: StudyRecord) -> TuneReport:
    rows = [_row(trial) for trial in study.get_trials(deepcopy=False)]
    complete = [row for row in rows if row.state == "COMPLETE" and row.value is not None and math.isfinite(row.value)]
    best = None
    if complete:
        sign = 1.0 if record.direction == "minimize" else -1.0
        best = min(complete, key=lambda row: (sign * (row.value or 0.0), row.number))
    return TuneReport(
        study=record.study,
        metric=record.objective["metric"],
        goal=record.objective["goal"],
        window=record.objective["window"],
        seeds=record.seeds,
        paths=list(record.space),
        rows=rows,
        best=best,
        until_timesteps=record.until_timesteps,
    )


def _row(trial: Any) -> TrialRow:
    started, ended = trial.datetime_start, trial.datetime_complete
    return TrialRow(
        number=trial.number,
        index=trial.user_attrs.get("index"),
        state=trial.state.name,
        value=trial.value if trial.state.name in ("COMPLETE", "PRUNED") else None,
        episodes=trial.last_step,
        values=trial.user_attrs.get("values", {}),
        reason=trial.user_attrs.get("reason"),
        retry_of=trial.user_attrs.get("retry_of"),
        interrupted=bool(trial.user_attrs.get("interrupted")),
        seconds=(ended - started).total_seconds() if started is not None and ended is not None else None,
    )


def write_report(report: TuneReport, config: ExperimentConfig, layout: StudyLayout, study: Any) -> None:
    atomic_write_bytes(layout.trials_csv, trials_csv(report).encode("utf-8"))
    report.files.append(layout.trials_csv)
    if report.best is not None:
        atomic_write_bytes(layout.best_yaml, best_yaml(report, config).encode("utf-8"))
        report.files.append(layout.best_yaml)
    else:
        report.notes.append("no trial is complete yet: no best.yaml")
    from atheria_cli.tune.plots import history_png, importance_png

    atomic_write_bytes(layout.history_png, history_png(report))
    report.files.append(layout.history_png)
    report.importance = _importance(study, report)
    if report.importance:
        atomic_write_bytes(layout.importance_png, importance_png(report))
        report.files.append(layout.importance_png)


def _importance(study: Any, report: TuneReport) -> dict[str, float]:
    complete = [row for row in report.trials if row.state == "COMPLETE"]
    varied = {path for path in report.paths if len({json.dumps(row.values.get(path)) for row in complete}) > 1}
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE or not varied:
        report.notes.append("fewer than 2 complete trials that differ: no importance.png")
        return {}
    optuna = require_optuna()
    try:
        # fANOVA is seeded: the same study gives the same importances.
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator, params=sorted(varied)))
    except (RuntimeError, ValueError) as exc:
        report.notes.append(f"no importance.png: {exc}")
        return {}


def trials_csv(report: TuneReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["number", "trial", "state", "value", "episodes", *report.paths, "reason", "retry_of", "interrupted", "seconds"]
    )
    for row in report.rows:
        writer.writerow(
            [
                row.number,
                "" if row.index is None else row.index,
                row.state,
                "" if row.value is None else repr(row.value),
                "" if row.episodes is None else row.episodes,
                *(json.dumps(row.values[path]) if path in row.values else "" for path in report.paths),
                row.reason or "",
                "" if row.retry_of is None else row.retry_of,
                "yes" if row.interrupted else "",
                "" if row.seconds is None else f"{row.seconds:.1f}",
            ]
        )
    return buffer.getvalue()


def best_entry(report: TuneReport, config: ExperimentConfig) -> dict[str, Any]:
    """The best trial's agent entry: the base entry with its values, the algorithm spelled out
    (the entry is pasted under another name), without the base's zoo reference and seed."""
    tune = config.tune
    assert tune is not None and report.best is not None
    entry = with_values(config.agents[tune.agent], report.best.values)
    document = entry.model_dump(mode="json", exclude_defaults=True, exclude={"zoo", "seed"})
    return {"algo": config.algo_of(tune.agent), **document}


def best_yaml(report: TuneReport, config: ExperimentConfig) -> str:
    tune = config.tune
    best = report.best
    assert tune is not None and best is not None and best.index is not None
    seeds = ", ".join(str(seed) for seed in report.seeds)
    # A timesteps budget ends each seed at its own episode; the last step is where the last one ended.
    after = (
        f"after {best.episodes} episodes"
        if report.until_timesteps is None
        else f"of each seed's run to {report.until_timesteps} timesteps (all ended by episode {best.episodes})"
    )
    header = (
        f"# atheria tune: study {report.study}, trial {best.index} ({trial_dir_name(best.index)}, Optuna number {best.number}):\n"
        f"# {report.metric} ({report.goal}) = {best.value!r}, the mean over seeds {seeds} of the last {report.window} "
        f"evaluation(s) {after}.\n"
        "# Paste under agents: in an experiment config.\n"
    )
    body = yaml.safe_dump({tuned_agent_name(tune.agent): best_entry(report, config)}, sort_keys=False, default_flow_style=None)
    return header + body
