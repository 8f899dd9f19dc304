"""The page view's layout and which tab shows a highlight: a PDF opened while the Pages
tab is hidden still scrolls over its whole page, and in a collection a passage in a text
member shows in the Text tab, not on the last PDF member's page."""

from __future__ import annotations

import docx

from app.documents.collection import load_collection
from app.documents.ingest import load_document
from app.gui.main import make_app
from app.gui.viewer import DocumentViewer
from tests.conftest import make_pdf


def _viewer(qtbot) -> DocumentViewer:
    make_app()
    viewer = DocumentViewer()
    qtbot.addWidget(viewer)
    viewer.resize(700, 500)
    viewer.show()
    qtbot.waitExposed(viewer)
    return viewer


def test_first_pdf_after_a_word_document_scrolls_over_its_whole_page(qtbot, tmp_path):
    word = docx.Document()
    word.add_paragraph("A lease in Word.")
    word.save(tmp_path / "lease.docx")
    pdf = make_pdf(tmp_path / "report.pdf", ["Page one.", "Page two."])
    viewer = _viewer(qtbot)
    viewer.show_document(load_document(tmp_path / "lease.docx"))
    qtbot.wait(20)
    viewer.show_document(load_document(pdf))  # rendered while the Pages tab was hidden
    pages = viewer.pages
    qtbot.waitUntil(lambda: pages.label.height() >= pages.label.pixmap().height(), timeout=2000)
    bar = pages.scroller.verticalScrollBar()
    assert bar.maximum() > 0  # the page is taller than the view: it scrolls
    # fitted to the view's real width, not the stale one of the hidden tab
    assert pages.label.pixmap().width() <= pages.scroller.viewport().width()
    assert pages.label.pixmap().width() > pages.scroller.viewport().width() - 60


def test_a_passage_in_a_text_member_shows_in_the_text_tab(qtbot, tmp_path):
    folder = tmp_path / "room"
    folder.mkdir()
    make_pdf(folder / "1-lease.pdf", ["The lease runs to 2031. " * 25, "Rent: 900 EUR a month."])
    (folder / "2-memo.txt").write_text("The tenant is Harbor Ltd.\n" * 30, encoding="utf-8")
    doc = load_collection([folder / "1-lease.pdf", folder / "2-memo.txt"])
    viewer = _viewer(qtbot)
    viewer.show_document(doc)
    rent = doc.text.index("Rent:")
    viewer.mark_span(rent, rent + 10)
    assert viewer.currentIndex() == 0 and set(viewer.pages.highlights) == {2}
    qtbot.waitUntil(lambda: viewer.pages.scroller.verticalScrollBar().maximum() > 0)
    memo = doc.text.index("Harbor Ltd")
    viewer.mark_span(memo, memo + 10)
    assert viewer.currentIndex() == 1  # the Text tab, where the highlight is
    assert viewer.pages.highlights == {}  # not the lease's old one
    (selection,) = viewer.text.extraSelections()
    assert selection.cursor.selectedText() == "Harbor Ltd"
