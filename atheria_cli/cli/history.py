"""``atheria history``: sessions, episodes and convergence of one agent's run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from atheria_cli.cli.tables import (
    add_row,
    change_percent,
    notice,
    print_json,
    print_line,
    show,
    signed,
    table,
    timestamp,
    verdict_text,
)
from atheria_cli.config import ExperimentConfig, load_config, resolve_config_path
from atheria_cli.errors import UsageError
from atheria_cli.reports.text import duration, episode_span, number, size
from atheria_cli.run.seeds import config_for_seed, run_seeds

if TYPE_CHECKING:
    from rich.text import Text

    from atheria_cli.reports.history import HistoryReport, SeedsHistoryReport

DEFAULT_LAST = 20


def history(
    agent: str = typer.Argument(..., metavar="AGENT", help="The agent, as named under the config's agents."),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experiment YAML (default: ./configs/default.yaml, else the packaged default)."
    ),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are (overrides the config)."),
    last: int | None = typer.Option(None, "--last", min=1, help=f"Show the last N episodes (default {DEFAULT_LAST})."),
    all_episodes: bool = typer.Option(False, "--all", help="Show every episode."),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document (sessions, episodes, convergence) instead of tables."
    ),
    csv_path: Path | None = typer.Option(None, "--csv", metavar="FILE", help="Write every episode to FILE as CSV."),
    plot_path: Path | None = typer.Option(
        None, "--plot", metavar="FILE", help="Write the learning curve to FILE (.png, .svg or .pdf)."
    ),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="The seed's run, in a multi-seed experiment (without it: a summary row per seed)."
    ),
    trial: int | None = typer.Option(None, "--trial", min=0, help="A trial of the config's tune study (atheria tune)."),
) -> None:
    """Sessions, per-episode records and per-session convergence of one agent's run (one row per seed without --seed)."""
    from atheria_cli.reports.history import history_json, history_report  # here, not at start-up: other commands never need it

    if last is not None and all_episodes:
        raise UsageError("--last and --all cannot be combined: --last N shows the last N episodes, --all every one")
    shown = None if all_episodes else (last or DEFAULT_LAST)
    overrides = {"checkpoints_dir": str(checkpoints_dir) if checkpoints_dir else None}
    experiment = load_config(resolve_config_path(config), overrides, check_extras=False)
    if trial is not None:
        from atheria_cli.tune.views import trial_view

        experiment = trial_view(experiment, trial)
    if seed is None and run_seeds(experiment):
        _every_seed(experiment, agent, as_json, plot_path, _one_run_options(last, all_episodes, csv_path))
        return
    experiment = config_for_seed(experiment, seed)
    report = history_report(experiment, agent, csv_path=csv_path, plot_path=plot_path)
    if as_json:
        print_json(history_json(report, shown))
    else:
        render_history(report, shown)
    for path in report.written:
        notice(f"wrote {path}")


def render_history(report: HistoryReport, shown: int | None) -> None:
    print_line(
        f"{report.agent} ({report.experiment}) in {report.folder}: {report.total_episodes} episode(s), "
        f"{report.total_timesteps} timesteps, {len(report.sessions)} session(s)"
    )
    render_sessions(report)
    render_episodes(report, shown)
    render_evaluations(report)
    render_snapshots(report)
    render_convergence(report)


def render_sessions(report: HistoryReport) -> None:
    evaluated = any(row.eval_seconds for row in report.sessions)
    columns = ["#", "Episodes", "Count", "Device", "Duration", *(["Training", "Evaluation"] if evaluated else []), "Started"]
    sessions = table("Sessions", *columns, right=("#", "Count", "Duration", "Training", "Evaluation"))
    for row in report.sessions:
        split = [duration(row.duration_seconds - row.eval_seconds), duration(row.eval_seconds)] if evaluated else []
        add_row(
            sessions,
            str(row.session),
            episode_span(row.start_episode, row.end_episode),
            str(row.episodes),
            row.device,
            duration(row.duration_seconds),
            *split,
            timestamp(row.timestamp),
        )
    show(sessions)
    for row in report.sessions:
        if row.forked_from:
            print_line(f"session {row.session} forked from {row.forked_from}")
        if row.adopted_from:
            print_line(f"session {row.session} adopted from {row.adopted_from}; not exact (no RNG, env or buffer state)")


def render_evaluations(report: HistoryReport) -> None:
    if not report.evaluations:
        return
    names = [quantity.name for quantity in report.quantities]
    columns = ["Episode", "Timesteps", "Episodes", "Seeds", *(f"{name} mean ± std" for name in names), "Seconds"]
    evaluations = table("Evaluations (train.eval)", *columns, right=tuple(column for column in columns if column != "Seeds"))
    for item in report.evaluations:
        stats = [item.reward if name == "reward" else item.metrics.get(name) for name in names]
        seeds = f"{item.seeds[0]}-{item.seeds[-1]}" if len(item.seeds) > 1 else str(item.seeds[0])
        add_row(
            evaluations,
            str(item.episode),
            str(item.timesteps),
            str(item.episodes),
            seeds,
            *(f"{number(stat.mean)} ± {number(stat.std)}" if stat is not None else "" for stat in stats),
            f"{item.seconds:.2f}",
        )
    show(evaluations)


def render_snapshots(report: HistoryReport) -> None:
    """The committed snapshots (train.snapshots); nothing for a run without."""
    if not report.snapshots:
        return
    columns = ("Episode", "Timesteps", "File", "Tensors", "Size")
    snapshots = table("Snapshots (train.snapshots)", *columns, right=("Episode", "Timesteps", "Size"))
    for item in report.snapshots:
        add_row(snapshots, str(item.episode), str(item.timesteps), item.file, ", ".join(item.tensors), size(item.size))
    show(snapshots)


def render_episodes(report: HistoryReport, shown: int | None) -> None:
    rows = report.episodes(shown)
    hidden = report.total_episodes - len(rows)
    title = f"Episodes (last {len(rows)} of {report.total_episodes}; --all shows every one)" if hidden else "Episodes"
    columns = {
        "Episode": [str(row.episode) for row in rows],
        "Timesteps": [str(row.timesteps) for row in rows],
        "reward": [number(row.reward) for row in rows],
        **{name: [number(row.metrics[name]) for row in rows] for name in report.metrics},
        "Seconds": [f"{row.seconds:.2f}" for row in rows],
    }
    episodes = table(title, *columns, right=tuple(columns))
    if rows:
        # One multi-line cell per column draws the same lines as one row per episode, several
        # times faster: Rich's cost is per cell, and --all may show thousands of episodes.
        add_row(episodes, *("\n".join(values) for values in columns.values()))
    show(episodes)


def render_convergence(report: HistoryReport) -> None:
    """The seed's hand-made table: each session's mean against the previous session's. A run of
    one session has nothing to compare yet: only its means are shown, no empty columns."""
    compared = any(mean.change is not None for trend in report.convergence for mean in trend.sessions)
    columns = ["Quantity", "Session", "Episodes", "Mean", *(["Change", "%", "Verdict"] if compared else [])]
    title = "Convergence: mean per session" + (" vs the previous session" if compared else "")
    convergence = table(title, *columns, right=("Session", "Mean", "Change", "%"))
    for trend in report.convergence:
        label = f"{trend.quantity} ({trend.goal})"
        for index, mean in enumerate(trend.sessions):
            change: list[str | Text] = [
                signed(mean.change) if mean.change is not None else "",
                change_percent(mean.change, mean.change_percent),
                verdict_text(mean.verdict),
            ]
            add_row(
                convergence,
                label if index == 0 else "",
                str(mean.session),
                episode_span(mean.start_episode, mean.end_episode),
                number(mean.mean),
                *(change if compared else []),
            )
        if trend is not report.convergence[-1]:
            convergence.add_section()
    show(convergence)


def _one_run_options(last: int | None, all_episodes: bool, csv_path: Path | None) -> list[str]:
    """The options given that show or write one run's episodes."""
    return [name for name, given in (("--last", last is not None), ("--all", all_episodes), ("--csv", csv_path)) if given]


def _every_seed(experiment: ExperimentConfig, agent: str, as_json: bool, plot_path: Path | None, one_run: list[str]) -> None:
    """A multi-seed run without --seed: a summary row per seed (and with --plot each seed's
    curve in one figure); the episodes and sessions of one seed need --seed."""
    from dataclasses import asdict

    from atheria_cli.reports.history import seeds_history_report

    if one_run:
        listed = ", ".join(str(each) for each in run_seeds(experiment))
        raise UsageError(f"{one_run[0]} works on one seed's run: add --seed S ({experiment.experiment} has seeds {listed})")
    report = seeds_history_report(experiment, agent, plot_path=plot_path)
    if as_json:
        print_json(asdict(report))
    else:
        render_seeds_history(report)
    for path in report.written:
        notice(f"wrote {path}")


def render_seeds_history(report: SeedsHistoryReport) -> None:
    metric = f"{report.metric.name} ({report.metric.goal})"
    title = f"{report.agent} ({report.experiment}): one row per seed, main metric {metric}"
    numbers = ("Seed", "Episodes", "Timesteps", "Sessions", "Evaluations", "Last", "Best (ep.)")
    rows = table(title, *numbers, "Folder", right=numbers)
    for row in report.seeds:
        if row.state != "committed":
            add_row(rows, str(row.seed), row.state, "", "", "", "", "", row.folder)
            continue
        best = f"{number(row.best_value)} ({row.best_episode})" if row.best_episode is not None else "–"
        counts = (row.episodes, row.timesteps, row.sessions, row.evaluations)
        add_row(rows, str(row.seed), *(str(count) for count in counts), number(row.last_value), best, row.folder)
    show(rows)
    print_line(f"one seed in full (sessions, episodes, convergence): atheria history {report.agent} --seed S")
