"""Scanned pages and images read by OCR (issue #15): a real Tesseract on real image-only
files made here. Without Tesseract installed these skip (the app then says to install it,
which tests/documents/test_sniff.py covers); the text and its page rectangles must come
out as for a text PDF, so citations highlight the scanned words."""

from __future__ import annotations

import shutil
from pathlib import Path

import pymupdf
import pytest

from app.documents.ingest import load_document
from app.errors import DocumentError

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="Tesseract (tesseract-ocr) is not installed"
)
LINES = "The lease of Harbor Street ends on 31 March 2031.\nThe annual rent is 48,000 euros."


def scanned(tmp_path: Path) -> tuple[Path, Path]:
    """A page of text rendered to a PNG, and a PDF whose only content is that image."""
    source = pymupdf.open()
    page = source.new_page(width=595, height=842)
    page.insert_textbox(pymupdf.Rect(56, 56, 539, 400), LINES, fontsize=16)
    image = tmp_path / "scan.png"
    page.get_pixmap(dpi=150).save(image)
    pdf = pymupdf.open()
    pdf.new_page(width=595, height=842).insert_image(pymupdf.Rect(0, 0, 595, 842), filename=image)
    pdf_path = tmp_path / "scan.pdf"
    pdf.save(pdf_path)
    return image, pdf_path


def test_a_scan_without_ocr_says_it_has_no_text_layer(tmp_path):
    _, pdf = scanned(tmp_path)
    with pytest.raises(DocumentError, match="no text layer") as refused:
        load_document(pdf, ocr=False, use_cache=False)
    assert "OCR" in refused.value.hint


@needs_tesseract
@pytest.mark.parametrize("which", ["pdf", "png"])
def test_ocr_reads_a_scanned_pdf_and_an_image_with_rectangles(tmp_path, which):
    image, pdf = scanned(tmp_path)
    document = load_document(pdf if which == "pdf" else image, ocr=True, use_cache=False)
    text = " ".join(document.text.split())
    assert "Harbor Street ends on 31 March 2031" in text and "48,000 euros" in text
    assert document.page_count == 1
    start = document.text.index("Harbor")
    rects = document.rects_for(start, start + len("Harbor Street"))
    assert rects and {page for page, _ in rects} == {1}
    x0, y0, x1, y1 = rects[0][1]
    # Where the words were drawn: the top left of the page, in PDF points.
    assert 40 < x0 < 300 and 40 < y0 < 120 and x1 > x0 and y1 > y0
