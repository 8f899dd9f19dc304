"""The step being read, live: its header (which step, which pages, what the model is
writing, the time left) and its memory and plan as they stream in, redrawn at most every
LIVE_MS while tokens arrive."""

from __future__ import annotations

import html
import time

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from app.agent.events import Chunk
from app.gui.memory_text import PHASES, Partial, page_words, parse_partial
from app.gui.memory_view import live_html
from app.units import human_duration

LIVE_MS = 50  # the live view is redrawn at most this often while tokens stream


class LiveStep(QWidget):
    updated = Signal()  # redrawn (tests wait on it)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = QLabel()  # outside the scrolled text: always in sight
        self.header.setAccessibleName("The step being read")
        self.header.setWordWrap(True)
        self.text = QTextBrowser()
        self.text.setAccessibleName("Live output of the current step")
        self.text.setMaximumHeight(170)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(self.text)
        # The step being read: its chunk and what the model has written so far.
        self.chunk: Chunk | None = None
        self.total = 0
        self._text = ""
        self._thinking = ""
        self._drawn = 0.0
        self._timer = QTimer(self, singleShot=True, interval=LIVE_MS)
        self._timer.timeout.connect(self._draw)
        self._eta: tuple[float, float] | None = None  # (seconds left, when it was said)

    def reset(self) -> None:
        """A new run: no step read yet, no time left known."""
        self.chunk, self._eta = None, None

    def begin(self, chunk: Chunk, total: int) -> None:
        self.chunk, self.total = chunk, total
        self._text = self._thinking = ""
        self._draw()

    def token(self, text: str, thinking: bool = False) -> None:
        if thinking:
            self._thinking += text
        else:
            self._text += text
        if time.monotonic() - self._drawn >= LIVE_MS / 1000:
            self._draw()
        elif not self._timer.isActive():
            self._timer.start()

    def step_done(self, chunk_index: int) -> None:
        if self.chunk is not None and self.chunk.index == chunk_index:
            self.chunk = None

    def set_eta(self, seconds_left: float) -> None:
        self._eta = (seconds_left, time.monotonic())

    def stop(self) -> None:
        """No more redraws (the run ended); what is drawn stays."""
        self._timer.stop()

    def partial(self) -> Partial:
        return parse_partial(self._text, self._thinking)

    def _eta_text(self) -> str:
        if self._eta is None:
            return "time left: after the first step"
        left, said = self._eta
        return f"about {human_duration(max(0.0, left - (time.monotonic() - said)))} left"

    def _draw(self) -> None:
        self._drawn = time.monotonic()
        chunk = self.chunk
        if chunk is None:
            return
        partial = self.partial()
        phase = PHASES[partial.phase] if (self._text or self._thinking) else ("reading the pages")
        header = (
            f"Step {chunk.index + 1} of {self.total} · "
            f"{page_words(chunk.page_first, chunk.page_last)} · {phase}… · {self._eta_text()}"
        )
        self.header.setText(f"<b>{html.escape(header)}</b>")
        bar = self.text.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        content = self._text.rpartition("</think>")[2]
        self.text.setHtml(live_html("", partial, len(partial.thinking.split()), content))
        if at_end:
            bar.setValue(bar.maximum())
        self.updated.emit()
