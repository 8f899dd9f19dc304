"""Getting the real model: the recommended QwenLong-L1.5 quantizations with their size and
fit on this machine, import of a GGUF from disk or a USB stick, and a download that
starts only when the user clicks it (resumable, checksummed, cancellable)."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.workers import describe_error
from app.llm import download
from app.llm.backend import CancelToken
from app.llm.download_progress import DownloadCancelled
from app.llm.fit import SAFETY, machine_of, plan_placement
from app.llm.hardware import Hardware
from app.llm.model_sources import CATALOGUE, KNOWN_REPOS
from app.llm.qwenlong import qwenlong_reference
from app.units import human_size


class TransferWorker(QObject):
    """Runs a download or an import on its own thread; reports by signal only."""

    progress = Signal(str, int)  # one line to show, per mille done (-1: unknown)
    finished = Signal(str)  # path of the model now in the models folder
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.cancel_token = CancelToken()

    def prepare_download(self) -> None:
        """On the UI thread, just before a download is requested: a fresh cancel flag (an
        earlier cancel is spent), set before the worker thread starts, as Cancel is."""
        self.cancel_token = CancelToken()

    @Slot(str, str)
    def download(self, quant: str, repo: str) -> None:
        """Runs on the worker thread; ``cancel_token`` was made fresh by the UI thread
        before it asked (prepare_download), so a Cancel clicked at once is not lost."""

        def report(p: Any) -> None:
            fraction = p.fraction
            self.progress.emit(p.describe(), -1 if fraction is None else int(fraction * 1000))

        try:
            result = download.download_model(
                quant, repo=repo or None, progress=report, cancel=self.cancel_token
            )
        except DownloadCancelled as stop:
            if stop.part is None:
                self.failed.emit("Cancelled before the download started.")
            else:
                self.failed.emit(
                    f"Paused: {human_size(stop.done)} kept in {stop.part.name}. "
                    "Download again to resume where it stopped."
                )
        except Exception as error:  # noqa: BLE001 - shown to the user as is
            self.failed.emit(describe_error(error))
        else:
            self.finished.emit(str(result.path))

    @Slot(str)
    def import_file(self, source: str) -> None:
        from app.llm.model_import import import_model

        try:
            self.progress.emit(f"Copying {Path(source).name} into the models folder…", -1)
            target = import_model(Path(source), io.StringIO())
        except Exception as error:  # noqa: BLE001
            self.failed.emit(describe_error(error))
        else:
            self.finished.emit(str(target))


class ModelsDialog(QDialog):
    """Emits ``model_chosen(path)`` when a model is ready to use."""

    model_chosen = Signal(str)
    start_download = Signal(str, str)  # quantization, repository ("" for the known ones)
    start_import = Signal(str)

    def __init__(self, hardware: Hardware, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Get QwenLong-L1.5")
        self.resize(760, 420)
        intro = QLabel(
            "QwenLong-L1.5-30B-A3B as GGUF. Nothing is downloaded unless you click "
            "Download; offline, copy the file from another machine and use Import.<br>"
            f"<i>This machine: {html.escape(hardware.describe())}</i>"
        )
        intro.setWordWrap(True)
        self.table = QTableWidget(len(CATALOGUE), 3)
        self.table.setAccessibleName("Recommended quantizations")
        self.table.setHorizontalHeaderLabels(["Quantization", "Size", "On this machine"])
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        for row, (quant, entry) in enumerate(CATALOGUE.items()):
            plan = plan_placement(qwenlong_reference(quant), machine_of(hardware))
            if plan.fits:
                verdict = f"Fits: {plan.describe()}"
            else:
                usable = machine_of(hardware).ram_bytes * SAFETY
                verdict = (
                    f"Does not fit: needs about {plan.ram_bytes / 1e9:.1f} GB of RAM, "
                    f"{usable / 1e9:.1f} GB usable here"
                )
            cells = (quant, human_size(entry.size), verdict)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(entry.url())
                self.table.setItem(row, column, item)
        self.table.selectRow(0)
        self.repo = QLineEdit()
        self.repo.setAccessibleName("Repository")
        self.repo.setPlaceholderText(
            "owner/name on Hugging Face (empty: try " + ", ".join(KNOWN_REPOS) + ")"
        )
        self.repo.setToolTip(
            "Another GGUF repository of QwenLong-L1.5-30B-A3B; its file list is searched for "
            "the selected quantization."
        )
        repo_row = QHBoxLayout()
        repo_row.addWidget(QLabel("Repository:"))
        repo_row.addWidget(self.repo, 1)
        self.status = QLabel(" ")
        self.status.setAccessibleName("Transfer status")
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setAccessibleName("Transfer progress")
        self.bar.setRange(0, 1000)
        self.bar.hide()
        self.download_button = QPushButton("Download")
        self.download_button.setToolTip(
            "Fetch the selected quantization from Hugging Face (or HF_ENDPOINT's mirror)"
        )
        self.import_button = QPushButton("Import GGUF…")
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.setEnabled(False)
        self.download_button.clicked.connect(self._download)
        self.import_button.clicked.connect(self._import)
        self.cancel_button.clicked.connect(self._cancel)
        buttons = QHBoxLayout()
        for button in (self.download_button, self.import_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addLayout(repo_row)
        layout.addLayout(buttons)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(close)

        self.copying = False
        self.transfer_thread = QThread(self)
        self.transfer_thread.setObjectName("model-transfer")
        self.worker = TransferWorker()
        self.worker.moveToThread(self.transfer_thread)
        self.start_download.connect(self.worker.download)
        self.start_import.connect(self.worker.import_file)
        self.worker.progress.connect(self._progress)
        self.worker.finished.connect(self._finished)
        self.worker.failed.connect(self._failed)
        self.transfer_thread.start()

    def selected_quant(self) -> str:
        row = max(0, self.table.currentRow())
        return list(CATALOGUE)[row]

    def _busy(self, busy: bool, cancellable: bool = False) -> None:
        self.copying = busy and not cancellable
        self.download_button.setEnabled(not busy)
        self.import_button.setEnabled(not busy)
        self.repo.setEnabled(not busy)
        self.cancel_button.setEnabled(busy and cancellable)
        self.bar.setVisible(busy)

    def _cancel(self) -> None:
        self.worker.cancel_token.cancel()
        self.status.setText("Pausing… the part downloaded so far is kept.")

    def _download(self) -> None:
        self._busy(True, cancellable=True)
        self.status.setText("Connecting…")
        self.worker.prepare_download()
        self.start_download.emit(self.selected_quant(), self.repo.text().strip())

    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model", "", "GGUF (*.gguf)")
        if path:
            self.import_path(path)

    def import_path(self, path: str) -> None:
        self._busy(True)
        self.start_import.emit(path)

    def _progress(self, line: str, per_mille: int) -> None:
        self.status.setText(line)
        if per_mille < 0:
            self.bar.setRange(0, 0)  # busy: size not known yet
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(per_mille)

    def _finished(self, path: str) -> None:
        self._busy(False)
        self.status.setText(f"Ready: {path}. It is now the model in Settings.")
        self.model_chosen.emit(path)

    def _failed(self, message: str) -> None:
        self._busy(False)
        self.status.setText(message)

    def done(self, result: int) -> None:
        if self.copying:  # a copy cannot be paused; closing now would block the window
            self.status.setText("Copying… the dialog closes when the copy has finished.")
            return
        # Closing the dialog pauses a download (the .part is kept) and ends the thread.
        self.worker.cancel_token.cancel()
        self.transfer_thread.quit()
        self.transfer_thread.wait()
        super().done(result)
