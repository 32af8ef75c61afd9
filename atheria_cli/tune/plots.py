"""The study's two figures: matplotlib, Agg, no pyplot (as :mod:`atheria_cli.reports.plotting`)."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atheria_cli.tune.report import TuneReport


def _figure(width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots()


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def history_png(report: TuneReport) -> bytes:
    """Each trial's value by trial index (pruned ones at their last report, hollow) and the best
    so far."""
    figure, ax = _figure(8, 4)
    trials = sorted((row for row in report.trials if row.index is not None), key=lambda row: row.index or 0)
    for state, style in (("COMPLETE", {"marker": "o"}), ("PRUNED", {"marker": "o", "facecolors": "none"})):
        points = [
            (row.index, row.value) for row in trials if row.state == state and row.value is not None and math.isfinite(row.value)
        ]
        if points:
            ax.scatter([x for x, _ in points], [y for _, y in points], label=state.lower(), edgecolors="C0", **style)
    best: list[tuple[int, float]] = []
    for row in trials:
        if row.state == "COMPLETE" and row.value is not None and math.isfinite(row.value) and row.index is not None:
            better = not best or (row.value < best[-1][1] if report.goal == "min" else row.value > best[-1][1])
            best.append((row.index, row.value if better else best[-1][1]))
    if best:
        ax.step([x for x, _ in best], [y for _, y in best], where="post", color="C1", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{report.metric} ({'lower' if report.goal == 'min' else 'higher'} is better)")
    ax.set_title(f"study {report.study}: mean of the last {report.window} evaluation(s) over seeds {report.seeds}")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # matplotlib warns about an empty legend
        ax.legend(loc="best", fontsize="small")
    return _png(figure)


def importance_png(report: TuneReport) -> bytes:
    """fANOVA importance of each searched path (Optuna's get_param_importances)."""
    names = list(report.importance)[::-1]
    figure, ax = _figure(7, 1.2 + 0.45 * len(names))
    ax.barh(names, [report.importance[name] for name in names], color="C0")
    ax.set_xlabel("importance (fANOVA, share of the variance of the objective)")
    ax.set_title(f"study {report.study}: {len([row for row in report.trials if row.state == 'COMPLETE'])} complete trials")
    ax.grid(axis="x", alpha=0.3)
    return _png(figure)
