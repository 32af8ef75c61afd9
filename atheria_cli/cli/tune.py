"""``atheria tune``: parse, call the tuning core, render."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from atheria_cli.cli.console import err_console
from atheria_cli.cli.tables import add_row, notice, show, table
from atheria_cli.config import load_config, resolve_config_path
from atheria_cli.reports.text import duration, number

if TYPE_CHECKING:
    from atheria_cli.tune.driver import TrialLine
    from atheria_cli.tune.report import TuneReport
    from atheria_cli.tune.trials import Pool


def tune(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experiment YAML with a tune: section (default: ./configs/default.yaml)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the study; trials a stopped driver left running are retried."),
    jobs: int | None = typer.Option(
        None, "--jobs", "-j", min=1, help="Seeds of a trial trained at once, one process each (train.jobs)."
    ),
    backend: str | None = typer.Option(
        None, "--backend", help="local, or ray: a trial's seeds train on a Ray cluster (train.backend; the 'ray' extra)."
    ),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:10001; default a local Ray (train.address)."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", help="--backend ray: show Ray's own log lines too (always in <study>/ray-driver.log)."
    ),
    report: bool = typer.Option(False, "--report", help="Only write and show the report of the study so far."),
    final: bool = typer.Option(
        False, "--final", help="Then train the best and the base entry on tune.final.seeds and compare them."
    ),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are written (overrides the config)."),
) -> None:
    """Search the hyperparameters of one agent; every trial is an ordinary, resumable run per seed."""
    overrides = {"checkpoints_dir": str(checkpoints_dir) if checkpoints_dir else None}
    experiment = load_config(resolve_config_path(config), overrides)
    pool = None
    if not report or final:  # exit 2 before anything is written: an unknown backend, Ray without its extra
        from atheria_cli.tune.trials import plan_pool

        pool = plan_pool(experiment, jobs=jobs, backend=backend, address=address, verbose=verbose)
    if not report:
        assert pool is not None
        _search(experiment, resume, pool)
    from atheria_cli.tune.report import study_report

    result = study_report(experiment)
    render_report(result)
    if final:
        assert pool is not None
        _final(experiment, result, pool)


def _search(experiment: Any, resume: bool, pool: Pool) -> None:
    from atheria_cli.tune.driver import plan_study, run_study

    plan = plan_study(experiment, resume=resume)
    outcome = run_study(plan, pool=pool, observer=TrialProgress(), train_observer=_train_observer())
    if outcome.stopped_by is not None:
        err_console.print(
            f"atheria: stopped by {outcome.stopped_by}: the running trial committed; continue with --resume",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(outcome.exit_code)


def _final(experiment: Any, result: TuneReport, pool: Pool) -> None:
    from atheria_cli.cli.compare_seeds import render_seeds_compare
    from atheria_cli.tune.final import run_final

    outcome = run_final(experiment, result, pool=pool, observer=_train_observer())
    failed = outcome.training.failed if outcome.training is not None else []
    for failure in failed:
        err_console.print(f"atheria: error: job {failure}; run --final again", markup=False, highlight=False)
    if failed:  # a comparison of runs that did not all reach the budget would mislead
        raise typer.Exit(1)
    if outcome.compare is None:
        err_console.print("atheria: stopped by a signal: the final runs committed; run --final again", markup=False)
        raise typer.Exit(outcome.training.exit_code if outcome.training is not None else 130)
    render_seeds_compare(outcome.compare)


def _train_observer() -> Any:
    """The jobs' bars on a terminal; elsewhere only their warnings (a study has many sessions)."""
    from atheria_cli.cli.render import ProgressObserver

    return ProgressObserver() if err_console.is_terminal else _WarningsOnly()


class _WarningsOnly:
    def agent_started(self, *args: Any) -> None: ...

    def episode_finished(self, *args: Any) -> None: ...

    def checkpoint_committed(self, *args: Any) -> None: ...

    def resources(self, *args: Any) -> None: ...

    def agent_finished(self, *args: Any) -> None: ...

    def evaluation_finished(self, *args: Any) -> None: ...  # the jobs pool forwards it from every job

    def warn(self, message: str) -> None:
        notice(f"warning: {message}")


class TrialProgress:
    """One line on stderr per trial started and finished."""

    def trial_started(self, index: int, number: int, values: dict[str, Any], retry_of: int | None) -> None:
        settings = ", ".join(f"{path}={_short(value)}" for path, value in values.items()) or "the base entry"
        retry = f" (retry of number {retry_of})" if retry_of is not None else ""
        notice(f"trial {index}{retry}: {settings}")

    def trial_finished(self, line: TrialLine) -> None:
        value = "" if line.value is None else f" {number(line.value)}"
        reason = f" ({line.reason})" if line.reason else ""
        best = f"best {number(line.best_value)} (trial {line.best_index})" if line.best_value is not None else "no best yet"
        eta = f" · ETA {duration(line.eta_seconds)}" if line.eta_seconds is not None and line.remaining else ""
        counts = f"{line.complete} complete, {line.pruned} pruned, {line.failed} failed, {line.remaining} to go"
        notice(f"trial {line.index} {line.state}{value}{reason} · {best} · {counts}{eta}")

    def warn(self, message: str) -> None:
        notice(f"warning: {message}")


def render_report(report: TuneReport) -> None:
    seeds = ", ".join(str(seed) for seed in report.seeds)
    title = f"study {report.study}: {report.metric} ({report.goal}), mean of the last {report.window} evaluation(s) over seeds {seeds}"
    rendered = table(title, "Trial", "State", report.metric, "Episodes", *report.paths, "Note", right=(report.metric, "Episodes"))
    best = report.best.number if report.best is not None else None
    for row in report.trials:
        mark = " ★" if row.number == best else ""
        note = row.reason or (f"retry of number {row.retry_of}" if row.retry_of is not None else "")
        note = note or ("the base entry" if not row.values else "")
        cells = [_short(row.values[path]) if path in row.values else "" for path in report.paths]
        value = number(row.value) if row.value is not None and math.isfinite(row.value) else "–"
        add_row(rendered, f"{row.index}{mark}", row.state, value, str(row.episodes or "–"), *cells, note)
    show(rendered)
    for line in report.notes:
        notice(line)
    for path in report.files:
        notice(f"wrote {path}")


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
