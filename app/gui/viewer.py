"""The document viewer: rendered PDF pages (zoom, navigation, search, highlights) and the
extracted text (selectable, with the current chunk's span marked)."""

from __future__ import annotations

from collections.abc import Sequence

import pymupdf
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeySequence,
    QPainter,
    QPixmap,
    QShortcut,
    QShowEvent,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.documents.formats import REFLOWED_KINDS
from app.documents.markers import MarkedText, mark_pages
from app.documents.model import Document, Rect

HIGHLIGHT = QColor(255, 200, 0, 90)


class PageView(QWidget):
    """One page at a time, rendered on the UI thread (PyMuPDF documents are used from one
    thread only); rendering an A4 page takes a few milliseconds."""

    page_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pdf: pymupdf.Document | None = None
        self.page = 1
        self.zoom = 1.25
        self.highlights: dict[int, list[Rect]] = {}
        self.label = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.label.setAccessibleName("Rendered page")
        self.scroller = QScrollArea(widgetResizable=True)
        self.scroller.setWidget(self.label)
        self.page_box = QSpinBox(minimum=1, maximum=1)
        self.page_box.setAccessibleName("Page number")
        self.page_box.valueChanged.connect(self.show_page)
        self.count_label = QLabel("of 0")
        self.search = QLineEdit(placeholderText="Search the document (Enter: next hit)")
        self.search.setAccessibleName("Search the document")
        self.search.returnPressed.connect(self.find_next)
        self.status = QLabel()
        bar = QHBoxLayout()
        for text, slot, tip in (
            ("◀", lambda: self.show_page(self.page - 1), "Previous page"),
            ("▶", lambda: self.show_page(self.page + 1), "Next page"),
            ("−", lambda: self.set_zoom(self.zoom / 1.2), "Zoom out"),
            ("+", lambda: self.set_zoom(self.zoom * 1.2), "Zoom in"),
        ):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.setAccessibleName(tip)
            button.clicked.connect(slot)
            bar.addWidget(button)
        bar.insertWidget(2, self.page_box)
        bar.insertWidget(3, self.count_label)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.status)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.scroller, 1)
        QShortcut(QKeySequence.StandardKey.ZoomIn, self, lambda: self.set_zoom(self.zoom * 1.2))
        QShortcut(QKeySequence.StandardKey.ZoomOut, self, lambda: self.set_zoom(self.zoom / 1.2))
        self._hit_page = 0
        self._fit_pending = False

    def open(self, path: str, passwords: Sequence[str] = ()) -> None:
        """Show ``path``; a protected file with the first of ``passwords`` that opens it
        (a collection's members may each have their own)."""
        self.close_document()
        self.pdf = pymupdf.open(path)
        if isinstance(passwords, str):
            passwords = [passwords]
        # authenticate() is 0 for a wrong password; without the right one MuPDF would
        # render the still-encrypted pages as garbage: show nothing instead.
        if self.pdf.needs_pass and not any(self.pdf.authenticate(p) for p in passwords):
            self.close_document()
            self.page_box.setMaximum(1)
            self.count_label.setText("of 0")
            self.status.setText("locked: its password is needed")
            return
        self.status.clear()
        self.page_box.setMaximum(max(1, self.pdf.page_count))
        self.count_label.setText(f"of {self.pdf.page_count}")
        # Start at fit-to-width: the whole line is readable without scrolling sideways.
        self._fit_pending = True
        self._fit_to_width()
        self.page = 0
        self.show_page(1)

    def _fit_to_width(self) -> None:
        """The zoom at which page 1 fills the view's width. A hidden view (the Pages tab
        behind the Text tab, as for a collection's member) has a stale width: it is
        fitted when shown."""
        if self.pdf is None or not self.isVisible():
            return
        self._fit_pending = False
        width = self.pdf[0].rect.width or 595
        self.zoom = max(0.3, min(2.0, (self.scroller.viewport().width() - 24) / width))

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        # A pixmap set while hidden posts no layout request (Qt skips hidden parents), so
        # the scroll area would keep the old label size: cropped, no scroll range.
        if self._fit_pending:
            self._fit_to_width()
            self._render()
        self.label.updateGeometry()

    def close_document(self) -> None:
        if self.pdf is not None:
            self.pdf.close()
        self.pdf = None
        self.highlights = {}
        self.label.clear()

    def set_zoom(self, zoom: float) -> None:
        self.zoom = min(5.0, max(0.3, zoom))
        self._render()

    def show_page(self, page: int) -> None:
        if self.pdf is None:
            return
        page = min(max(1, page), self.pdf.page_count)
        if page != self.page:
            self.page = page
            self.page_box.blockSignals(True)
            self.page_box.setValue(page)
            self.page_box.blockSignals(False)
            self._render()
            self.page_changed.emit(page)

    def highlight(self, rects: list[tuple[int, Rect]], go_to: bool = True) -> None:
        self.highlights = {}
        for page, rect in rects:
            self.highlights.setdefault(page, []).append(rect)
        if go_to and rects:
            self.page = 0
            self.show_page(rects[0][0])
        else:
            self._render()

    def _render(self) -> None:
        if self.pdf is None or self.page < 1:
            return
        scale = self.zoom * self.devicePixelRatioF()
        pix = self.pdf[self.page - 1].get_pixmap(matrix=pymupdf.Matrix(scale, scale), alpha=False)
        image = QImage(pix.samples, pix.width, pix.height, pix.stride, QImage.Format.Format_RGB888)
        pixmap = QPixmap.fromImage(image.copy())
        rects = self.highlights.get(self.page, [])
        if rects:
            painter = QPainter(pixmap)
            for x0, y0, x1, y1 in rects:
                painter.fillRect(
                    int(x0 * scale),
                    int(y0 * scale),
                    int((x1 - x0) * scale),
                    int((y1 - y0) * scale),
                    HIGHLIGHT,
                )
            painter.end()
        pixmap.setDevicePixelRatio(self.devicePixelRatioF())
        self.label.setPixmap(pixmap)

    def find_next(self) -> None:
        needle = self.search.text().strip()
        if self.pdf is None or not needle:
            return
        count = self.pdf.page_count
        for offset in range(count):
            number = (self.page - 1 + offset + (1 if self._hit_page == self.page else 0)) % count
            hits = self.pdf[number].search_for(needle)
            if hits:
                self._hit_page = number + 1
                self.highlight([(number + 1, tuple(r)) for r in hits])
                self.status.setText(f"{len(hits)} on page {number + 1}")
                return
        self.status.setText("not found")


class DocumentViewer(QTabWidget):
    """Page view for PDFs, text view for every document."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document: Document | None = None
        self.marked: MarkedText | None = None
        self.passwords: list[str] = []  # the shown document's (in memory only)
        self.pages = PageView()
        self.text = QPlainTextEdit(readOnly=True)
        self.text.setAccessibleName("Document text")
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.addTab(self.pages, "Pages")
        self.addTab(self.text, "Text")
        self.empty = QLabel(
            "Open a PDF, Word, web page, e-book or text file (File > Open, or drop it here).",
            alignment=Qt.AlignmentFlag.AlignCenter,
        )

    def show_document(self, document: Document, passwords: Sequence[str] = ()) -> None:
        self.document = document
        # The same "--- page N ---" markers as the ``text`` command: what the model gets,
        # and where each page starts (Word and HTML have no page view to show that).
        self.marked = mark_pages(document)
        self.text.setPlainText(self.marked.text)
        self.passwords = [passwords] if isinstance(passwords, str) else list(passwords)
        self.shown_member: int | None = None  # the collection member in the page view
        if document.members:  # a collection: the page view shows one member at a time
            paged = [m for m in document.members if m.kind not in REFLOWED_KINDS]
            self.setTabEnabled(0, bool(paged))
            self.pages.close_document()
            if paged:
                self._show_member(paged[0].index)
            self.setCurrentIndex(1)
            return
        is_pdf = document.kind not in REFLOWED_KINDS
        self.setTabEnabled(0, is_pdf)
        if is_pdf:
            self.pages.open(document.path, self.passwords)
            self.setCurrentIndex(0)
        else:
            self.pages.close_document()
            self.setCurrentIndex(1)

    def _show_member(self, index: int) -> None:
        """Open collection member ``index`` (a paged file) in the page view."""
        assert self.document is not None
        if self.shown_member != index:
            member = self.document.members[index]
            self.pages.open(member.path, self.passwords if member.protected else ())
            self.shown_member = index

    def mark_span(self, start: int, end: int) -> None:
        """Show where a chunk or a cited passage is: highlighted in both views."""
        if self.document is None or self.marked is None:
            return
        shown = len(self.marked.text)
        original_start, original_end = start, end
        # Mapped by the last character, so a span ending where a page starts does not
        # take in the next page's marker line.
        start = self.marked.display_offset(start)
        end = self.marked.display_offset(end - 1) + 1 if end > original_start else start
        selection = QTextEdit.ExtraSelection()
        fmt = QTextCharFormat()
        fmt.setBackground(HIGHLIGHT)
        selection.format = fmt
        cursor = QTextCursor(self.text.document())
        cursor.setPosition(min(start, shown))
        cursor.setPosition(min(end, shown), QTextCursor.MoveMode.KeepAnchor)
        selection.cursor = cursor
        self.text.setExtraSelections([selection])
        view = QTextCursor(self.text.document())
        view.setPosition(min(start, shown))
        self.text.setTextCursor(view)
        self.text.centerCursor()
        if self.document.members:
            self._mark_member(original_start, original_end)
        elif self.document.kind not in REFLOWED_KINDS:
            self.pages.highlight(self.document.rects_for(original_start, original_end))

    def _mark_member(self, start: int, end: int) -> None:
        """Show the collection member holding ``start``: a paged file at its own page (the
        collection numbers pages through), a text or Word member in the Text tab."""
        assert self.document is not None
        member = self.document.member_at(start)
        if member is None:
            return
        if member.kind in REFLOWED_KINDS:
            # The page view would keep another member's page and its old highlight.
            self.pages.highlight([], go_to=False)
            self.setCurrentIndex(1)
            return
        self._show_member(member.index)
        rects = self.document.rects_for(start, end)
        local = [(member.local_page(page), rect) for page, rect in rects]
        self.pages.highlight([(p, r) for p, r in local if 1 <= p <= member.page_count])
        self.setCurrentIndex(0)
