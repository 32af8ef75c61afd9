"""``atheria report``: the document as a list of blocks, which the HTML and Markdown writers render.

The sections (:mod:`.report_sections`) say *what* the document holds in plain text (every
string here is unescaped, a user's or not); the writers (:mod:`.report_html`,
:mod:`.report_markdown`) say *how* it looks and do all the escaping. Torch-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2  # 1: the title; 2: a section; 3: a part of one

    @property
    def anchor(self) -> str:
        """A fragment id made of the text (``#learning-curves``), for links within the page."""
        return re.sub(r"[^a-z0-9]+", "-", self.text.lower()).strip("-") or "section"


@dataclass(frozen=True)
class Paragraph:
    text: str
    note: bool = False  # a remark under a table or figure: smaller, muted


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    numeric: frozenset[str] = frozenset()  # column names whose cells are numbers: right-aligned
    code: frozenset[str] = frozenset()  # column names whose cells are file names or hashes: monospace
    hashes: frozenset[str] = frozenset()  # code columns of long hex digests: may break anywhere


@dataclass(frozen=True)
class Image:
    name: str  # a file name, unique within the document: report_files/<name> in Markdown
    png: bytes = field(repr=False)
    alt: str = ""


@dataclass(frozen=True)
class Preformatted:
    text: str
    language: str = ""  # a hint for Markdown's fence (yaml)


Block = Heading | Paragraph | Table | Image | Preformatted


def number(value: float | None) -> str:
    """Two decimals, or 4 significant digits for very small or large magnitudes; '–' when missing
    (the CLI tables' rule, :func:`atheria_cli.cli.tables.number`, which the core cannot import)."""
    if value is None:
        return "–"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.4g}"
    return f"{value:.2f}"


def duration(seconds: float) -> str:
    """``42.0 s``, ``3 m 05 s``, ``2 h 07 m``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def size(byte_count: int | None) -> str:
    """Decimal units, like ``du --si``: ``512 B``, ``1.3 MB``."""
    if byte_count is None:
        return "–"
    if byte_count < 1000:
        return f"{byte_count} B"
    value = byte_count / 1000
    for unit in ("KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            break
        value /= 1000
    return f"{value:.1f} {unit}"


def span(first: int | None, last: int | None) -> str:
    if first is None or last is None:
        return "–"
    return str(first) if first == last else f"{first}–{last}"
