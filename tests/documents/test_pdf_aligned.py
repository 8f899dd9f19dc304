"""Borderless tables (issue #15): a statement whose rows only alignment holds together is
read as rows of label then values, the header of years first, each cell highlightable;
prose with figures in it is left as it was."""

from __future__ import annotations

import pymupdf

from app.documents import pdf as pdf_module
from app.documents.ingest import load_document

ROWS = [
    ("", "2025", "2024"),
    ("Revenue", "1,200", "1,350"),
    ("Cost of sales", "(700)", "(810)"),
    ("Gross profit", "500", "540"),
    ("Operating expenses", "(220)", "(205)"),
    ("Net income", "190", "240"),
]
LABEL_X, RIGHT_EDGES, TOP, STEP = 56, (440, 530), 130, 18
BEFORE = "The group's results improved in both years, as the table below shows."
AFTER = "Net income fell because of higher cost of sales."


def _statement(path, rows=ROWS):
    pdf = pymupdf.open()
    page = pdf.new_page(width=595, height=842)
    page.insert_text((LABEL_X, 60), "Consolidated statement of income (EUR thousand)", fontsize=12)
    page.insert_text((LABEL_X, 90), BEFORE, fontsize=10)
    for r, (label, *values) in enumerate(rows):
        y = TOP + r * STEP
        if label:
            page.insert_text((LABEL_X, y), label, fontsize=10)
        for right, value in zip(RIGHT_EDGES, values, strict=True):  # right-aligned figures
            page.insert_text(
                (right - pymupdf.get_text_length(value, fontsize=10), y), value, fontsize=10
            )
    page.insert_text((LABEL_X, TOP + len(rows) * STEP + 20), AFTER, fontsize=10)
    pdf.save(path)
    pdf.close()
    return path


def _line(row) -> str:
    return " | ".join(cell for cell in row if cell)


def test_each_row_reads_label_then_values_with_the_years_first(tmp_path):
    doc = load_document(_statement(tmp_path / "statement.pdf"), use_cache=False)
    lines = doc.text.split("\n")
    for row in ROWS:
        assert _line(row) in lines, (row, doc.text)
    at = [doc.text.index(_line(row)) for row in ROWS]
    assert at == sorted(at)
    assert doc.text.index(BEFORE) < at[0] and at[-1] < doc.text.index(AFTER)
    assert doc.text.count("1,350") == 1  # the figure is not left behind on its own line


def test_a_cited_figure_highlights_its_own_place(tmp_path):
    doc = load_document(_statement(tmp_path / "statement.pdf"), use_cache=False)
    row = doc.text.index("Revenue | 1,200 | 1,350")
    value = doc.text.index("1,350", row)
    rects = doc.rects_for(value, value + len("1,350"))
    assert rects and all(page == 1 for page, _ in rects)
    x0, y0, x1, y1 = rects[0][1]
    assert RIGHT_EDGES[0] < x0 < x1 <= RIGHT_EDGES[1] + 1  # the second column, not the first
    assert TOP + STEP - 12 < y1 < TOP + STEP + 6  # the Revenue row's line
    for offset in range(row, row + len("Revenue | 1,200 | 1,350")):
        assert doc.rects_for(offset, offset + 1)  # separators included


def test_a_section_heading_inside_the_table_stays_in_it(tmp_path):
    pdf = pymupdf.open()
    page = pdf.new_page(width=595, height=842)
    rows: list[tuple[str, ...]] = [ROWS[0], ("Current assets",), *ROWS[1:]]
    for r, (label, *values) in enumerate(rows):
        y = TOP + r * STEP
        if label:
            page.insert_text((LABEL_X, y), label, fontsize=10)
        for right, value in zip(RIGHT_EDGES, values, strict=False):
            page.insert_text(
                (right - pymupdf.get_text_length(value, fontsize=10), y), value, fontsize=10
            )
    path = tmp_path / "headed.pdf"
    pdf.save(path)
    doc = load_document(path, use_cache=False)
    assert "2025 | 2024\nCurrent assets\nRevenue | 1,200 | 1,350" in doc.text


def test_prose_with_figures_and_two_columns_is_left_as_it_was(tmp_path, monkeypatch):
    pdf = pymupdf.open()
    page = pdf.new_page(width=595, height=842)
    left, right = pymupdf.Rect(50, 50, 290, 800), pymupdf.Rect(305, 50, 545, 800)
    page.insert_textbox(left, "Revenue grew 12% to 1,350 in 2024 from 1,200. " * 30, fontsize=10)
    page.insert_textbox(right, "Costs were 870, against 800 in 2023, a rise. " * 30, fontsize=10)
    pdf.new_page().insert_textbox(
        pymupdf.Rect(50, 50, 550, 800), "\n".join(f"{n}. Item {n}" for n in range(1, 30))
    )
    path = tmp_path / "prose.pdf"
    pdf.save(path)
    pdf.close()
    doc = load_document(path, use_cache=False)
    monkeypatch.setattr(pdf_module, "aligned_tables", lambda page, blocks: [])
    before = load_document(path, use_cache=False)
    assert " | " not in doc.text
    assert doc.text == before.text and list(doc.spans) == list(before.spans)
