"""The table of ``atheria compare`` for a multi-seed experiment: one row per agent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from atheria_cli.cli.tables import add_row, arrow, evaluations_scored, print_line, show, table, verdict_text
from atheria_cli.reports.text import number

if TYPE_CHECKING:
    from rich.text import Text

    from atheria_cli.reports.seeds import SeedsCompareReport, SeedsRow

NUMERIC = ("Seeds", "Mean ± std", "SE", "IQM", "95 % CI mean", "95 % CI IQM", "Min–max", "vs baseline", "Change", "P(beats best)")


def render_seeds_compare(report: SeedsCompareReport) -> None:
    metric = f"{report.metric.name} ({report.metric.goal})"
    columns = ["Agent", "Seeds", "Mean ± std", "SE", "IQM", "95 % CI mean", "95 % CI IQM", "Min–max"]
    if report.baseline is not None:
        columns += ["vs baseline", "Change", "Verdict"]
    columns.append("P(beats best)")
    seeds = ", ".join(str(seed) for seed in report.seeds)
    title = f"{report.experiment}: {metric}, mean of the last {report.window} episode(s) per seed; seeds {seeds}"
    rows = table(title, *columns, right=NUMERIC)
    for row in report.agents:
        add_row(rows, *_cells(row, report))
    for reference in report.references:
        empty = [""] * (len(columns) - 3)
        spread = f"{number(reference.mean)} ± {number(reference.std)}"
        add_row(rows, f"{reference.agent} (reference)", f"{reference.episodes} eval", spread, *empty)
    show(rows)
    if report.few_seeds:
        print_line(f"only {len(report.seeds)} seed(s): the confidence intervals are wide; 5 or more seeds make them useful")
    if report.baseline is None:
        name = report.metric.name
        print_line(f"no baseline for {name}: add `baseline: {{{name}: VALUE}}` to the config to compare with one")
    evaluated = [label for row in report.agents if (label := _evaluated(row))]
    if evaluated:
        print_line(f"{', '.join(evaluated)}: scored by {evaluations_scored(report.eval_window)}")
    if report.best_agent is not None:
        extreme = "lowest" if report.metric.goal == "min" else "highest"
        print_line(f"best: {report.best_agent} ({extreme} mean over seeds; P(beats best): over all pairs of seeds, ties ½)")


def _cells(row: SeedsRow, report: SeedsCompareReport) -> list[str | Text]:
    stats = row.statistics
    counted = f"{len(row.scores)}/{len(row.seeds)}" if len(row.scores) != len(row.seeds) else str(len(row.seeds))
    if stats is None:
        return [row.agent, counted, *[""] * (len(NUMERIC) - (0 if report.baseline is not None else 3) - 1)]
    cells: list[str | Text] = [
        row.agent,
        counted,
        f"{number(stats.mean)} ± {number(stats.std)}",
        number(stats.sem),
        number(stats.iqm),
        _interval(stats.mean_ci),
        _interval(stats.iqm_ci),
        f"{number(stats.minimum)} – {number(stats.maximum)}",
    ]
    if report.baseline is not None:
        if row.improvement is None:
            cells += ["", "", ""]
        else:
            moved = stats.mean - report.baseline
            percent = f" ({abs(row.improvement_percent):.1f} %)" if row.improvement_percent is not None else ""
            where = f"{number(report.baseline)} → {number(stats.mean)}"
            cells += [where, f"{arrow(moved)} {number(abs(moved))}{percent}", verdict_text(row.verdict)]
    cells.append("–" if row.agent == report.best_agent or row.beats_best is None else f"{row.beats_best:.2f}")
    return cells


def _evaluated(row: SeedsRow) -> str | None:
    """The agent, with its seeds when only some were scored by their evaluations; None when none was."""
    seeds = [each.seed for each in row.seeds if each.source == "evaluation"]
    if not seeds:
        return None
    if len(seeds) == len(row.scores):
        return row.agent
    return f"{row.agent} (seed{'s' if len(seeds) > 1 else ''} {', '.join(str(seed) for seed in seeds)})"


def _interval(interval: tuple[float, float] | None) -> str:
    return "–" if interval is None else f"[{number(interval[0])}, {number(interval[1])}]"
