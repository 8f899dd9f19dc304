"""The side panel: the memory agent's reading, step by step.

A reading map (the document as a strip of pages, each step a band over what it read),
the memory's growth and churn as a small chart, the steps in reading order, and for the
selected step its memory with evidence links, its plan, what changed and any problem in
plain words; the plans as short cards. While a step runs, its memory and plan stream in
as the model writes them, with the time left; a cancel says exactly which steps are kept.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.agent.events import Chunk, StepRecord
from app.documents.model import Document
from app.gui.live_step import LiveStep
from app.gui.memory_chart import MemoryChart, Point
from app.gui.memory_text import approx_tokens, change_weight, churn, page_words, problems_in_words
from app.gui.memory_view import MemoryView
from app.gui.plan_cards import PlanCards
from app.gui.reading_map import Band, ReadingMap, band_tooltip
from app.gui.timeline_text import (
    STATUS_LABELS,
    STOPPED,
    documents_read,
    kept_words,
    single_pass_words,
    step_summary,
)
from app.records import Mode, RunStatus
from app.units import human_duration

EMPTY_HELP = (
    "<p style='color: gray'>When the memory agent reads a long document, the strip on the "
    "left fills with one band per chunk it reads, darker where the memory changed more. "
    "Each step lists its pages, tokens and time; select one (or click its band) to see "
    "the memory it wrote - each line linked to the passage it came from - its plan, what "
    "changed, and its pages in the viewer. A single-pass answer has no steps.</p>"
)


class TimelinePanel(QWidget):
    step_selected = Signal(object)  # StepRecord
    passage_requested = Signal(int, int)  # a memory line's passage: char start, end
    cancel_requested = Signal()
    resume_requested = Signal()
    live_updated = Signal()  # the live view was redrawn (tests wait on it)

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
        self.coverage = ReadingMap()
        self.coverage.step_clicked.connect(self.select_step)
        self.coverage_label = QLabel()
        self.coverage_label.setWordWrap(True)
        self.coverage_label.setAccessibleName("What was read")
        self.chart = MemoryChart()
        self.chart.step_clicked.connect(self.select_step)
        self.steps = QListWidget()
        self.steps.setAccessibleName("Memory steps")
        self.steps.setWordWrap(True)
        self.steps.setAlternatingRowColors(True)
        self.steps.currentRowChanged.connect(self._select)
        self.details = MemoryView()
        self.details.setHtml(EMPTY_HELP)  # a placeholder would not wrap
        self.details.passage_clicked.connect(self.passage_requested)
        self.plans = PlanCards()
        self.plans.reset()
        self.plans.step_clicked.connect(self.select_step)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.details, "Memory")
        self.tabs.addTab(self.plans, "Plans")
        self.live = LiveStep()
        self.live.updated.connect(self.live_updated)
        self.live.hide()

        top = QHBoxLayout()
        top.addWidget(self.progress, 1)
        top.addWidget(self.resume_button)
        top.addWidget(self.cancel_button)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.steps)
        split.addWidget(self.tabs)
        split.setSizes([200, 400])
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.chart)
        right.addWidget(self.live)
        right.addWidget(split, 1)
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.coverage)
        body.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(top)
        layout.addWidget(self.coverage_label)
        layout.addLayout(body, 1)

        self.records: list[StepRecord] = []
        self.diffs: list[str] = []
        self.total = 0
        self.mode = ""
        self.page_count = 0
        self.document: Document | None = None
        self.is_demo = False
        self._rows: dict[int, int] = {}  # chunk index -> row
        self._loading = False
        self.kept_text = ""  # after a cancel: which steps are kept, in words

    # -- context --------------------------------------------------------------------
    def set_document(self, document: Document | None) -> None:
        """The document the run reads: memory lines are traced to its passages."""
        self.document = document
        self.details.forget()

    def clear(self) -> None:
        """No run shown, as before the first question (another document was opened)."""
        page_count = self.document.page_count if self.document is not None else 0
        self.start((), page_count, "")
        self.set_running(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("No run yet")
        self.coverage_label.clear()

    def set_demo(self, is_demo: bool) -> None:
        self.is_demo = is_demo

    # -- filling ----------------------------------------------------------------------
    def start(self, chunks: tuple[Chunk, ...], page_count: int, mode: str) -> None:
        self.steps.clear()
        self.records, self.diffs, self._rows = [], [], {}
        self.total = len(chunks)
        self.mode = mode
        self.page_count = page_count
        self.details.forget()
        self.details.setHtml(EMPTY_HELP)
        self.plans.reset()
        self.chart.reset(self.total if mode != Mode.SINGLE_PASS else 0)
        self.coverage.reset(page_count, single_pass=mode == Mode.SINGLE_PASS)
        members = self.document.members if self.document is not None else []
        self.coverage.set_members([(m.first_page, m.title) for m in members])
        self.resume_button.hide()
        self.live.reset()
        self.kept_text = ""
        if mode == Mode.SINGLE_PASS:
            self.progress.setRange(0, 0)
            self.progress.setFormat("Reading the whole document in one pass…")
            self.coverage_label.setText(self._single_pass_text())
            self.details.setHtml(
                f"<p>{self._single_pass_text()}: the whole document fits the context "
                "window, so there are no memory steps. The answer's citations open the "
                "passages it used.</p>"
            )
        else:
            self.progress.setRange(0, self.total)
            self.progress.setValue(0)
            self.progress.setFormat(f"0 of {self.total} chunks read")
            self._update_coverage_label()

    def _single_pass_text(self) -> str:
        return single_pass_words(self.page_count)

    def set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        self.live.setVisible(running and self.mode != Mode.SINGLE_PASS)
        if not running:
            self.coverage.mark_current(None)
            self.live.stop()

    def step_started(self, chunk: Chunk) -> None:
        self.coverage.mark_current(chunk)
        self.live.begin(chunk, self.total)

    def token(self, text: str, thinking: bool = False) -> None:
        self.live.token(text, thinking)

    def add_step(self, step: StepRecord, diff: str, eta_s: float | None = None) -> None:
        previous = self.records[-1] if self.records else None
        self.records.append(step)
        self.diffs.append(diff)
        row = len(self.records) - 1
        self._rows[step.chunk.index] = row
        item = QListWidgetItem(step_summary(step, self.total, self.is_demo, diff, self.document))
        trouble = problems_in_words(step, self.is_demo)
        if trouble or step.stats.notes:
            item.setToolTip("\n".join(trouble or step.stats.notes))
        self.steps.addItem(item)
        before = previous.memory if previous else ""
        added, removed = churn(before, step.memory)
        c = step.chunk
        self.coverage.add_band(
            Band(
                c.index,
                c.page_first,
                c.page_last,
                change_weight(before, step.memory),
                band_tooltip(
                    c.index,
                    self.total,
                    c.page_first,
                    c.page_last,
                    step.stats.prompt_tokens,
                    step.stats.completion_tokens,
                    step.stats.wall_ms,
                    added,
                    removed,
                ),
            )
        )
        self.chart.add(Point(c.index, approx_tokens(step.memory), added, removed))
        if not self._loading:
            self.plans.add(c.index, page_words(c.page_first, c.page_last), step.plan)
        else:
            self.plans.cards.append((c.index, page_words(c.page_first, c.page_last), step.plan))
        self.live.step_done(c.index)
        done = len(self.records)
        self.progress.setValue(done)
        if eta_s is not None:
            self.live.set_eta(eta_s)
        eta = f" · about {human_duration(eta_s)} left" if eta_s else ""
        self.progress.setFormat(f"{done} of {self.total} chunks read{eta}")
        self._update_coverage_label()
        # Follow the run unless the user looks back.
        if not self._loading and self.steps.currentRow() in (-1, done - 2):
            self.steps.setCurrentRow(done - 1)

    def load(
        self, chunks: list[Chunk], steps: list[StepRecord], page_count: int, mode: str, status: str
    ) -> None:
        """Show a stored run exactly as recorded."""
        from app.agent.engine import memory_diff

        self.start(tuple(chunks), page_count, mode)
        previous = ""
        self._loading = True
        try:
            for step in steps:
                self.add_step(step, memory_diff(previous, step.memory))
                previous = step.memory
        finally:
            self._loading = False
        if self.plans.cards:
            self.plans.select(-1)
        if steps:
            self.steps.setCurrentRow(len(steps) - 1)
        self.finish(status)

    def finish(self, status: str) -> None:
        self.set_running(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if status == RunStatus.FINISHED else 0)
        label = STATUS_LABELS.get(status, status)
        done = len(self.records)
        if self.mode == Mode.SINGLE_PASS:
            self.progress.setFormat(f"{label} · {self._single_pass_text()}")
        elif self.total:
            self.progress.setFormat(f"{label} · {done} of {self.total} chunks read")
        else:
            self.progress.setFormat(label)
        resumable = status in STOPPED and done < self.total
        self.resume_button.setVisible(resumable)
        stopped, self.live.chunk = self.live.chunk, None
        if status in STOPPED and self.mode != Mode.SINGLE_PASS:
            self.coverage.mark_stopped(stopped)
            self.kept_text = kept_words(label, self.records, self.total, stopped)
            self.coverage_label.setText(self.kept_text)

    def _update_coverage_label(self) -> None:
        c = self.coverage
        if self.document is not None and self.document.members:
            self.coverage_label.setText(documents_read(self.document, c.pages_read_set()))
            return
        self.coverage_label.setText(f"Read {c.pages_read()} of {c.page_count} pages")

    # -- selection --------------------------------------------------------------------
    def select_step(self, chunk_index: int) -> None:
        """Select the step that read chunk ``chunk_index`` (from the map, chart or cards)."""
        row = self._rows.get(chunk_index)
        if row is not None:
            if row == self.steps.currentRow():
                self._select(row)
            else:
                self.steps.setCurrentRow(row)

    def _select(self, row: int) -> None:
        if 0 <= row < len(self.records):
            step = self.records[row]
            self.details.show_step(
                self.records, row, self.total, self.diffs[row], self.document, self.is_demo
            )
            index = step.chunk.index
            self.coverage.select(index)
            self.chart.select(index)
            if not self._loading:
                self.plans.select(index)
            self.step_selected.emit(step)
