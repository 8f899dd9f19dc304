"""Two runs side by side: what differed, both answers, and the aligned timelines.

Selecting a row on one side selects the same row on the other, so the memories written
after reading the same pages are always in view together."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.evidence.compare import Comparison, StepRow, to_markdown
from app.gui.markdown_view import SafeMarkdownView
from app.records import Mode, RunRecord


def _step_label(step_pages: str, row: StepRow, left: bool, single_pass: bool) -> str:
    step = row.left if left else row.right
    if step is None:
        return "(single pass: the whole document in one read)" if single_pass else "(no step)"
    first_line = step.memory.strip().splitlines()[0] if step.memory.strip() else "(empty)"
    flag = " ⚠ malformed" if step.malformed else ""
    return f"Step {step.index + 1} · {step_pages}{flag}\n{first_line[:120]}"


def _pages(row: StepRow, left: bool) -> str:
    step = row.left if left else row.right
    if step is None:
        return ""
    first, last = step.chunk.page_first, step.chunk.page_last
    return f"p. {first}" if first == last else f"pp. {first}-{last}"


class RunColumn(QWidget):
    """One run: header, answer, steps, and the memory/plan of the selected step."""

    def __init__(self, comparison: Comparison, run: RunRecord, left: bool) -> None:
        super().__init__()
        self.rows = comparison.rows
        self.left = left
        self.single_pass = run.mode == Mode.SINGLE_PASS
        cov = comparison.coverage(run)
        mode = run.mode.replace("_", " ")
        header = QLabel(
            f"<b>Run {run.id}</b> · {html.escape(run.model_name)} · {html.escape(mode)} · "
            f"{html.escape(str(run.status))}<br>"
            f"read {cov['pages_read']} of {cov['pages_total']} pages"
        )
        header.setTextFormat(Qt.TextFormat.RichText)
        self.answer = SafeMarkdownView()
        self.answer.setAccessibleName(f"Answer of run {run.id}")
        self.answer.set_markdown(
            run.answer.text if run.answer else "_No answer: the run did not finish._"
        )
        self.steps = QListWidget()
        self.steps.setAccessibleName(f"Steps of run {run.id}")
        for row in self.rows:
            label = _step_label(_pages(row, left), row, left, run.mode == Mode.SINGLE_PASS)
            self.steps.addItem(QListWidgetItem(label))
        self.detail = QPlainTextEdit(readOnly=True)
        self.detail.setAccessibleName(f"Memory and plan of run {run.id}")
        self.steps.currentRowChanged.connect(self._show_step)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(header)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.answer)
        split.addWidget(self.steps)
        split.addWidget(self.detail)
        split.setSizes([160, 220, 200])
        layout.addWidget(split, 1)

    def _show_step(self, index: int) -> None:
        if not 0 <= index < len(self.rows):
            return
        step = self.rows[index].left if self.left else self.rows[index].right
        if step is not None:
            self.detail.setPlainText(f"MEMORY\n{step.memory}\n\nPLAN\n{step.plan}")
        elif self.single_pass:
            self.detail.setPlainText("Single pass: no memory steps; the answer above read it all.")
        else:
            self.detail.setPlainText("(this run had no step over these pages)")


class CompareDialog(QDialog):
    def __init__(self, comparison: Comparison, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.comparison = comparison
        left, right = comparison.left, comparison.right
        self.setWindowTitle(f"Compare run {left.id} and run {right.id}")
        self.resize(1200, 780)
        agree = (
            "✔ The answers agree."
            if comparison.answers_agree
            else f"✘ The answers differ (word overlap {comparison.answer_similarity:.0%})."
        )
        self.verdict = QLabel(f"<b>{agree}</b>")
        self.differences = QTableWidget(len(comparison.differences), 3)
        self.differences.setAccessibleName("What differed between the runs")
        self.differences.setHorizontalHeaderLabels(["", f"Run {left.id}", f"Run {right.id}"])
        self.differences.verticalHeader().hide()
        self.differences.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for r, diff in enumerate(comparison.differences):
            for c, text in enumerate((diff.label, diff.left, diff.right)):
                self.differences.setItem(r, c, QTableWidgetItem(text))
        self.differences.setMaximumHeight(28 + 26 * min(6, max(1, len(comparison.differences))))
        self.columns = (RunColumn(comparison, left, True), RunColumn(comparison, right, False))
        # Keep both timelines on the same row: the same pages, two readings.
        a, b = (column.steps for column in self.columns)
        a.currentRowChanged.connect(lambda i: b.currentRow() != i and b.setCurrentRow(i))
        b.currentRowChanged.connect(lambda i: a.currentRow() != i and a.setCurrentRow(i))
        sides = QSplitter(Qt.Orientation.Horizontal)
        for column in self.columns:
            sides.addWidget(column)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.save_button = buttons.addButton(
            "Save as Markdown…", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.save_button.clicked.connect(self._save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.verdict)
        if comparison.differences:
            layout.addWidget(self.differences)
        else:
            layout.addWidget(
                QLabel("Same model, settings and mode: the runs differ only by sampling.")
            )
        layout.addWidget(sides, 1)
        layout.addWidget(buttons)
        if comparison.rows:
            a.setCurrentRow(0)

    def _save(self) -> None:
        left, right = self.comparison.left.id, self.comparison.right.id
        path, _ = QFileDialog.getSaveFileName(
            self, "Save comparison", f"compare-run-{left}-run-{right}.md", "Markdown (*.md)"
        )
        if path:
            with open(path, "w", encoding="utf-8") as out:
                out.write(to_markdown(self.comparison))
