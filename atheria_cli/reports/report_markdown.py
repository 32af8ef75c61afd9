"""``atheria report --format md``: Markdown, with its figures as PNG files in a folder beside it.

``report.md`` links its images as ``report_files/<name>.png`` (relative), so the pair can be
committed to a repository or attached together. Text is escaped for CommonMark: a path or a
config value can hold ``*``, ``_``, ``|`` or ``<`` that Markdown would otherwise read. Torch-free.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote

from atheria_cli.reports.report_document import Block, Heading, Image, Paragraph, Preformatted, Table

# CommonMark's backslash escapes for the characters that could start markup inside a line (a
# link needs "[", an image "![", so escaping the brackets covers "(", ")" and "!" too).
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def escape(text: str) -> str:
    """Text as Markdown shows it literally, on one line."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def render_markdown(blocks: Sequence[Block], files_dir: str) -> tuple[bytes, dict[str, bytes]]:
    """The document, UTF-8 encoded, and its images by file name (to write into ``files_dir``)."""
    parts = []
    images: dict[str, bytes] = {}
    for block in blocks:
        if isinstance(block, Image):
            images[block.name] = block.png
        parts.append(_block(block, files_dir))
    return ("\n\n".join(parts) + "\n").encode("utf-8"), images


def _block(block: Block, files_dir: str) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {escape(block.text)}"
    if isinstance(block, Paragraph):
        return f"*{escape(block.text)}*" if block.note else escape(block.text)
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Image):
        return f"![{escape(block.alt)}]({quote(f'{files_dir}/{block.name}')})"
    if isinstance(block, Preformatted):
        fence = "`" * max(3, _longest_backtick_run(block.text) + 1)
        return f"{fence}{block.language}\n{block.text.rstrip()}\n{fence}"
    raise TypeError(f"not a report block: {block!r}")


def _table(table: Table) -> str:
    header = "| " + " | ".join(escape(column) for column in table.columns) + " |"
    rule = "|" + "|".join("---:" if column in table.numeric else "---" for column in table.columns) + "|"
    rows = [
        "| " + " | ".join(_cell(column, cell, table) for column, cell in zip(table.columns, cells, strict=True)) + " |"
        for cells in table.rows
    ]
    return "\n".join([header, rule, *rows])


def _cell(column: str, text: str, table: Table) -> str:
    if column in table.code and text and "`" not in text:
        return f"`{' '.join(text.split())}`".replace("|", "\\|")
    return escape(text)


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)
