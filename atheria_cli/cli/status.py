"""``atheria status``: one row per agent of the experiment."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from atheria_cli.cli.tables import add_row, print_json, print_line, show, table
from atheria_cli.config import load_config, resolve_config_path
from atheria_cli.reports.text import number, size
from atheria_cli.run.seeds import config_for_seed

if TYPE_CHECKING:
    from atheria_cli.reports.status import StatusReport


def status(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experiment YAML (default: ./configs/default.yaml, else the packaged default)."
    ),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are (overrides the config)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead of the table."),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Only this seed's runs, in a multi-seed experiment (default: every seed)."
    ),
    trial: int | None = typer.Option(None, "--trial", min=0, help="A trial of the config's tune study (atheria tune)."),
) -> None:
    """Episodes, timesteps, main metric, last checkpoint, disk use and resumability of every agent (and seed)."""
    from atheria_cli.reports.status import status_report  # here, not at start-up: other commands never need it

    overrides = {"checkpoints_dir": str(checkpoints_dir) if checkpoints_dir else None}
    experiment = load_config(resolve_config_path(config), overrides, check_extras=False)
    if trial is not None:
        from atheria_cli.tune.views import trial_view

        experiment = trial_view(experiment, trial)
    report = status_report(experiment if seed is None else config_for_seed(experiment, seed))
    if as_json:
        print_json(status_document(report))
    else:
        render_status(report)


def status_document(report: StatusReport) -> dict[str, object]:
    """``--json``'s document: a row has ``resume_exactness`` only once one was checked."""
    document = asdict(report)
    for row in document["agents"]:
        if row["resume_exactness"] is None:
            del row["resume_exactness"]
    return document


def render_status(report: StatusReport) -> None:
    metric = f"{report.metric.name} ({report.metric.goal})"
    title = f"{report.experiment}: runs in {report.run_dir}, main metric {metric}"
    numbers = ("Seed", "Episodes", "Timesteps", "Last", "Best (ep.)", "Disk")
    seeded = ["Seed"] if report.seeds else []
    columns = ["Agent", *seeded, "Episodes", "Timesteps", "Last", "Best (ep.)", "Last checkpoint", "Disk", "Resumable"]
    rows = table(title, *columns, right=numbers)
    for row in report.agents:
        seed = [str(row.seed)] if report.seeds else []
        if row.state != "committed":
            add_row(rows, row.agent, *seed, row.state, "", "", "", "", size(row.disk_bytes) if row.disk_bytes else "", "no")
            continue
        best = f"{number(row.best_value)} ({row.best_episode})" if row.best_episode is not None else "–"
        checkpoint = Path(row.last_checkpoint).name if row.last_checkpoint else "–"
        resumable = "yes" if row.resumable else f"no: {row.resume_problem}"
        add_row(
            rows,
            row.agent,
            *seed,
            str(row.episodes),
            str(row.timesteps),
            number(row.last_value),
            best,
            checkpoint,
            size(row.disk_bytes),
            resumable,
        )
    show(rows)
    for row in report.agents:  # below the table: a verdict is a sentence, too long for a column
        if row.resume_exactness is not None:
            which = f" (seed {row.seed})" if report.seeds else ""
            print_line(f"{row.agent}{which}: resume exactness {row.resume_exactness}")
