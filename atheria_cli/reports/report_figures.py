"""``atheria report``: its figures, as PNG bytes. matplotlib is imported here only, when drawing.

A single run's curve is ``history --plot``'s (:func:`.plotting.learning_curve`: each quantity per
episode, its rolling mean, the evaluations, dashed lines where a session starts); every agent on
the main metric is ``compare --plot``'s (:func:`.compare_plot.compare_plot`). With seeds, an
agent's figure overlays its seeds' runs, each with its evaluations and session starts.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import UsageError
from atheria_cli.metrics import Quantity
from atheria_cli.reports.evaluations import stat_of
from atheria_cli.reports.history import HistoryReport, rolling_mean
from atheria_cli.reports.plotting import SUBPLOT_HEIGHT_INCHES, rolling_window
from atheria_cli.reports.report_data import RunInfo

DPI = 100


def overview_png(config: ExperimentConfig) -> bytes | None:
    """Every agent's rolling mean of the main metric in one figure; None when none has a value."""
    from atheria_cli.reports.compare_plot import compare_plot

    try:
        return compare_plot(config, "png")
    except UsageError:  # no agent has a committed episode with a value of the metric
        return None


def agent_png(runs: Sequence[RunInfo]) -> bytes | None:
    """The learning curve of one agent: its run, or its seeds' runs overlaid; None without a run."""
    reports = [(run.seed, run.history) for run in runs if run.history is not None]
    if not reports:
        return None
    if len(reports) == 1 and reports[0][0] is None:
        from atheria_cli.reports.plotting import learning_curve

        return learning_curve(reports[0][1], "png")
    return _seeds_png([(seed, report) for seed, report in reports if seed is not None])


def _seeds_png(reports: Sequence[tuple[int, HistoryReport]]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    first = reports[0][1]
    figure = Figure(figsize=(9, SUBPLOT_HEIGHT_INCHES * len(first.quantities)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(first.quantities), 1, sharex=True, squeeze=False)[:, 0]
    for ax, quantity in zip(axes, first.quantities, strict=True):
        for seed, report in reports:
            _draw_seed(ax, seed, report, quantity)
        better = "higher" if quantity.goal == "max" else "lower"
        ax.set_ylabel(f"{quantity.name}\n({better} is better)")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize="small")
    axes[0].set_title(f"{first.experiment.partition('/')[0]} / {first.agent}: rolling mean of each seed's run")
    axes[-1].set_xlabel("episode (dots: evaluations, mean ± std; dashed: a session starts)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _draw_seed(ax: Any, seed: int, report: HistoryReport, quantity: Quantity) -> None:
    rows = report.episodes()
    values = [row.reward if quantity.name == "reward" else row.metrics.get(quantity.name) for row in rows]
    smoothed = rolling_mean(values, rolling_window(len(values)))
    (line,) = ax.plot(
        [row.episode for row in rows], [float("nan") if value is None else value for value in smoothed], linewidth=1.4
    )
    line.set_label(f"seed {seed}")
    colour = line.get_color()
    points = [
        (item.episode, stat) for item in report.evaluations if (stat := stat_of(item, quantity.name)) and stat.mean is not None
    ]
    if points:
        ax.errorbar(
            [episode for episode, _ in points],
            [stat.mean for _, stat in points],
            yerr=[stat.std or 0.0 for _, stat in points],
            fmt="o",
            color=colour,
            markersize=3.5,
            capsize=2,
        )
    for session in report.sessions[1:]:
        ax.axvline(session.start_episode - 0.5, color=colour, linestyle="--", linewidth=0.8, alpha=0.6)
