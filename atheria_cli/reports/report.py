"""``atheria report``: one document of an experiment, to send to a colleague or attach to a paper.

Gathered from the run's JSON files (:mod:`.report_data`), composed into sections
(:mod:`.report_sections`), written as one self-contained HTML page (:mod:`.report_html`) or as
Markdown with its PNGs in a folder beside it (:mod:`.report_markdown`). Torch-free; matplotlib
loads only to draw the figures. Every file is written atomically, and a bad ``--output`` or
``--format`` is refused before anything is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import UsageError
from atheria_cli.reports.output import check_output_path
from atheria_cli.reports.report_data import gather_report
from atheria_cli.reports.report_sections import compose, is_figure_name
from atheria_cli.run.atomic import atomic_write_bytes

Format = Literal["html", "md"]
FORMATS: tuple[Format, ...] = ("html", "md")
SUFFIXES: dict[str, Format] = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}
DEFAULT_NAME = "report"


@dataclass(frozen=True)
class WrittenReport:
    path: Path
    format: Format
    images: list[Path] = field(default_factory=list)  # Markdown only: the PNGs beside it


def resolve_target(config: ExperimentConfig, output: Path | None, format_name: str | None) -> tuple[Path, Format]:
    """The file to write and its format: ``--format``, else what ``--output`` ends with, else
    HTML; by default ``<checkpoints_dir>/<experiment>/report.html`` (or ``.md``)."""
    if format_name is not None and format_name not in FORMATS:
        raise UsageError(f"--format {format_name!r}: use html or md")
    requested: Format | None = "md" if format_name == "md" else "html" if format_name == "html" else None
    if output is None:
        return config.run_dir / f"{DEFAULT_NAME}.{requested or 'html'}", requested or "html"
    implied = SUFFIXES.get(output.suffix.lower())
    if implied is None:
        raise UsageError(f"--output {output}: name a .html or .md file")
    if requested is not None and requested != implied:
        raise UsageError(f"--output {output} is a {output.suffix} file but --format is {requested}")
    check_output_path(output, "--output")
    return output, implied


def files_dir(path: Path) -> Path:
    """Where a Markdown report's PNGs go: ``report.md`` -> ``report_files/``."""
    return path.with_name(f"{path.stem}_files")


def write_report(config: ExperimentConfig, *, output: Path | None = None, format_name: str | None = None) -> WrittenReport:
    """Write the report of the experiment; a usage error (nothing written) when no run is committed."""
    path, chosen = resolve_target(config, output, format_name)
    blocks = compose(gather_report(config), config)
    if chosen == "html":
        from atheria_cli.reports.report_html import render_html

        atomic_write_bytes(path, render_html(blocks))
        return WrittenReport(path, chosen)
    from atheria_cli.reports.report_markdown import render_markdown

    folder = files_dir(path)
    text, images = render_markdown(blocks, folder.name)
    written = []
    for name, png in images.items():  # the figures first: the document never links a missing one
        atomic_write_bytes(folder / name, png)
        written.append(folder / name)
    atomic_write_bytes(path, text)
    _remove_stale_figures(folder, set(images))
    return WrittenReport(path, chosen, written)


def _remove_stale_figures(folder: Path, current: set[str]) -> None:
    """Figures of an earlier report (an agent since removed from the config) that this one no
    longer links. Only the names a report gives its figures: other files there are the user's."""
    if not folder.is_dir():
        return
    for stale in folder.glob("*.png"):
        if stale.name not in current and is_figure_name(stale.name):
            stale.unlink(missing_ok=True)
