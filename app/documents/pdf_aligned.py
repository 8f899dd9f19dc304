"""Borderless tables in PDF pages: rows of a label and figures that only their alignment
holds together, as in most financial statements of annual reports and filings.

MuPDF gives such a page as separate blocks (the labels, then each column of figures), so
"Revenue" and its "1,200" and "1,350" reach the model apart and the years heading the
columns are lost. find_tables' text strategy would find them, but on every page of prose
it also "finds" tables in justified text, and it costs tens of milliseconds a page. This
reads the lines already extracted instead: lines that share a baseline form a row; a row
whose pieces after the first are all figures is a table row; three or more such rows in
a run form a table, emitted like a ruled one (app/documents/pdf_tables.py): one line per
row, label first, values in column order, each cell keeping its rectangle.
"""

from __future__ import annotations

import re

import pymupdf

from app.documents.model import Rect
from app.documents.pdf_tables import CELL_SEPARATOR, Block, Cell, TableBlock

# A figure as statements print it: 1,200 | (700) | -3.5% | €48,000 | 2025 | — (nil).
_FIGURE = re.compile(
    r"[(\-−–]?\s?[$€£¥]?\s?\d[\d,.\u202f\u00a0 ]*%?\s?\)?|[—–-]{1,2}|n/?a|nil",
    re.IGNORECASE,
)
_MIN_ROWS = 3  # two aligned lines are as often a heading beside a date
_Line = tuple[float, float, float, float, str]


def _figure_lines(blocks: list[Block]) -> int:
    return sum(
        bool(_FIGURE.fullmatch(line.strip()))
        for block in blocks
        for line in block[4].split("\n")
        if line.strip()
    )


def _lines(page: pymupdf.Page, blocks: list[Block]) -> list[_Line]:
    """The lines of ``blocks`` with their own rectangles (MuPDF puts the label and the
    figures of one row in one block, as lines side by side, so a block's lines cannot
    be assumed stacked)."""
    wanted = [(b[0], b[1], b[2], b[3]) for b in blocks]
    lines: list[_Line] = []
    for block in page.get_text("dict", flags=0)["blocks"]:
        if block.get("type") != 0 or not _near_any(block["bbox"], wanted):
            continue
        for line in block["lines"]:
            text = "".join(span["text"] for span in line["spans"]).strip()
            if text:
                x0, y0, x1, y1 = line["bbox"]
                lines.append((x0, y0, x1, y1, text))
    return lines


def _near_any(box: tuple[float, float, float, float], boxes: list[Rect]) -> bool:
    return any(all(abs(a - b) < 1 for a, b in zip(box, other, strict=True)) for other in boxes)


def _rows(lines: list[_Line]) -> list[list[_Line]]:
    """Lines grouped by baseline: a row holds the lines whose vertical middles are within
    a third of a line's height of the row's first; each row is ordered left to right."""
    rows: list[list[_Line]] = []
    for line in sorted(lines, key=lambda ln: ((ln[1] + ln[3]) / 2, ln[0])):
        middle, height = (line[1] + line[3]) / 2, line[3] - line[1]
        if rows:
            first = rows[-1][0]
            if abs((first[1] + first[3]) / 2 - middle) <= max(1.0, height / 3):
                rows[-1].append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda ln: ln[0]) for row in rows]


def _is_table_row(row: list[_Line]) -> bool:
    if len(row) < 2 or any(a[2] > b[0] + 1 for a, b in zip(row, row[1:], strict=False)):
        return False  # one piece, or pieces that overlap: a line of prose, not columns
    return all(_FIGURE.fullmatch(piece[4]) for piece in row[1:])


def _table(rows: list[list[_Line]]) -> TableBlock:
    texts: list[str] = []
    cells: list[list[Cell]] = []
    for row in rows:
        line = CELL_SEPARATOR.join(piece[4] for piece in row)
        spans: list[Cell] = []
        pos = 0
        for i, piece in enumerate(row):
            # As in a ruled table: a cell's span runs to the next, separator included.
            end = len(line) if i == len(row) - 1 else pos + len(piece[4]) + len(CELL_SEPARATOR)
            rect: Rect = (piece[0], piece[1], piece[2], piece[3])
            spans.append((pos, end, rect))
            pos = end
        texts.append(line)
        cells.append(spans)
    pieces = [piece for row in rows for piece in row]
    return (
        min(p[0] for p in pieces),
        min(p[1] for p in pieces),
        max(p[2] for p in pieces),
        max(p[3] for p in pieces),
        "\n".join(texts),
        cells,
    )


def _figures_x(run: list[list[_Line]]) -> float:
    """Where the run's first column of figures starts."""
    return min(piece[0] for row in run for piece in (row[1:] if len(row) > 2 else row[-1:]))


def aligned_tables(page: pymupdf.Page, blocks: list[Block]) -> list[TableBlock]:
    """The borderless tables among ``blocks`` of ``page``: runs of at least three rows of
    a label (or none, for a header of years) followed by figures on the same baseline,
    rows no further apart than three line heights. Pages with fewer than six lines of
    figures are not looked at (no table of three rows of two figures)."""
    tables: list[TableBlock] = []
    if _figure_lines(blocks) < 2 * _MIN_ROWS:
        return tables
    run: list[list[_Line]] = []
    headings: list[list[_Line]] = []  # label-only rows inside a run ("Current assets")

    def close() -> None:
        if sum(len(row) > 1 for row in run) >= _MIN_ROWS:
            tables.append(_table(run))
        run.clear()
        headings.clear()

    for row in _rows(_lines(page, blocks)):
        if run:
            last, height = (headings or run)[-1][0], row[0][3] - row[0][1]
            if row[0][1] - last[3] > 3 * height:
                close()
        if _is_table_row(row):
            run.extend(headings)
            headings.clear()
            run.append(row)
        elif run and len(row) == 1 and len(headings) < 2 and row[0][2] < _figures_x(run):
            headings.append(row)  # a section heading left of the figures: kept if rows follow
        else:
            close()
    close()
    return tables
