"""``atheria compare``: agents side by side on one metric, against the config's baseline."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from atheria_cli.cli.tables import add_row, arrow, evaluations_scored, print_json, print_line, show, table, verdict_text
from atheria_cli.config import ExperimentConfig, load_config, resolve_config_path
from atheria_cli.reports.text import episode_span, number

if TYPE_CHECKING:
    from rich.text import Text

    from atheria_cli.reports.compare import CompareReport, CompareRow


def compare(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experiment YAML (default: ./configs/default.yaml, else the packaged default)."
    ),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are (overrides the config)."),
    window: int = typer.Option(10, "--window", "-w", min=1, help="Compare the mean of each agent's last N episodes."),
    metric: str | None = typer.Option(
        None, "--metric", "-m", help="reward or a configured metric (default: the first metric, else reward)."
    ),
    eval_window: int = typer.Option(
        1, "--eval-window", min=1, help="Where a run has evaluations (train.eval): pool its last K of them."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead of the table."),
    plot_path: Path | None = typer.Option(
        None, "--plot", metavar="FILE", help="Also draw every agent's learning curve into FILE (.png, .svg, .pdf)."
    ),
    x_axis: str = typer.Option("episodes", "--x", help="The plot's x axis: episodes or timesteps."),
    trial: int | None = typer.Option(None, "--trial", min=0, help="A trial of the config's tune study (atheria tune)."),
) -> None:
    """Mean ± std of each agent's last N episodes, and its improvement over the config's baseline."""
    from atheria_cli.reports.compare import compare_report  # here, not at start-up: other commands never need it
    from atheria_cli.run.seeds import run_seeds

    overrides = {"checkpoints_dir": str(checkpoints_dir) if checkpoints_dir else None}
    experiment = load_config(resolve_config_path(config), overrides, check_extras=False)
    if trial is not None:
        from atheria_cli.tune.views import trial_view

        experiment = trial_view(experiment, trial)
    if plot_path is not None:
        _check_plot_request(plot_path, x_axis)
    if run_seeds(experiment):
        _compare_seeds(experiment, window, metric, eval_window, as_json)
    else:
        report = compare_report(experiment, window=window, metric=metric, eval_window=eval_window)
        if as_json:
            print_json(asdict(report))
        else:
            render_compare(report)
    if plot_path is not None:
        _write_plot(experiment, plot_path, metric, x_axis)


def render_compare(report: CompareReport) -> None:
    metric = f"{report.metric.name} ({report.metric.goal})"
    columns = ["Agent", "Episodes", "Mean ± std"]
    if report.baseline is not None:
        columns += ["vs baseline", "Change", "Verdict"]
    title = f"{report.experiment}: {metric}, last {report.window} episode(s) per agent"
    rows = table(title, *columns, right=("Mean ± std", "vs baseline", "Change"))
    for row in report.agents:
        add_row(rows, *_cells(row, report))
    show(rows)
    if report.baseline is None:
        print_line(
            f"no baseline for {report.metric.name}: add `baseline: {{{report.metric.name}: VALUE}}` to the config to compare with one"
        )
    evaluated = [row.agent for row in report.agents if row.source == "evaluation"]
    if evaluated:
        print_line(f"{', '.join(evaluated)}: scored by {evaluations_scored(report.eval_window)}")
    if report.best_agent is not None:
        print_line(f"best: {report.best_agent}")


def _cells(row: CompareRow, report: CompareReport) -> list[str | Text]:
    if row.mean is None:
        empty = ["", "", ""] if report.baseline is not None else []
        return [row.agent, row.state if row.state != "committed" else "no value", "", *empty]
    if row.kind == "reference":
        cells: list[str | Text] = [f"{row.agent} (reference)", f"{row.episodes} eval", f"{number(row.mean)} ± {number(row.std)}"]
    elif row.source == "evaluation":
        span = episode_span(row.first_episode, row.last_episode)
        cells = [f"{row.agent} (eval)", f"{row.episodes} eval @ {span}", f"{number(row.mean)} ± {number(row.std)}"]
    else:
        cells = [row.agent, episode_span(row.first_episode, row.last_episode), f"{number(row.mean)} ± {number(row.std)}"]
    if report.baseline is None or row.improvement is None:
        return cells
    # "550 → 271.3": where the baseline was and where the agent is now, then by how much.
    moved = row.mean - report.baseline
    percent = f" ({abs(row.improvement_percent):.1f} %)" if row.improvement_percent is not None else ""
    return [
        *cells,
        f"{number(report.baseline)} → {number(row.mean)}",
        f"{arrow(moved)} {number(abs(moved))}{percent}",
        verdict_text(row.verdict),
    ]


def _compare_seeds(experiment: ExperimentConfig, window: int, metric: str | None, eval_window: int, as_json: bool) -> None:
    """One row per agent over its seeds (see :mod:`atheria_cli.reports.seeds`)."""
    from atheria_cli.cli.compare_seeds import render_seeds_compare
    from atheria_cli.reports.seeds import seeds_compare_report

    report = seeds_compare_report(experiment, window=window, metric=metric, eval_window=eval_window)
    if as_json:
        print_json(asdict(report))
    else:
        render_seeds_compare(report)


def _check_plot_request(path: Path, x_axis: str) -> None:
    from atheria_cli.errors import UsageError
    from atheria_cli.reports.output import check_plot_path

    if x_axis not in ("episodes", "timesteps"):
        raise UsageError(f"--x {x_axis!r}: use episodes or timesteps")
    check_plot_path(path)


def _write_plot(experiment: ExperimentConfig, path: Path, metric: str | None, x_axis: str) -> None:
    from atheria_cli.cli.tables import notice
    from atheria_cli.reports.compare_plot import compare_plot
    from atheria_cli.run.atomic import atomic_write_bytes

    atomic_write_bytes(path, compare_plot(experiment, path.suffix.lower().lstrip("."), metric=metric, axis=x_axis))  # type: ignore[arg-type]
    notice(f"wrote {path}")
