"""The side panel: one entry per chunk in reading order, with the memory and plan after
it, what changed, tokens and time; live progress with ETA and cancel; a coverage strip."""

from __future__ import annotations

import html

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.agent.events import Chunk, StepRecord
from app.units import human_duration

READ, CURRENT, UNREAD = QColor("#3b9c5a"), QColor("#e0a526"), QColor("#8a8f98")


class CoverageStrip(QWidget):
    """Pages of the document as cells: read, being read, not yet read. A cell's height
    grows with how much the memory changed in the step that read it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(22)
        self.setAccessibleName("Reading coverage")
        self.page_count = 0
        self.read: dict[int, float] = {}  # page -> change weight 0..1
        self.current: tuple[int, int] | None = None

    def reset(self, page_count: int) -> None:
        self.page_count, self.read, self.current = page_count, {}, None
        self.update()

    def mark_current(self, chunk: Chunk | None) -> None:
        self.current = (chunk.page_first, chunk.page_last) if chunk else None
        self.update()

    def mark_read(self, chunk: Chunk, change: float) -> None:
        for page in range(chunk.page_first, chunk.page_last + 1):
            self.read[page] = max(self.read.get(page, 0.0), change)
        self.update()

    def pages_read(self) -> int:
        return len(self.read)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        if not self.page_count:
            return
        painter = QPainter(self)
        width = self.width() / self.page_count
        height = self.height()
        for page in range(1, self.page_count + 1):
            x = (page - 1) * width
            if page in self.read:
                color, h = READ, height * (0.45 + 0.55 * self.read[page])
            elif self.current and self.current[0] <= page <= self.current[1]:
                color, h = CURRENT, height
            else:
                color, h = UNREAD, height * 0.3
            painter.fillRect(QRectF(x, height - h, max(1.0, width - 1), h), color)
        painter.end()


def step_summary(step: StepRecord, total: int) -> str:
    c = step.chunk
    flags = " ⚠" if step.malformed or step.stop_reason in ("loop", "length") else ""
    first_line = (step.memory.strip().splitlines() or [""])[0][:80]
    return (
        f"Step {c.index + 1}/{total} · pages {c.page_first}–{c.page_last} · "
        f"{step.prompt_tokens:,}+{step.completion_tokens:,} tok · {step.wall_ms / 1000:.1f} s"
        f"{flags}\n{first_line}"
    )


def step_details_html(step: StepRecord, diff: str) -> str:
    def block(title: str, text: str) -> str:
        return f"<h4>{title}</h4><pre style='white-space:pre-wrap'>{html.escape(text)}</pre>"

    parts = [block("Memory", step.memory or "(empty)"), block("Plan", step.plan or "(empty)")]
    if diff:
        lines = []
        for line in diff.splitlines():
            color = "#2e8b57" if line.startswith("+") else "#c0392b"
            lines.append(f"<span style='color:{color}'>{html.escape(line)}</span>")
        parts.append(
            "<h4>What changed</h4><pre style='white-space:pre-wrap'>" + "\n".join(lines) + "</pre>"
        )
    for note in step.notes:
        parts.append(f"<p><b>Note:</b> {html.escape(note)}</p>")
    if step.thinking:
        parts.append(
            f"<details><summary>Thinking</summary>{block('Thinking', step.thinking)}</details>"
        )
    c = step.chunk
    parts.append(
        f"<p style='color:gray'>Read characters {c.start:,}–{c.end:,} ({c.tokens:,} tokens). "
        f"Prompt {step.prompt_tokens:,} tokens in {step.prompt_ms / 1000:.1f} s, generated "
        f"{step.completion_tokens:,} in {step.generation_ms / 1000:.1f} s; "
        f"stop: {step.stop_reason}.</p>"
    )
    return "".join(parts)


class TimelinePanel(QWidget):
    step_selected = Signal(object)  # StepRecord
    cancel_requested = Signal()
    resume_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("<b>Memory timeline</b>")
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Reading progress")
        self.progress.setFormat("No run yet")
        self.progress.setValue(0)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel the run")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setAccessibleName("Resume the interrupted run")
        self.resume_button.hide()
        self.resume_button.clicked.connect(self.resume_requested)
        self.coverage = CoverageStrip()
        self.coverage_label = QLabel()
        self.steps = QListWidget()
        self.steps.setAccessibleName("Memory steps")
        self.steps.setWordWrap(True)
        self.steps.setAlternatingRowColors(True)
        self.steps.currentRowChanged.connect(self._select)
        self.details = QTextBrowser()
        # Shown until a run starts (a placeholder would not wrap): what this panel is for.
        self.details.setHtml(
            "<p style='color: gray'>When the memory agent reads a long document, each chunk "
            "it reads appears above with its pages, tokens and time. Select one to see the "
            "memory and plan it wrote, what changed, and its pages in the viewer. A "
            "single-pass answer has no steps.</p>"
        )
        self.details.setAccessibleName("Step details")
        self.details.setOpenLinks(False)
        self.live = QTextBrowser()
        self.live.setAccessibleName("Live output of the current step")
        self.live.setMaximumHeight(120)
        self.live.hide()

        top = QHBoxLayout()
        top.addWidget(self.progress, 1)
        top.addWidget(self.resume_button)
        top.addWidget(self.cancel_button)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.steps)
        split.addWidget(self.details)
        split.setSizes([260, 340])
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(top)
        layout.addWidget(self.coverage)
        layout.addWidget(self.coverage_label)
        layout.addWidget(self.live)
        layout.addWidget(split, 1)
        self.records: list[StepRecord] = []
        self.diffs: list[str] = []
        self.total = 0

    # -- filling ----------------------------------------------------------------------
    def start(self, chunks: tuple[Chunk, ...], page_count: int, mode: str) -> None:
        self.steps.clear()
        self.records, self.diffs = [], []
        self.total = len(chunks)
        self.details.clear()
        self.coverage.reset(page_count)
        self.resume_button.hide()
        if mode == "single_pass":
            self.progress.setRange(0, 0)
            self.progress.setFormat("Reading the whole document in one pass…")
            self.coverage_label.setText(f"Single pass: all {page_count} pages in one prompt")
            self.coverage.read = {p: 0.5 for p in range(1, page_count + 1)}
        else:
            self.progress.setRange(0, self.total)
            self.progress.setValue(0)
            self.progress.setFormat(f"0 of {self.total} chunks read")
            self._update_coverage_label()

    def set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        self.live.setVisible(running)
        if not running:
            self.coverage.mark_current(None)

    def step_started(self, chunk: Chunk) -> None:
        self.coverage.mark_current(chunk)
        self.live.clear()
        self.live.setPlaceholderText(
            f"Reading step {chunk.index + 1} (pages {chunk.page_first}–{chunk.page_last})…"
        )

    def token(self, text: str) -> None:
        cursor = self.live.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(text)
        self.live.setTextCursor(cursor)

    def add_step(self, step: StepRecord, diff: str, eta_s: float | None = None) -> None:
        self.records.append(step)
        self.diffs.append(diff)
        item = QListWidgetItem(step_summary(step, self.total))
        if step.malformed or step.notes:
            item.setToolTip("\n".join(step.notes))
        self.steps.addItem(item)
        changed = len(diff.splitlines())
        previous = len(self.records[-2].memory.splitlines()) if len(self.records) > 1 else 0
        self.coverage.mark_read(step.chunk, min(1.0, changed / max(4, previous + 1)))
        done = len(self.records)
        self.progress.setValue(done)
        eta = f" · about {human_duration(eta_s)} left" if eta_s else ""
        self.progress.setFormat(f"{done} of {self.total} chunks read{eta}")
        self._update_coverage_label()
        if self.steps.currentRow() in (-1, done - 2):  # follow the run unless the user looks back
            self.steps.setCurrentRow(done - 1)

    def load(
        self, chunks: list[Chunk], steps: list[StepRecord], page_count: int, mode: str, status: str
    ) -> None:
        """Show a stored run exactly as recorded."""
        self.start(tuple(chunks), page_count, mode)
        previous = ""
        for step in steps:
            from app.agent.engine import memory_diff

            self.add_step(step, memory_diff(previous, step.memory))
            previous = step.memory
        self.finish(status)

    def finish(self, status: str) -> None:
        self.set_running(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if status == "finished" else 0)
        labels = {
            "finished": "Done",
            "cancelled": "Cancelled",
            "failed": "Failed",
            "interrupted": "Interrupted",
            "running": "Running",
        }
        done = len(self.records)
        self.progress.setFormat(
            f"{labels.get(status, status)} · {done} of {self.total} chunks read"
            if self.total
            else labels.get(status, status)
        )
        resumable = status in ("cancelled", "failed", "interrupted") and done < self.total
        self.resume_button.setVisible(resumable)

    def _update_coverage_label(self) -> None:
        c = self.coverage
        self.coverage_label.setText(f"Read {c.pages_read()} of {c.page_count} pages")

    def _select(self, row: int) -> None:
        if 0 <= row < len(self.records):
            self.details.setHtml(step_details_html(self.records[row], self.diffs[row]))
            self.step_selected.emit(self.records[row])
