"""``atheria compare --plot FILE``: every agent's learning curve of one metric in one figure.

Each run's curve is its rolling mean (as ``history --plot`` draws it). With several seeds, an
agent's line is the mean over its seeds and the band one standard error either side; against
timesteps, the seeds' curves are interpolated onto a common grid first (their episodes end at
different timesteps). The baseline and the reference policies are horizontal lines.
Imported only when a plot is asked for: matplotlib and NumPy load here.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import UsageError
from atheria_cli.metrics import Quantity, quantities, quantity_named, value_of
from atheria_cli.reports.compare import reference_rows
from atheria_cli.reports.history import rolling_mean
from atheria_cli.reports.plotting import SUBPLOT_HEIGHT_INCHES, rolling_window
from atheria_cli.reports.runs import AgentRun, read_run
from atheria_cli.run.seeds import run_seeds, seed_config

Axis = Literal["episodes", "timesteps"]
TIMESTEP_GRID_POINTS = 200


@dataclass(frozen=True)
class Curve:
    agent: str
    seeds: int
    x: list[float]
    mean: list[float]
    sem: list[float] | None  # None for a single run


def agent_runs(config: ExperimentConfig, agent: str) -> list[AgentRun]:
    """The agent's committed runs: one per seed, or its only run."""
    seeds = run_seeds(config)
    configs = [seed_config(config, seed) for seed in seeds] if seeds else [config]
    runs = [read_run(each, agent) for each in configs]
    return [run for run in runs if run.state == "committed"]


def run_series(run: AgentRun, metric: Quantity, axis: Axis) -> tuple[list[float], list[float]]:
    """(x, rolling mean of the metric) of one run, skipping episodes without a value."""
    pairs = [(record, value_of(record, metric.name)) for record in run.records]
    kept = [(record, value) for record, value in pairs if value is not None]
    smoothed = rolling_mean([value for _, value in kept], rolling_window(len(kept)))
    xs = [float(record.episode if axis == "episodes" else record.timesteps) for record, _ in kept]
    return xs, [float("nan") if value is None else value for value in smoothed]


def agent_curve(agent: str, runs: Sequence[AgentRun], metric: Quantity, axis: Axis) -> Curve | None:
    import numpy as np

    series = [run_series(run, metric, axis) for run in runs]
    series = [(xs, ys) for xs, ys in series if xs]
    if not series:
        return None
    if len(series) == 1:
        xs, ys = series[0]
        return Curve(agent, 1, xs, ys, None)
    if axis == "episodes":  # the episodes every seed has a value for
        points = [dict(zip(xs, ys, strict=True)) for xs, ys in series]
        common = sorted(set.intersection(*(set(each) for each in points)))
        grid = np.asarray(common)
        stacked = np.asarray([[each[x] for x in common] for each in points])
    else:
        start, end = max(xs[0] for xs, _ in series), min(xs[-1] for xs, _ in series)
        grid = np.linspace(start, end, TIMESTEP_GRID_POINTS) if end > start else np.asarray([start])
        stacked = np.asarray([np.interp(grid, xs, ys) for xs, ys in series])
    mean = stacked.mean(axis=0)
    sem = stacked.std(axis=0, ddof=1) / math.sqrt(len(series))
    return Curve(agent, len(series), grid.tolist(), mean.tolist(), sem.tolist())


def compare_plot(config: ExperimentConfig, image_format: str, *, metric: str | None = None, axis: Axis = "episodes") -> bytes:
    """The figure, encoded as ``image_format`` (png, svg, pdf)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("--plot needs matplotlib, which is not installed here: pip install matplotlib") from None
    quantity = quantity_named(config, metric)
    curves = [curve for agent in config.agents if (curve := agent_curve(agent, agent_runs(config, agent), quantity, axis))]
    if not curves:
        raise UsageError(f"nothing to plot: no agent of {config.experiment} has a committed episode with {quantity.name}")
    figure = Figure(figsize=(9, 5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for curve in curves:
        _draw(ax, curve)
    _reference_lines(ax, config, quantity)
    better = "higher" if quantity.goal == "max" else "lower"
    ax.set_xlabel(axis[:-1] if axis == "timesteps" else "episode")
    ax.set_ylabel(f"{quantity.name} ({better} is better)")
    over_seeds = ", mean ± SE over seeds" if run_seeds(config) else ""
    ax.set_title(f"{config.experiment}: {quantity.name}, rolling mean per run{over_seeds}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=100)
    return buffer.getvalue()


def _draw(ax: Any, curve: Curve) -> None:
    label = curve.agent if curve.sem is None else f"{curve.agent} ({curve.seeds} seeds)"
    (line,) = ax.plot(curve.x, curve.mean, linewidth=1.8, label=label)
    if curve.sem is not None:
        low = [mean - sem for mean, sem in zip(curve.mean, curve.sem, strict=True)]
        high = [mean + sem for mean, sem in zip(curve.mean, curve.sem, strict=True)]
        ax.fill_between(curve.x, low, high, color=line.get_color(), alpha=0.25, linewidth=0)


def _reference_lines(ax: Any, config: ExperimentConfig, quantity: Quantity) -> None:
    baseline = config.baseline.get(quantity.name)
    if baseline is not None:
        ax.axhline(baseline, color="black", linestyle="--", linewidth=1.0, label=f"baseline {baseline:g}")
    for row in reference_rows(config, quantity, baseline):
        if row.mean is not None:
            ax.axhline(row.mean, color="grey", linestyle=":", linewidth=1.2, label=f"{row.agent} (reference) {row.mean:.4g}")


def seeds_history_plot(config: ExperimentConfig, agent: str, image_format: str) -> bytes:
    """``history AGENT --plot`` on a multi-seed run: one subplot per quantity, one line per seed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    seeds = run_seeds(config)
    runs = [(seed, read_run(seed_config(config, seed), agent)) for seed in seeds]
    runs = [(seed, run) for seed, run in runs if run.state == "committed"]
    if not runs:
        raise UsageError(f"{agent} has no committed run in any seed of {config.experiment} ({', '.join(map(str, seeds))})")
    measured = quantities(config)
    figure = Figure(figsize=(9, SUBPLOT_HEIGHT_INCHES * len(measured)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(measured), 1, sharex=True, squeeze=False)[:, 0]
    for ax, quantity in zip(axes, measured, strict=True):
        for seed, run in runs:
            xs, ys = run_series(run, quantity, "episodes")
            ax.plot(xs, ys, linewidth=1.4, label=f"seed {seed}")
        better = "higher" if quantity.goal == "max" else "lower"
        ax.set_ylabel(f"{quantity.name}\n({better} is better)")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize="small")
    axes[0].set_title(f"{config.experiment} / {agent}: rolling mean of each seed's run")
    axes[-1].set_xlabel("episode")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=100)
    return buffer.getvalue()
