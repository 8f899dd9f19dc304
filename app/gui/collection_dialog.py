"""Making or changing a collection: its name and its documents in reading order (drag to
reorder, add, remove). The order is the order the model reads them in."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.documents.collection import expand_paths


class CollectionDialog(QDialog):
    def __init__(
        self, paths: list[str], name: str = "", file_filter: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Collection")
        self.file_filter = file_filter
        self.name = QLineEdit(name, placeholderText="e.g. Harbor Street data room")
        self.name.setAccessibleName("Collection name")
        self.files = QListWidget()
        self.files.setAccessibleName("Documents in reading order")
        self.files.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.files.addItems([str(p) for p in expand_paths(paths)] if paths else [])
        add, remove = QPushButton("Add…"), QPushButton("Remove")
        up, down = QPushButton("Up"), QPushButton("Down")
        add.clicked.connect(self._add)
        remove.clicked.connect(self._remove)
        up.clicked.connect(lambda: self.move_current(-1))
        down.clicked.connect(lambda: self.move_current(1))
        buttons_row = QHBoxLayout()
        for button in (add, remove, up, down):
            buttons_row.addWidget(button)
        buttons_row.addStretch(1)
        self.error = QLabel()
        self.error.setStyleSheet("color: #c0392b")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Read as one collection")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Name:", self.name)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Documents, in the order they are read (drag to reorder):"))
        layout.addWidget(self.files, 1)
        layout.addLayout(buttons_row)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(640, 420)

    def paths(self) -> list[str]:
        return [self.files.item(i).text() for i in range(self.files.count())]

    def add_paths(self, paths: list[str]) -> None:
        have = set(self.paths())
        self.files.addItems([str(p) for p in expand_paths(paths) if str(p) not in have])

    def move_current(self, step: int) -> None:
        row = self.files.currentRow()
        target = row + step
        if row < 0 or not 0 <= target < self.files.count():
            return
        item = self.files.takeItem(row)
        self.files.insertItem(target, item)
        self.files.setCurrentRow(target)

    def _add(self) -> None:
        chosen, _ = QFileDialog.getOpenFileNames(self, "Add documents", "", self.file_filter)
        self.add_paths(chosen)

    def _remove(self) -> None:
        for item in self.files.selectedItems():
            self.files.takeItem(self.files.row(item))

    def _accept(self) -> None:
        if self.files.count() < 2:
            self.error.setText("A collection needs at least two documents.")
            return
        if not self.name.text().strip():
            self.name.setText(Path(self.paths()[0]).parent.name or "Documents")
        self.accept()
