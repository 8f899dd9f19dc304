"""The reading map: the whole document as a vertical strip of pages, each memory step a
band over the pages it read, shaded by how much the memory changed.

One widget paints everything with QPainter (no widget per page or step), so a
2,000-page document with 140 steps costs a few hundred rectangles a frame. The step
being read pulses while it streams; hovering a band tells its pages, tokens and time;
clicking selects it."""

from __future__ import annotations

import bisect
import math
from collections import Counter
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
        # Where each step sits on the strip, in pages: computed when the steps change.
        self._spans: dict[int, tuple[float, float]] | None = None
        self._tops: list[tuple[float, int]] = []  # (top, band position) for hit tests
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
        self.bands = []
        self._spans = None
        self.current = self.stopped = None
        self.selected = -1
        self.single_pass = single_pass
        self._pulse.stop()
        self.update()

    def add_band(self, band: Band) -> None:
        self.bands.append(band)
        self._spans = None
        if self.current is not None and self.current.index == band.index:
            self.mark_current(None)
        self.update()

    def mark_current(self, chunk: Chunk | None) -> None:
        self.current = chunk
        self._spans = None
        if chunk is None:
            self._pulse.stop()
        else:
            self.stopped = None
            self._pulse.start()
        self.update()

    def mark_stopped(self, chunk: Chunk | None) -> None:
        self.stopped = chunk
        self._spans = None
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

    def _page_position(self, y: float) -> float:
        """The inverse of _page_y: where ``y`` is, in pages (1.0 is the strip's top)."""
        strip = self._strip()
        return 1 + (y - strip.top()) / strip.height() * max(1, self.page_count)

    def page_at(self, y: float) -> int:
        return min(self.page_count, max(1, int(self._page_position(y))))

    def _layout(self) -> dict[int, tuple[float, float]]:
        """Each step's (top, bottom) in pages. Chunks that share a page split its height
        in reading order: with 33 chunks over 12 pages, a page read by three steps shows
        three bands a third of a page tall, not one rectangle painted three times."""
        if self._spans is not None:
            return self._spans
        steps: dict[int, Band | Chunk] = {band.index: band for band in self.bands}
        for chunk in (self.stopped, self.current):
            if chunk is not None:
                steps.setdefault(chunk.index, chunk)
        ordered = [steps[i] for i in sorted(steps)]
        sharing = Counter(p for s in ordered for p in range(s.page_first, s.page_last + 1))
        before: Counter[int] = Counter()  # steps already placed on each page
        spans: dict[int, tuple[float, float]] = {}
        for step in ordered:
            first, last = step.page_first, step.page_last
            top = first + before[first] / sharing[first]
            bottom = last + (before[last] + 1) / sharing[last]
            spans[step.index] = (top, bottom)
            before.update(range(first, last + 1))
        self._spans = spans
        self._tops = sorted((spans[b.index][0], i) for i, b in enumerate(self.bands))
        return spans

    def band_at(self, y: float) -> Band | None:
        if not self.bands or not self.page_count:
            return None
        self._layout()
        at = bisect.bisect_right(self._tops, (self._page_position(y), len(self.bands))) - 1
        # The band whose rectangle holds y; a band drawn taller than its share (2 px at
        # least) can overlap a neighbour: the one whose middle is nearest wins.
        near = [self.bands[i] for _, i in self._tops[max(0, at - 1) : at + 2]]
        near = [b for b in near if self._holds(b, y)]
        return min(near, key=lambda b: abs(self.band_rect(b).center().y() - y), default=None)

    def _holds(self, band: Band, y: float) -> bool:
        rect = self.band_rect(band)
        return rect.top() - 0.5 <= y <= rect.bottom() + 0.5

    def band_rect(self, band: Band | Chunk) -> QRectF:
        strip = self._strip()
        top_page, bottom_page = self._layout().get(
            band.index, (band.page_first, band.page_last + 1)
        )
        top, bottom = self._page_y(top_page), self._page_y(bottom_page)
        return QRectF(strip.left(), top, strip.width(), max(2.0, bottom - top))

    def label_rects(self, text_height: float) -> list[tuple[QRectF, str]]:
        """Where step numbers are drawn: in bands tall enough for one, and never over
        the previous label (a step number on top of another read as "2/1")."""
        labels: list[tuple[QRectF, str]] = []
        last_bottom = -math.inf
        for band in sorted(self.bands, key=lambda b: self.band_rect(b).top()):
            rect = self.band_rect(band)
            if rect.height() < text_height + 2:
                continue
            box = QRectF(
                rect.left(), rect.center().y() - text_height / 2, rect.width(), text_height
            )
            if box.top() < last_bottom:
                continue
            labels.append((box, str(band.index + 1)))
            last_bottom = box.bottom()
        return labels

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
        for box, label in self.label_rects(painter.fontMetrics().height()):
            if box.intersects(visible):
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
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
