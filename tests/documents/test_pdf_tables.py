"""Tables in PDFs: rows of "label | value | value" with a rectangle per cell."""

from __future__ import annotations

import pymupdf

from app.documents import pdf as pdf_module
from app.documents.ingest import load_document

ROWS = [
    ["Item", "2023", "2024"],
    ["Revenue", "1,200", "1,350"],
    ["Cost of sales", "800", "870"],
    ["Gross profit", "400", "480"],
    ["Tax", "90", "110"],
    ["Net income", "310", "370"],
]
COLUMNS = [50, 250, 350, 450]
TOP, HEIGHT = 120, 20
BEFORE = "The figures below are audited."
AFTER = "Net income rose by 19 percent."


def _cell(row: int, column: int) -> pymupdf.Rect:
    y = TOP + row * HEIGHT
    return pymupdf.Rect(COLUMNS[column], y, COLUMNS[column + 1], y + HEIGHT)


def _statement(path, *, prose_page: bool = False):
    pdf = pymupdf.open()
    if prose_page:
        pdf.new_page().insert_textbox(
            pymupdf.Rect(50, 50, 550, 800), "A page of prose with 12 and 34 in it. " * 40
        )
    page = pdf.new_page()
    page.insert_text((50, 60), "Consolidated statement of income", fontsize=12)
    page.insert_text((50, 90), BEFORE, fontsize=10)
    for r, row in enumerate(ROWS):
        for c, value in enumerate(row):
            rect = _cell(r, c)
            page.draw_rect(rect, color=(0, 0, 0), width=0.5)
            page.insert_text((rect.x0 + 4, rect.y1 - 6), value, fontsize=10)
    page.insert_text((50, TOP + len(ROWS) * HEIGHT + 30), AFTER, fontsize=10)
    pdf.save(path)
    pdf.close()
    return path


def test_each_row_reads_label_then_values_in_column_order(tmp_path):
    doc = load_document(_statement(tmp_path / "statement.pdf"), use_cache=False)
    lines = doc.text.split("\n")
    for row in ROWS:
        assert " | ".join(row) in lines
    # header first, rows in order, text before and after the table kept in order
    at = [doc.text.index(" | ".join(row)) for row in ROWS]
    assert at == sorted(at)
    assert doc.text.index(BEFORE) < at[0] and at[-1] < doc.text.index(AFTER)
    assert doc.text.index("Consolidated statement of income") < doc.text.index(BEFORE)
    # the cells' own lines are not left behind as well
    assert doc.text.count("1,350") == 1 and "Revenue\n" not in doc.text


def test_a_cited_value_highlights_its_own_cell(tmp_path):
    doc = load_document(_statement(tmp_path / "statement.pdf"), use_cache=False)
    for r, row in enumerate(ROWS):
        line_at = doc.text.index(" | ".join(row))
        offset = line_at
        for c, value in enumerate(row):
            offset = doc.text.index(value, offset)
            rects = doc.rects_for(offset, offset + len(value))
            cell = _cell(r, c)
            assert rects, value
            for page, (x0, y0, x1, y1) in rects:
                assert page == 1
                assert cell.x0 - 1 <= x0 and x1 <= cell.x1 + 1
                assert cell.y0 - 1 <= y0 and y1 <= cell.y1 + 1
    # every character of a row maps to a rectangle, separators included
    row_at = doc.text.index(" | ".join(ROWS[1]))
    for offset in range(row_at, row_at + len(" | ".join(ROWS[1]))):
        assert doc.rects_for(offset, offset + 1)


def test_pages_without_a_table_are_extracted_as_before(tmp_path, monkeypatch):
    path = _statement(tmp_path / "two.pdf", prose_page=True)
    doc = load_document(path, use_cache=False)
    monkeypatch.setattr(pdf_module, "may_hold_table", lambda pdf, page: False)
    monkeypatch.setattr(pdf_module, "aligned_tables", lambda page, blocks: [])
    before = load_document(path, use_cache=False)
    assert "Revenue\n1,200\n1,350" in before.text  # the old extraction: a cell per line
    prose_end = before.page_starts[1]
    assert doc.text[:prose_end] == before.text[:prose_end]
    assert doc.page_starts == before.page_starts
    old = [s for s in before.spans if s.page == 1]
    assert [s for s in doc.spans if s.page == 1] == old


def test_a_frame_around_text_is_not_a_table(tmp_path, monkeypatch):
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.draw_rect(pymupdf.Rect(40, 40, 560, 300), color=(0, 0, 0))
    page.draw_line((40, 320), (560, 320))
    page.draw_line((40, 330), (560, 330))
    page.draw_line((40, 340), (560, 340))
    page.insert_textbox(pymupdf.Rect(50, 50, 550, 290), "Boxed prose with 2023 and 2024. " * 20)
    path = tmp_path / "frame.pdf"
    pdf.save(path)
    pdf.close()
    doc = load_document(path, use_cache=False)
    monkeypatch.setattr(pdf_module, "may_hold_table", lambda pdf, page: False)
    monkeypatch.setattr(pdf_module, "aligned_tables", lambda page, blocks: [])
    before = load_document(path, use_cache=False)
    assert doc.text == before.text and list(doc.spans) == list(before.spans)
