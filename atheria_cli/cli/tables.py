"""Rendering helpers shared by the inspection commands (history, status, compare)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from atheria_cli.cli.console import console, err_console
from atheria_cli.reports.text import number

VERDICT_STYLES = {"better": "green", "worse": "red", "same": ""}
UNBOUNDED_WIDTH = 10_000  # room for a table's natural width when stdout is a pipe or a file


def table(title: str, *columns: str, right: Sequence[str] = ()) -> Table:
    """A table with the given columns; those named in ``right`` hold numbers: right-aligned and
    never wrapped (a number split over two lines reads as two numbers)."""
    result = Table(title=title, title_justify="left")
    for column in columns:
        numeric = column in right
        result.add_column(column, justify="right" if numeric else "left", no_wrap=numeric)
    return result


def add_row(rendered: Table, *cells: str | Text) -> None:
    """Cells are plain text: a name or a path holding ``[...]`` must not be read as Rich markup."""
    rendered.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))


def show(rendered: Table) -> None:
    """Print a table on stdout. Into a terminal it fits the terminal; into a pipe or a file it
    keeps its natural width, where Rich would otherwise wrap every cell at 80 columns."""
    console.print(rendered if console.is_terminal else _NaturalWidth(rendered), crop=False)


class _NaturalWidth:
    def __init__(self, rendered: Table) -> None:
        self.rendered = rendered

    def __rich_console__(self, target: Console, options: ConsoleOptions) -> RenderResult:
        # A table that is not expanded takes only the width it needs, so unbounded room gives
        # its natural width without measuring it twice.
        yield from target.render(self.rendered, options.update(width=max(options.max_width, UNBOUNDED_WIDTH)))


def signed(value: float | None) -> str:
    return "–" if value is None else ("+" if value > 0 else "") + number(value)


def arrow(change: float | None) -> str:
    if change is None:
        return ""
    return "↑" if change > 0 else "↓" if change < 0 else "="


def change_percent(change: float | None, percent: float | None) -> str:
    """``↓ 5.5 %``: the direction of the change and its size relative to the reference."""
    if change is None:
        return ""
    return f"{arrow(change)} {abs(percent):.1f} %" if percent is not None else arrow(change)


def verdict_text(verdict: str | None) -> Text:
    return Text(verdict or "", style=VERDICT_STYLES.get(verdict or "", ""))


def evaluations_scored(eval_window: int) -> str:
    """How an evaluated run was scored, for the line under a comparison."""
    which = "the last evaluation" if eval_window == 1 else f"the last {eval_window} evaluations"
    return f"{which} (train.eval), not by training episodes"


def timestamp(iso: str) -> str:
    return iso.replace("T", " ", 1)


def print_json(document: Any) -> None:
    """One JSON document on stdout and nothing else, written as is: Rich would scan every
    character of a long document (``--all`` on a long run) for markup it must not apply."""
    console.file.write(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def print_line(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def notice(text: str) -> None:
    """Diagnostics (files written) go to stderr, so stdout stays the result alone."""
    err_console.print(text, markup=False, highlight=False, soft_wrap=True)
