"""The reading map at scale and under the mouse: 2,000 pages and 140 steps paint in one
widget quickly (a generous bound, not a timing race), hover tells a band's pages, tokens
and time, a click selects the band's step, the step being read pulses."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QToolTip

from app.agent.events import Chunk
from app.gui.library import LibraryPanel
from app.gui.main import make_app
from app.gui.reading_map import Band, ReadingMap, band_tooltip

PAGES, STEPS = 2000, 140


def big_map(qtbot) -> ReadingMap:
    make_app()
    view = ReadingMap()
    qtbot.addWidget(view)
    view.resize(64, 900)
    view.reset(PAGES)
    per = PAGES / STEPS
    for i in range(STEPS - 1):
        first, last = int(i * per) + 1, int((i + 1) * per)
        tip = band_tooltip(i, STEPS, first, last, 30_000, 2_000, 41_000.0, 3, 1)
        view.add_band(Band(i, first, last, (i % 7) / 6, tip))
    view.mark_current(Chunk(STEPS - 1, 0, 1, 1, int((STEPS - 1) * per) + 1, PAGES))
    return view


def test_paints_2000_pages_and_140_steps_fast(qtbot):
    view = big_map(qtbot)
    image = QImage(view.size(), QImage.Format.Format_ARGB32)
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        view.render(image)  # the widget's own paintEvent, into an image
    per_paint = (time.perf_counter() - started) / rounds
    # About a millisecond here; the bound only catches a per-page widget or loop creeping in.
    assert per_paint < 0.1, f"one paint took {per_paint * 1000:.1f} ms"
    assert view.paint_count >= rounds
    assert view.pages_read() == int((STEPS - 1) * PAGES / STEPS)
    view.show()
    assert not view.findChildren(type(view))  # one widget, not one per page


def test_hover_tells_pages_tokens_and_time_and_click_selects(qtbot):
    view = big_map(qtbot)
    view.show()
    qtbot.waitExposed(view)
    band = view.bands[70]
    centre = view.band_rect(band).center().toPoint()
    qtbot.mouseMove(view, centre)
    qtbot.waitUntil(QToolTip.isVisible, timeout=2000)
    tip = QToolTip.text()
    assert f"Step 71 of {STEPS}: pages {band.page_first}–{band.page_last}" in tip
    assert "30,000 tokens read, 2,000 written, 41 s" in tip
    with qtbot.waitSignal(view.step_clicked) as clicked:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=centre)
    assert clicked.args == [70] and view.selected == 70


def test_the_step_being_read_pulses_and_a_stop_is_marked(qtbot):
    view = big_map(qtbot)
    view.show()
    assert view._pulse.isActive()
    before = view.phase
    with qtbot.waitSignal(view._pulse.timeout, timeout=2000):
        pass
    assert view.phase != before
    current = view.current
    view.mark_stopped(current)
    assert not view._pulse.isActive() and view.stopped == current


def test_long_document_titles_elide_with_a_tooltip(qtbot):
    make_app()
    panel = LibraryPanel()
    qtbot.addWidget(panel)
    panel.resize(230, 500)
    panel.show()
    title = "Riverton Water Authority - Internal Audit Report 2025, Final Version " * 2
    panel.set_documents(
        [{"id": 1, "title": title, "page_count": 8, "kind": "pdf", "path": "/d/r.pdf"}], 1
    )
    item = panel.documents.item(0)
    first_line = item.text().splitlines()[0]
    assert first_line.endswith("…") and len(first_line) < len(title)
    assert title in item.toolTip() and "/d/r.pdf" in item.toolTip()
    assert panel.documents.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    assert panel.documents.visualItemRect(item).width() <= panel.documents.viewport().width()
    shown = len(first_line)
    panel.resize(1400, 500)  # wider: the title is elided again, longer
    panel.documents.resize(1300, 400)
    assert len(panel.documents.item(0).text().splitlines()[0]) > shown


def test_chunks_sharing_a_page_split_it_and_their_numbers_never_overlap(qtbot):
    """33 chunks over 12 pages (a short document, small chunks): each page holds two or
    three steps, each gets its own share of the page, and no step number is drawn over
    another (the tester saw "2/1" and "5/4")."""
    make_app()
    view = ReadingMap()
    qtbot.addWidget(view)
    view.resize(64, 600)
    view.reset(12)
    steps = 33
    for i in range(steps):
        first, last = i * 12 // steps + 1, ((i + 1) * 12 - 1) // steps + 1
        view.add_band(Band(i, first, last, 0.5, f"Step {i + 1}"))
    rects = [view.band_rect(band) for band in view.bands]
    for earlier, later in zip(rects, rects[1:], strict=False):
        assert later.top() >= earlier.bottom() - 0.01  # in reading order, no overlap
        assert later.top() > earlier.top()
    labels = view.label_rects(view.fontMetrics().height())
    assert len(labels) >= 5  # tall enough here for several numbers
    boxes = [box for box, _ in labels]
    assert all(not a.intersects(b) for a, b in zip(boxes, boxes[1:], strict=False))
    # each band is clickable at its own centre
    for band, rect in zip(view.bands, rects, strict=False):
        assert view.band_at(rect.center().y()) is band
