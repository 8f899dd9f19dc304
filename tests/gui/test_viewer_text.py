"""The viewer's Text tab shows the same page markers as the ``text`` command, and a
highlighted span still covers exactly the cited characters; Word and HTML documents
have no page view."""

from __future__ import annotations

import docx

from app.documents.ingest import load_document
from app.gui.main import make_app
from app.gui.viewer import DocumentViewer
from tests.conftest import make_pdf

CITED = "The treasurer is Ines Alvarez."


def _selected(viewer: DocumentViewer) -> str:
    (selection,) = viewer.text.extraSelections()
    return selection.cursor.selectedText()


def test_word_document_text_tab_markers_and_highlight(qtbot, tmp_path):
    make_app()
    d = docx.Document()
    d.add_paragraph("Page one is about the budget.")
    d.add_page_break()
    d.add_paragraph(CITED)
    d.save(tmp_path / "minutes.docx")
    doc = load_document(tmp_path / "minutes.docx")
    viewer = DocumentViewer()
    qtbot.addWidget(viewer)
    viewer.show_document(doc)
    shown = viewer.text.toPlainText()
    assert shown.startswith("--- page 1 ---\nPage one")
    assert shown.index("--- page 2 ---") < shown.index(CITED)
    assert not viewer.isTabEnabled(0) and viewer.currentIndex() == 1  # no page view
    start = doc.text.index(CITED)
    viewer.mark_span(start, start + len(CITED))
    assert _selected(viewer) == CITED


def test_pdf_highlight_spanning_a_page_start_skips_the_marker(qtbot, tmp_path):
    make_app()
    path = make_pdf(tmp_path / "two.pdf", ["First page body.", "Second page body."])
    doc = load_document(path)
    viewer = DocumentViewer()
    qtbot.addWidget(viewer)
    viewer.show_document(doc)
    assert viewer.isTabEnabled(0) and viewer.pages.pdf is not None
    viewer.mark_span(0, doc.page_starts[1])  # page 1 exactly, as a chunk would be
    assert "--- page 2 ---" not in _selected(viewer)
    assert _selected(viewer).startswith("First page body.")
    start = doc.text.index("Second")
    viewer.mark_span(start, start + len("Second page body."))
    assert _selected(viewer) == "Second page body."
