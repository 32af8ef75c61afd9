"""``atheria report``: one document of the experiment (HTML, or Markdown with its PNGs)."""

from __future__ import annotations

from pathlib import Path

import typer

from atheria_cli.cli.tables import notice, print_line
from atheria_cli.config import load_config, resolve_config_path


def report(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Experiment YAML (default: ./configs/default.yaml, else the packaged default)."
    ),
    checkpoints_dir: Path | None = typer.Option(None, "--checkpoints-dir", help="Where runs are (overrides the config)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", metavar="PATH", help="The file to write (default: <checkpoints_dir>/<experiment>/report.html)."
    ),
    format_name: str | None = typer.Option(
        None, "--format", "-f", metavar="html|md", help="html: one self-contained page; md: Markdown, PNGs beside it."
    ),
) -> None:
    """Comparison, learning curves, sessions, checkpoints, exports and config of the experiment in one document."""
    from atheria_cli.reports.report import write_report  # here, not at start-up: matplotlib is heavy

    overrides = {"checkpoints_dir": str(checkpoints_dir) if checkpoints_dir else None}
    experiment = load_config(resolve_config_path(config), overrides, check_extras=False)
    written = write_report(experiment, output=output, format_name=format_name)
    if written.images:
        notice(f"figures: {len(written.images)} PNG(s) in {written.images[0].parent}")
    print_line(str(written.path))  # the result, alone on stdout: `xdg-open "$(atheria report)"`
