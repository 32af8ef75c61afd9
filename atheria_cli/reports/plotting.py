"""The learning curve of ``atheria history --plot``: matplotlib, Agg, no pyplot.

Imported only when a plot is asked for: matplotlib takes longer to import than the rest of the
command takes to run. Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas
directly, so no GUI backend is touched and no global pyplot state is left behind.
"""

from __future__ import annotations

import io

from atheria_cli.errors import UsageError
from atheria_cli.metrics import REWARD
from atheria_cli.reports.evaluations import stat_of
from atheria_cli.reports.history import EpisodeRow, HistoryReport, rolling_mean

SUBPLOT_HEIGHT_INCHES = 2.6
MAX_ROLLING_WINDOW = 100


def learning_curve(report: HistoryReport, image_format: str) -> bytes:
    """Reward and each metric per episode, one subplot each, with a rolling mean and dashed
    vertical lines where a session starts; the image encoded as ``image_format`` (png, svg, pdf)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("--plot needs matplotlib, which is not installed here: pip install matplotlib") from None
    figure = Figure(figsize=(9, SUBPLOT_HEIGHT_INCHES * len(report.quantities)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(report.quantities), 1, sharex=True, squeeze=False)[:, 0]
    rows = report.episodes()
    episodes = [row.episode for row in rows]
    window = rolling_window(len(episodes))
    for ax, quantity in zip(axes, report.quantities, strict=True):
        values = [_value(row, quantity.name) for row in rows]
        ax.plot(episodes, [_nan(value) for value in values], linewidth=0.8, alpha=0.45, label="per episode")
        ax.plot(
            episodes, [_nan(value) for value in rolling_mean(values, window)], linewidth=1.8, label=f"rolling mean ({window})"
        )
        _plot_evaluations(ax, report, quantity.name)
        for session in report.sessions[1:]:
            ax.axvline(session.start_episode - 0.5, color="grey", linestyle="--", linewidth=0.8)
        better = "higher" if quantity.goal == "max" else "lower"
        ax.set_ylabel(f"{quantity.name}\n({better} is better)")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize="small")
    axes[0].set_title(
        f"{report.experiment} / {report.agent}: {report.total_episodes} episodes, {len(report.sessions)} session(s)"
    )
    axes[-1].set_xlabel("episode (dashed: a session starts)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=100)
    return buffer.getvalue()


def _plot_evaluations(ax, report: HistoryReport, name: str) -> None:  # type: ignore[no-untyped-def]
    points = [
        (item.episode, stat) for item in report.evaluations if (stat := stat_of(item, name)) is not None and stat.mean is not None
    ]
    if points:
        ax.errorbar(
            [episode for episode, _ in points],
            [stat.mean for _, stat in points],
            yerr=[stat.std or 0.0 for _, stat in points],
            fmt="o-",
            color="black",
            markersize=3.5,
            linewidth=1.2,
            capsize=2,
            label="evaluation (mean ± std)",
        )


def rolling_window(episodes: int) -> int:
    """About a twentieth of the run, between 5 and 100 episodes."""
    return min(MAX_ROLLING_WINDOW, max(5, episodes // 20))


def _value(row: EpisodeRow, name: str) -> float | None:
    return row.reward if name == REWARD else row.metrics.get(name)


def _nan(value: float | None) -> float:
    # matplotlib leaves a gap at NaN, which is what a missing value should look like.
    return float("nan") if value is None else value
