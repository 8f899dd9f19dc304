"""The reading map: the whole document as a vertical strip of pages, each memory step a
band over the pages it read, shaded by how much the memory changed.

One widget paints everything with QPainter (no widget per page or step), so a
2,000-page document with 140 steps costs a few hundred rectangles a frame. The step
being read pulses while it streams; hovering a band tells its pages, tokens and time;
clicking selects it."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from app.agent.events import Chunk
from app.units import human_duration

BAND = QColor("#2f8f5b")  # a step that changed the memory a lot: full colour
CURRENT = QColor("#e0a526")
STOPPED = QColor("#c0392b")
PULSE_MS = 60


@dataclass(frozen=True)
class Band:
    index: int  # the step's chunk index
    page_first: int
    page_last: int
    change: float  # 0..1: how much the memory changed in this step
    tooltip: str


class ReadingMap(QWidget):
    step_clicked = Signal(int)  # chunk index of the band clicked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Reading map")
        self.setMouseTracking(True)
        self.setMinimumWidth(56)
        self.setMaximumWidth(72)
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.page_count = 0
        self.bands: list[Band] = []
        self._starts: list[int] = []  # page_first of each band, for hit tests
        self.current: Chunk | None = None
        self.stopped: Chunk | None = None  # a step cancelled mid-way: read but not kept
        self.selected = -1
        self.single_pass = False
        self.phase = 0.0
        self._pulse = QTimer(self)
        self._pulse.setInterval(PULSE_MS)
        self._pulse.timeout.connect(self._tick)
        self.paint_count = 0
        # A collection's documents: (first page, title), drawn as boundaries on the strip.
        self.members: list[tuple[int, str]] = []

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(60, 400)

    # -- data -------------------------------------------------------------------------
    def reset(self, page_count: int, single_pass: bool = False) -> None:
        self.page_count = max(0, page_count)
        self.bands, self._starts = [], []
        self.current = self.stopped = None
        self.selected = -1
        self.single_pass = single_pass
        self._pulse.stop()
        self.update()

    def add_band(self, band: Band) -> None:
        self.bands.append(band)
        self._starts.append(band.page_first)
        if self.current is not None and self.current.index == band.index:
            self.mark_current(None)
        self.update()

    def mark_current(self, chunk: Chunk | None) -> None:
        self.current = chunk
        if chunk is None:
            self._pulse.stop()
        else:
            self.stopped = None
            self._pulse.start()
        self.update()

    def mark_stopped(self, chunk: Chunk | None) -> None:
        self.stopped = chunk
        self.mark_current(None)

    def select(self, index: int) -> None:
        self.selected = index
        self.update()

    def set_members(self, members: list[tuple[int, str]]) -> None:
        self.members = list(members)
        self.update()

    def pages_read_set(self) -> set[int]:
        if self.single_pass:
            return set(range(1, self.page_count + 1))
        pages: set[int] = set()
        for band in self.bands:
            pages.update(range(band.page_first, band.page_last + 1))
        return pages

    def pages_read(self) -> int:
        return len(self.pages_read_set())

    def member_at_page(self, page: int) -> tuple[int, str] | None:
        """(number, title) of the collection document that holds ``page``."""
        found = None
        for number, (first, title) in enumerate(self.members, start=1):
            if first <= page:
                found = (number, title)
        return found

    # -- geometry -----------------------------------------------------------------------
    def _strip(self) -> QRectF:
        return QRectF(4, 4, self.width() - 8, max(1, self.height() - 8))

    def _page_y(self, page: float) -> float:
        """Top of ``page`` (1-based; page_count + 1 is the bottom)."""
        strip = self._strip()
        return strip.top() + (page - 1) / max(1, self.page_count) * strip.height()

    def page_at(self, y: float) -> int:
        strip = self._strip()
        share = (y - strip.top()) / strip.height()
        return min(self.page_count, max(1, int(share * self.page_count) + 1))

    def band_at(self, y: float) -> Band | None:
        if not self.bands or not self.page_count:
            return None
        page = self.page_at(y)
        at = bisect.bisect_right(self._starts, page) - 1
        # Bands can share a page (a page split between two chunks): the one whose middle
        # is nearest wins, so each band is clickable at its centre.
        near = [
            self.bands[i]
            for i in range(max(0, at - 2), min(len(self.bands), at + 2))
            if self.bands[i].page_first <= page <= self.bands[i].page_last
        ]
        return min(near, key=lambda b: abs(self.band_rect(b).center().y() - y), default=None)

    def band_rect(self, band: Band | Chunk) -> QRectF:
        strip = self._strip()
        top = self._page_y(band.page_first)
        bottom = self._page_y(band.page_last + 1)
        return QRectF(strip.left(), top, strip.width(), max(2.0, bottom - top))

    # -- painting -----------------------------------------------------------------------
    def _tick(self) -> None:
        self.phase = (self.phase + PULSE_MS / 1200) % 1.0
        if self.current is not None:
            self.update(self.band_rect(self.current).adjusted(-2, -2, 2, 2).toAlignedRect())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        self.paint_count += 1
        if not self.page_count:
            return
        painter = QPainter(self)
        palette = self.palette()
        strip = self._strip()
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        dark = base.lightness() < 128
        painter.fillRect(strip, base)
        # Page boundaries only when a page is tall enough to show one.
        per_page = strip.height() / self.page_count
        if per_page >= 4:
            rule = QColor(text)
            rule.setAlpha(40)
            painter.setPen(QPen(rule, 1))
            first = max(1, self.page_at(event.rect().top()))
            last = min(self.page_count, self.page_at(event.rect().bottom()) + 1)
            for page in range(first, last + 1):
                y = round(self._page_y(page)) + 0.5
                painter.drawLine(QPointF(strip.left(), y), QPointF(strip.right(), y))
        if self.single_pass:
            color = QColor(BAND)
            color.setAlpha(140)
            painter.fillRect(strip, color)
        visible = QRectF(event.rect())
        for band in self.bands:
            rect = self.band_rect(band)
            if not rect.intersects(visible):
                continue
            color = QColor(BAND)
            # Little change: pale; a rewrite: full colour.
            color.setAlpha(int(55 + 200 * band.change))
            painter.fillRect(rect.adjusted(0, 0, 0, -0.5 if rect.height() > 3 else 0), color)
            if band.index == self.selected:
                painter.setPen(QPen(palette.color(QPalette.ColorRole.Highlight), 2))
                painter.drawRect(rect.adjusted(1, 1, -1, -1))
        if self.stopped is not None:
            rect = self.band_rect(self.stopped)
            painter.fillRect(rect, QBrush(STOPPED, Qt.BrushStyle.BDiagPattern))
        if self.current is not None:
            rect = self.band_rect(self.current)
            glow = QColor(CURRENT)
            glow.setAlpha(int(110 + 120 * (0.5 + 0.5 * math.sin(self.phase * 2 * math.pi))))
            painter.fillRect(rect, glow)
        # Step numbers where a band is tall enough for one.
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        painter.setPen(QColor("#ffffff") if dark else QColor("#10301f"))
        metrics_h = painter.fontMetrics().height()
        for band in self.bands:
            rect = self.band_rect(band)
            if rect.height() >= metrics_h + 2 and rect.intersects(visible):
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(band.index + 1))
        # A collection: a strong rule where each document starts (the first needs none).
        if self.members:
            edge = QColor(text)
            edge.setAlpha(200)
            painter.setPen(QPen(edge, 2))
            for first, _title in self.members[1:]:
                y = self._page_y(first)
                painter.drawLine(QPointF(strip.left() - 3, y), QPointF(strip.right() + 3, y))
        frame = QColor(text)
        frame.setAlpha(90)
        painter.setPen(QPen(frame, 1))
        painter.drawRect(strip.adjusted(-0.5, -0.5, 0.5, 0.5))
        painter.end()

    # -- mouse --------------------------------------------------------------------------
    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if not self.page_count:
            return
        y = event.position().y()
        band = self.band_at(y)
        page = self.page_at(y)
        if band is not None:
            tip = band.tooltip
        elif self.current is not None and self.current.page_first <= page <= self.current.page_last:
            c = self.current
            tip = f"Step {c.index + 1}: reading pages {c.page_first}–{c.page_last} now"
        elif self.single_pass:
            tip = f"Single pass: all {self.page_count} pages read in one prompt"
        else:
            tip = f"Page {page}: not read yet"
        member = self.member_at_page(page)
        if member is not None:
            tip = f"Document {member[0]} of {len(self.members)}: {member[1]}\n{tip}"
        QToolTip.showText(event.globalPosition().toPoint(), tip, self)
        self.setCursor(
            Qt.CursorShape.PointingHandCursor if band is not None else Qt.CursorShape.ArrowCursor
        )

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() != Qt.MouseButton.LeftButton:
            return
        band = self.band_at(event.position().y())
        if band is not None:
            self.select(band.index)
            self.step_clicked.emit(band.index)


def band_tooltip(
    index: int,
    total: int,
    page_first: int,
    page_last: int,
    prompt_tokens: int,
    completion_tokens: int,
    wall_ms: float,
    added: int,
    removed: int,
) -> str:
    pages = f"page {page_first}" if page_first == page_last else f"pages {page_first}–{page_last}"
    return (
        f"Step {index + 1} of {total}: {pages}\n"
        f"{prompt_tokens:,} tokens read, {completion_tokens:,} written, "
        f"{human_duration(wall_ms / 1000)}\n"
        f"memory: +{added} / −{removed} lines"
    )
