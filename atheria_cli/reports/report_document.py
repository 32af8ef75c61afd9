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
