"""``atheria report --format html``: one self-contained file a colleague can open anywhere.

Images are inline (``data:image/png;base64``), the style is inline, there is no script, and a
Content-Security-Policy forbids loading anything else, so the page needs no network and shows the
same offline as on a web server. Every text is escaped here (:func:`html.escape`): agent names,
paths and config values are the user's. Torch-free.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from atheria_cli.reports.report_document import Block, Heading, Image, Paragraph, Preformatted, Table

# What the page may load: images from data: URIs and its own inline style; nothing else.
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2328;
       margin: 0 auto; padding: 24px 32px 48px; max-width: 1180px; }
h1 { font-size: 26px; margin: 0 0 8px; }
h2 { font-size: 20px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 16px; margin: 20px 0 6px; }
p { margin: 6px 0 10px; }
p.note { font-size: 13px; color: #59636e; }
nav { font-size: 13px; margin: 4px 0 16px; }
nav a { margin-right: 12px; color: #0969da; text-decoration: none; }
table { border-collapse: collapse; margin: 6px 0 8px; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
tr:nth-child(even) td { background: #fbfcfd; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; white-space: nowrap; }
td.hash { white-space: normal; word-break: break-all; min-width: 16em; }
td.better { color: #1a7f37; font-weight: 600; }
td.worse { color: #cf222e; font-weight: 600; }
img { display: block; max-width: 100%; height: auto; margin: 6px 0 12px; border: 1px solid #eaeef2; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: 10px 12px; font-size: 12px; overflow-x: auto; }
"""


def render_html(blocks: Sequence[Block]) -> bytes:
    """The page, UTF-8 encoded: a title from the first heading, links to the sections, the blocks."""
    title = next((block.text for block in blocks if isinstance(block, Heading)), "atheria report")
    sections = [block for block in blocks if isinstance(block, Heading) and block.level == 2]
    links = " ".join(f'<a href="#{html.escape(block.anchor)}">{html.escape(block.text)}</a>' for block in sections)
    body = []
    for index, block in enumerate(blocks):
        body.append(_block(block))
        if index == 0 and links:  # under the title
            body.append(f"<nav>{links}</nav>")
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    return page.encode("utf-8")


def _block(block: Block) -> str:
    if isinstance(block, Heading):
        anchor = f' id="{html.escape(block.anchor)}"' if block.level == 2 else ""
        return f"<h{block.level}{anchor}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        note = ' class="note"' if block.note else ""
        return f"<p{note}>{html.escape(block.text)}</p>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{html.escape(block.alt)}">'
    if isinstance(block, Preformatted):
        return f"<pre>{html.escape(block.text)}</pre>"
    raise TypeError(f"not a report block: {block!r}")


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(column)}</th>" for column in table.columns)
    rows = []
    for cells in table.rows:
        rows.append(
            "<tr>" + "".join(_cell(column, cell, table) for column, cell in zip(table.columns, cells, strict=True)) + "</tr>"
        )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _cell(column: str, text: str, table: Table) -> str:
    classes = []
    if column in table.numeric:
        classes.append("num")
    if column in table.code:
        classes.append("code")
    if column in table.hashes:
        classes.append("hash")
    if text in ("better", "worse"):  # the verdict against the baseline
        classes.append(text)
    attribute = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{attribute}>{html.escape(text)}</td>"
