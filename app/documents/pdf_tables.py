"""Tables in PDF pages: each table becomes rows of text in reading order, a row's label
(first cell) followed by its values in column order ("Revenue | 1,200 | 1,350"), the
header row first, so a figure keeps its label in whatever chunk the model reads. Every
cell keeps its own rectangle for highlighting.

PyMuPDF's find_tables costs milliseconds to tens of milliseconds a page, so it only runs
on PDF pages whose content stream draws several rectangles or lines (the ruling of a
table); the check is a few byte counts over the stream, which MuPDF has decoded anyway.
"""

from __future__ import annotations

import re

import pymupdf

from app.documents.model import Rect

Block = tuple[float, float, float, float, str]
# (start, end, rect) of one cell within its row's line; the span runs to the next cell,
# so the " | " between cells maps to the cell before it.
Cell = tuple[int, int, Rect]
# A table: its bbox, its rows joined by "\n", and each row's cells.
TableBlock = tuple[float, float, float, float, str, list[list[Cell]]]
PageBlock = Block | TableBlock

CELL_SEPARATOR = " | "
# Path operators that rule a table: "x y w h re" and "x y l" (content streams separate
# operators by any whitespace; a literal string rarely holds these).
_PATH_OPS = (b" re\n", b" re ", b" re\r", b" l\n", b" l ", b" l\r")
_MIN_PATH_OPS = 4  # a 2x2 grid of cell rectangles, or its lines
_GENERIC_NAME = re.compile(r"Col\d+")  # find_tables' name for a header it did not find
_ERRORS = (RuntimeError, ValueError, IndexError, TypeError, pymupdf.mupdf.FzErrorBase)

if hasattr(pymupdf, "no_recommend_layout"):
    pymupdf.no_recommend_layout()  # find_tables would print advice to stdout once


def may_hold_table(pdf: pymupdf.Document, page: pymupdf.Page) -> bool:
    """Whether the page draws enough rectangles or lines to rule a table."""
    if not pdf.is_pdf:
        return False
    try:
        content = page.read_contents()
    except _ERRORS:
        return False
    count = 0
    for op in _PATH_OPS:
        count += content.count(op)
        if count >= _MIN_PATH_OPS:
            return True
    return False


def _row(values: list[str | None], boxes: list[Rect | None]) -> tuple[str, list[Cell]]:
    cells: list[tuple[str, Rect]] = []
    for value, box in zip(values, boxes, strict=False):
        if box is None:  # covered by a merged cell to its left
            continue
        cells.append((" ".join((value or "").split()), tuple(box)))  # type: ignore[arg-type]
    while cells and not cells[-1][0]:
        cells.pop()
    if not cells:
        return "", []
    line = CELL_SEPARATOR.join(text for text, _ in cells)
    spans: list[Cell] = []
    pos = 0
    for i, (text, box) in enumerate(cells):
        end = len(line) if i == len(cells) - 1 else pos + len(text) + len(CELL_SEPARATOR)
        spans.append((pos, end, box))
        pos = end
    return line, spans


def page_tables(page: pymupdf.Page) -> list[TableBlock]:
    """The page's tables as blocks of rows; [] when none is found (or PyMuPDF fails)."""
    try:
        found = page.find_tables()
        tables: list[TableBlock] = []
        for table in found.tables:
            if table.row_count < 2 or table.col_count < 2:
                continue  # a frame around text, not a table
            rows: list[tuple[list[str | None], list[Rect | None]]] = []
            header = table.header
            if header.external and not all(
                _GENERIC_NAME.fullmatch(name or "") for name in header.names
            ):
                rows.append((list(header.names), list(header.cells)))
            for values, row in zip(table.extract(), table.rows, strict=False):
                rows.append((values, list(row.cells)))
            lines: list[str] = []
            cells: list[list[Cell]] = []
            for values, boxes in rows:
                line, spans = _row(values, boxes)
                if line.replace("|", "").strip():
                    lines.append(line)
                    cells.append(spans)
            if lines:
                x0, y0, x1, y1 = table.bbox
                if header.external and rows and len(rows) > len(table.rows):
                    y0 = min(y0, header.bbox[1])
                tables.append((x0, y0, x1, y1, "\n".join(lines), cells))
        return tables
    except _ERRORS:
        return []


def _inside(x: float, y: float, table: TableBlock) -> bool:
    return table[0] - 1 <= x <= table[2] + 1 and table[1] - 1 <= y <= table[3] + 1


def outside_tables(blocks: list[Block], tables: list[TableBlock]) -> list[Block]:
    """The blocks whose middle lies in no table (what a second finder may look at)."""
    return [
        b
        for b in blocks
        if not any(_inside((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, t) for t in tables)
    ]


def with_tables(blocks: list[Block], tables: list[TableBlock]) -> list[PageBlock]:
    """The page's blocks with the lines inside a table replaced by the table. A block's
    lines outside every table are kept with the rectangles they had (same line height)."""
    kept: list[PageBlock] = []
    for block in blocks:
        x0, y0, x1, y1, text = block
        lines = text.rstrip("\n").split("\n")
        step = (y1 - y0) / max(1, len(lines))
        cx = (x0 + x1) / 2
        outside = [
            not any(_inside(cx, y0 + (j + 0.5) * step, t) for t in tables)
            for j in range(len(lines))
        ]
        if all(outside):
            kept.append(block)
            continue
        j = 0
        while j < len(lines):
            if not outside[j]:
                j += 1
                continue
            k = j
            while k + 1 < len(lines) and outside[k + 1]:
                k += 1
            part = "\n".join(lines[j : k + 1])
            kept.append((x0, y0 + j * step, x1, y0 + (k + 1) * step, part))
            j = k + 1
    kept.extend(tables)
    return kept
