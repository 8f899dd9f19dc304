"""The library: opened documents, and the sessions and runs stored for each."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.records import Mode
from app.units import count_of

ROLE = Qt.ItemDataRole.UserRole
FULL_TEXT = Qt.ItemDataRole.UserRole + 1  # the unelided lines of a document's entry


class ElidingList(QListWidget):
    """A list whose long lines end in "…" at the panel's width (the whole text is in the
    tooltip) instead of growing a horizontal scrollbar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)

    def add_entry(self, lines: list[str], tooltip: str) -> QListWidgetItem:
        item = QListWidgetItem()
        item.setData(FULL_TEXT, lines)
        item.setToolTip(tooltip)
        self.addItem(item)
        self._elide(item)
        return item

    def _elide(self, item: QListWidgetItem) -> None:
        metrics = self.fontMetrics()
        width = max(40, self.viewport().width() - 2 * self.spacing() - 12)
        lines = item.data(FULL_TEXT) or []
        item.setText(
            "\n".join(
                metrics.elidedText(line, Qt.TextElideMode.ElideRight, width) for line in lines
            )
        )

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        for row in range(self.count()):
            self._elide(self.item(row))


class LibraryPanel(QWidget):
    document_chosen = Signal(int)  # document id
    run_chosen = Signal(int)  # run id
    compare_requested = Signal(int, int)  # two run ids

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.documents = ElidingList()
        self.documents.setAccessibleName("Documents")
        self.documents.itemActivated.connect(self._document)
        self.documents.itemClicked.connect(self._document)
        self.search = QLineEdit(placeholderText="Search questions and answers…")
        self.search.setAccessibleName("Search history")
        self.search.setClearButtonEnabled(True)
        self.history = QTreeWidget()
        self.history.setAccessibleName("History")
        self.history.setHeaderHidden(True)
        self.history.itemActivated.connect(self._run)
        self.history.itemClicked.connect(self._run)
        # Ctrl/Shift-click picks two runs to compare side by side.
        self.history.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.history.itemSelectionChanged.connect(self._selection_changed)
        self.compare_button = QPushButton("Compare two runs")
        self.compare_button.setAccessibleName("Compare the two selected runs")
        self.compare_button.setToolTip("Select two runs with Ctrl-click, then compare them")
        self.compare_button.setEnabled(False)
        self.compare_button.clicked.connect(self._compare)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Documents</b>"))
        layout.addWidget(self.documents, 1)
        layout.addWidget(QLabel("<b>History</b>"))
        layout.addWidget(self.search)
        layout.addWidget(self.history, 2)
        layout.addWidget(self.compare_button)

    def set_documents(self, rows: list[dict[str, Any]], current_id: int | None) -> None:
        self.documents.clear()
        for row in rows:
            details = f"{count_of(row.get('page_count') or 0, 'page')} · {row['kind']}"
            item = self.documents.add_entry(
                [row["title"], details], f"{row['title']}\n{details}\n{row['path']}"
            )
            item.setData(ROLE, row["id"])
            if row["id"] == current_id:
                self.documents.setCurrentItem(item)

    def set_history(self, sessions: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        self.history.clear()
        for session, runs in sessions:
            top = QTreeWidgetItem([session.get("title") or f"Session {session['id']}"])
            top.setToolTip(0, str(session.get("updated_at", "")))
            for run in runs:
                label, tooltip = run_entry(run)
                child = QTreeWidgetItem([label])
                child.setToolTip(0, tooltip)
                child.setData(0, ROLE, run["id"])
                top.addChild(child)
            self.history.addTopLevelItem(top)
            top.setExpanded(True)

    def selected_runs(self) -> list[int]:
        ids = (item.data(0, ROLE) for item in self.history.selectedItems())
        return [int(i) for i in ids if i is not None]

    def _selection_changed(self) -> None:
        self.compare_button.setEnabled(len(self.selected_runs()) == 2)

    def _compare(self) -> None:
        runs = sorted(self.selected_runs())
        if len(runs) == 2:
            self.compare_requested.emit(runs[0], runs[1])

    def _document(self, item: QListWidgetItem) -> None:
        self.document_chosen.emit(int(item.data(ROLE)))

    def _run(self, item: QTreeWidgetItem) -> None:
        run_id = item.data(0, ROLE)
        if run_id is not None:
            self.run_chosen.emit(int(run_id))


def run_entry(run: dict[str, Any]) -> tuple[str, str]:
    """A history row and its tooltip. The status comes first: in a narrow panel the row
    is cut at its end, and "Run 6 · fini…" hid whether the run finished."""
    status = str(run.get("status") or "")
    mode = "single pass" if run.get("mode") == Mode.SINGLE_PASS else "memory agent"
    label = " · ".join(part for part in (status.capitalize(), f"run {run['id']}", mode) if part)
    whole = " · ".join(part for part in (f"Run {run['id']}", status, mode) if part)
    question = run.get("question") or ""
    return label, f"{whole}\n{question}" if question else whole
