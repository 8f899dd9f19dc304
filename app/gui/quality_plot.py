"""The quality plot, drawn with Qt (QImage + QPainter, offscreen): no matplotlib.

Left (or the whole image): exact match per method as bars, contains-match as a lighter
bar beside each, values printed on the bars. Right, when two or more result files
exist: exact match per method over time, one line per method.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.records import Mode

COLOURS = {
    Mode.MEMORY_AGENT: "#1f77b4",
    Mode.SINGLE_PASS: "#ff7f0e",
    "retrieval": "#2ca02c",  # a baseline of the quality harness, not a run mode
}
FALLBACK = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f")

_app = None  # the QApplication this module had to create, kept alive


@dataclass(frozen=True)
class Bar:
    method: str
    em: float | None  # None: the method was skipped (e.g. the document did not fit)
    contains: float | None
    note: str = ""


@dataclass(frozen=True)
class HistoryPoint:
    label: str  # e.g. "11-23 14:05"
    em: dict[str, float]  # method -> EM of that run


def _ensure_gui() -> None:
    """Fonts need a Qt application; create an offscreen one if the process has none (a
    QApplication, so widgets created later in the same process still work)."""
    global _app
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _app = QApplication([])


def colour(method: str, index: int) -> str:
    return COLOURS.get(method, FALLBACK[index % len(FALLBACK)])


def draw(
    path: Path,
    bars: Sequence[Bar],
    history: Sequence[HistoryPoint] = (),
    title: str = "Answer quality",
    subtitle: str = "",
    size: tuple[int, int] = (1000, 480),
) -> Path:
    _ensure_gui()
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen

    width, height = size
    image = QImage(width, height, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    base = QFont()
    base.setPixelSize(13)
    p.setFont(base)

    def text(
        rect: QRectF, s: str, flags: Qt.AlignmentFlag, px: int = 13, bold: bool = False
    ) -> None:
        font = QFont(base)
        font.setPixelSize(px)
        font.setBold(bold)
        p.setFont(font)
        p.drawText(rect, int(flags), s)
        p.setFont(base)

    centre = Qt.AlignmentFlag.AlignCenter
    text(QRectF(0, 8, width, 26), title, centre, 18, True)
    if subtitle:
        p.setPen(QColor("#555555"))
        text(QRectF(0, 34, width, 20), subtitle, centre, 12)
        p.setPen(QColor("black"))

    show_history = len(history) >= 2
    top, bottom = 80.0, height - 70.0
    left_area = QRectF(0, top, width / 2 if show_history else width, bottom - top)

    def axes(area: QRectF, ylabel: str, xlabel: str) -> QRectF:
        """Draw y gridlines 0..1 and labels; return the plotting rectangle."""
        plot = QRectF(area.left() + 70, area.top(), area.width() - 100, area.height())
        for k in range(6):
            value = k / 5
            y = plot.bottom() - value * plot.height()
            p.setPen(QPen(QColor("#dddddd"), 1))
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(QColor("black"))
            text(
                QRectF(plot.left() - 48, y - 9, 42, 18), f"{value:.1f}", Qt.AlignmentFlag.AlignRight
            )
        p.setPen(QPen(QColor("black"), 1.5))
        p.drawLine(plot.bottomLeft(), plot.bottomRight())
        p.drawLine(plot.bottomLeft(), plot.topLeft())
        p.save()
        p.translate(area.left() + 16, plot.center().y())
        p.rotate(-90)
        text(QRectF(-plot.height() / 2, -10, plot.height(), 20), ylabel, centre)
        p.restore()
        text(QRectF(plot.left(), height - 30, plot.width(), 20), xlabel, centre)
        return plot

    # Bars: EM (solid) and contains-match (light) per method.
    plot = axes(left_area, "score (fraction of questions)", "method")
    slot = plot.width() / max(1, len(bars))
    bar_w = min(70.0, slot / 3)
    for i, bar in enumerate(bars):
        x = plot.left() + slot * i + slot / 2
        c = QColor(colour(bar.method, i))
        name = bar.method.replace("_", " ")
        text(QRectF(x - slot / 2, plot.bottom() + 22, slot, 18), name, centre, 13, True)
        if bar.em is None:
            p.setPen(QColor("#777777"))
            text(QRectF(x - slot / 2, plot.bottom() - 60, slot, 40), bar.note or "skipped", centre)
            p.setPen(QColor("black"))
            continue
        light = QColor(c)
        light.setAlpha(90)
        for value, fill, dx, label in (
            (bar.em, c, -bar_w, "EM"),
            (bar.contains or 0.0, light, 0.0, "contains"),
        ):
            h = max(1.0, value * plot.height())
            rect = QRectF(x + dx, plot.bottom() - h, bar_w - 4, h)
            p.fillRect(rect, fill)
            text(
                QRectF(rect.left() - 10, rect.top() - 20, rect.width() + 20, 18),
                f"{value:.2f}",
                centre,
            )
            font_px = 11 if bar_w < 50 else 12
            text(
                QRectF(rect.left() - 10, plot.bottom() + 4, rect.width() + 20, 16),
                label,
                centre,
                font_px,
            )

    # EM over time.
    if show_history:
        area = QRectF(width / 2, top, width / 2, bottom - top)
        plot = axes(area, "exact match", "run")
        methods: list[str] = []
        for point in history:
            methods += [m for m in point.em if m not in methods]
        n = len(history)
        step = plot.width() / max(1, n - 1)

        def at(k: int, value: float) -> QPointF:
            return QPointF(plot.left() + step * k, plot.bottom() - value * plot.height())

        for i, method in enumerate(methods):
            # Earlier methods drawn wider, so lines that coincide still show every colour.
            wide = 2.0 * (len(methods) - 1 - i)
            pen = QPen(QColor(colour(method, i)), 2.5 + wide)
            previous = None
            for k, point in enumerate(history):
                if method not in point.em:
                    previous = None
                    continue
                here = at(k, point.em[method])
                p.setPen(pen)
                if previous is not None:
                    p.drawLine(previous, here)
                p.setBrush(QColor(colour(method, i)))
                p.drawEllipse(here, 4 + wide / 2, 4 + wide / 2)
                previous = here
            # legend
            p.fillRect(
                QRectF(plot.right() - 120, plot.top() + 4 + 18 * i, 12, 12),
                QColor(colour(method, i)),
            )
            p.setPen(QColor("black"))
            text(
                QRectF(plot.right() - 104, plot.top() + 1 + 18 * i, 110, 18),
                method.replace("_", " "),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                12,
            )
        every = max(1, n // 6)
        for k, point in enumerate(history):
            if k % every == 0 or k == n - 1:
                x = min(plot.left() + step * k, width - 47)
                text(QRectF(x - 45, plot.bottom() + 6, 90, 18), point.label, centre, 11)
    p.end()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path)):
        raise OSError(f"could not write {path}")
    return path
