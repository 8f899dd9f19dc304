"""The library: opened documents, and the sessions and runs stored for each."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

ROLE = Qt.ItemDataRole.UserRole


class LibraryPanel(QWidget):
    document_chosen = Signal(int)  # document id
    run_chosen = Signal(int)  # run id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.documents = QListWidget()
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
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Documents</b>"))
        layout.addWidget(self.documents, 1)
        layout.addWidget(QLabel("<b>History</b>"))
        layout.addWidget(self.search)
        layout.addWidget(self.history, 2)

    def set_documents(self, rows: list[dict[str, Any]], current_id: int | None) -> None:
        self.documents.clear()
        for row in rows:
            pages = row.get("page_count") or 0
            item = QListWidgetItem(f"{row['title']}\n{pages} pages · {row['kind']}")
            item.setToolTip(row["path"])
            item.setData(ROLE, row["id"])
            self.documents.addItem(item)
            if row["id"] == current_id:
                self.documents.setCurrentItem(item)

    def set_history(self, sessions: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        self.history.clear()
        for session, runs in sessions:
            top = QTreeWidgetItem([session.get("title") or f"Session {session['id']}"])
            top.setToolTip(0, str(session.get("updated_at", "")))
            for run in runs:
                status = run.get("status", "")
                mode = "single pass" if run.get("mode") == "single_pass" else "memory agent"
                child = QTreeWidgetItem([f"Run {run['id']} · {status} · {mode}"])
                child.setToolTip(0, run.get("question", ""))
                child.setData(0, ROLE, run["id"])
                top.addChild(child)
            self.history.addTopLevelItem(top)
            top.setExpanded(True)

    def _document(self, item: QListWidgetItem) -> None:
        self.document_chosen.emit(int(item.data(ROLE)))

    def _run(self, item: QTreeWidgetItem) -> None:
        run_id = item.data(0, ROLE)
        if run_id is not None:
            self.run_chosen.emit(int(run_id))
