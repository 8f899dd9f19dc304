"""The memory's growth and churn over the steps, as one small painted chart: a line for
the memory's size (about how many tokens), and per step a green bar up for lines added
and a red bar down for lines removed. Hover tells a step's numbers; click selects it."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

ADDED, REMOVED, SIZE = QColor("#3b9c5a"), QColor("#c0392b"), QColor("#3d7bd9")


@dataclass(frozen=True)
class Point:
    index: int  # chunk index
    tokens: int  # about how many tokens the memory holds after the step
    added: int
    removed: int


class MemoryChart(QWidget):
    step_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Memory growth and churn")
        self.setMouseTracking(True)
        self.setMinimumHeight(64)
        self.setMaximumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.points: list[Point] = []
        self.total = 0
        self.selected = -1

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(300, 76)

    def reset(self, total: int) -> None:
        self.points, self.total, self.selected = [], total, -1
        self.update()

    def add(self, point: Point) -> None:
        self.points.append(point)
        self.update()

    def select(self, index: int) -> None:
        self.selected = index
        self.update()

    def _plot(self) -> QRectF:
        return QRectF(4, 14, self.width() - 8, self.height() - 18)

    def _slot(self) -> float:
        return self._plot().width() / max(1, self.total, len(self.points))

    def point_at(self, x: float) -> Point | None:
        i = int((x - self._plot().left()) / self._slot())
        return self.points[i] if 0 <= i < len(self.points) else None

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        plot = self._plot()
        muted = QColor(text)
        muted.setAlpha(150)
        painter.setPen(muted)
        if not self.points:
            painter.drawText(
                self.rect(), Qt.AlignmentFlag.AlignCenter, "Memory size and changes per step"
            )
            painter.end()
            return
        peak_tokens = max(p.tokens for p in self.points) or 1
        peak_churn = max(max(p.added, p.removed) for p in self.points) or 1
        mid = plot.top() + plot.height() * 0.62  # churn bars: added above, removed below
        slot = self._slot()
        bar = max(1.0, slot * 0.6)
        up, down = mid - plot.top(), plot.bottom() - mid
        for i, p in enumerate(self.points):
            x = plot.left() + i * slot + (slot - bar) / 2
            if p.added:
                h = up * 0.9 * p.added / peak_churn
                painter.fillRect(QRectF(x, mid - h, bar, h), ADDED)
            if p.removed:
                h = down * 0.9 * p.removed / peak_churn
                painter.fillRect(QRectF(x, mid, bar, h), REMOVED)
            if p.index == self.selected:
                sel = QColor(palette.color(QPalette.ColorRole.Highlight))
                sel.setAlpha(70)
                painter.fillRect(
                    QRectF(plot.left() + i * slot, plot.top(), slot, plot.height()), sel
                )
        axis = QColor(text)
        axis.setAlpha(60)
        painter.setPen(QPen(axis, 1))
        painter.drawLine(QPointF(plot.left(), mid), QPointF(plot.right(), mid))
        line = QPolygonF(
            [
                QPointF(
                    plot.left() + (i + 0.5) * slot,
                    plot.bottom() - plot.height() * 0.95 * p.tokens / peak_tokens,
                )
                for i, p in enumerate(self.points)
            ]
        )
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(SIZE, 2))
        painter.drawPolyline(line)
        painter.setPen(muted)
        last = self.points[-1]
        painter.drawText(
            QRectF(4, 0, self.width() - 8, 14),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            self.legend(last.tokens),
        )
        painter.end()

    def legend(self, tokens: int) -> str:
        """The caption, as long as the chart's width allows: a narrow window clipped the
        whole one to "+added / −rem", so shorter wordings are tried before cutting."""
        metrics = self.fontMetrics()
        room = self.width() - 8
        size = f"≈{tokens:,} tokens"
        wordings = (
            f"memory {size} · +added / −removed lines",
            f"memory {size} · +added / −removed",
            f"{size} · +added / −removed",
            f"{size} · +add / −rem",
        )
        for wording in wordings:
            if metrics.horizontalAdvance(wording) <= room:
                return wording
        return metrics.elidedText(wordings[-1], Qt.TextElideMode.ElideRight, room)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        p = self.point_at(event.position().x())
        if p is not None:
            QToolTip.showText(
                event.globalPosition().toPoint(),
                f"Step {p.index + 1}: memory about {p.tokens:,} tokens, "
                f"+{p.added} / −{p.removed} lines",
                self,
            )

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        p = self.point_at(event.position().x())
        if p is not None and event.button() == Qt.MouseButton.LeftButton:
            self.step_clicked.emit(p.index)
