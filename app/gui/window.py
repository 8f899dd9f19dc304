"""The main window: library | document viewer + question and answer | memory timeline."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSplitter,
)

from app import paths, private
from app.agent.events import (
    AnswerStarted,
    DatabaseWaiting,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    StepRecord,
    StepStarted,
    TokenStreamed,
)
from app.agent.planning import RunPlan
from app.documents.ingest import SUPPORTED_FORMATS, load_document
from app.documents.model import Document, DocumentDamaged
from app.errors import PasswordRequired, UserError
from app.evidence.provenance import cite_answer, evidence_from_row
from app.gui.about import show_about
from app.gui.ask_panel import AskPanel
from app.gui.library import LibraryPanel
from app.gui.safe_text import plain_html, plain_label
from app.gui.settings_dialog import SettingsDialog
from app.gui.theme import apply_theme
from app.gui.timeline import TimelinePanel
from app.gui.viewer import DocumentViewer
from app.gui.workers import ModelThread, Task, start_task
from app.llm.factory import DEMO_NOTE
from app.records import Mode, Question, RunStatus
from app.settings import Settings, load_settings, save_settings, take_notices
from app.store import collections
from app.store.database import open_database
from app.units import human_duration

log = logging.getLogger("app.gui")
# From ingestion's list, so a new format is offered as soon as it can be read. "All files"
# stays: a file is read by its content, whatever its name (documents/formats.py).
FILE_FILTER = (
    f"Documents ({' '.join('*' + ext for ext in SUPPORTED_FORMATS)});;"
    "Word documents (*.docx);;Web pages (*.html *.htm *.xhtml);;All files (*)"
)
MAX_RECENT = 10


UNKEPT_FILE = "unkept-protected-documents.json"


def _read_unkept() -> list[int]:
    try:
        data = json.loads((paths.data_dir() / UNKEPT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [int(i) for i in data if isinstance(i, int)] if isinstance(data, list) else []


def _remember_unkept(document_ids: set[int]) -> None:
    """Persist the ids so a crash cannot leave a run the user chose not to keep."""
    file = paths.data_dir() / UNKEPT_FILE
    with contextlib.suppress(OSError):
        if not document_ids:
            file.unlink(missing_ok=True)
            return
        with open(file, "w", encoding="utf-8", opener=private.opener) as out:
            out.write(json.dumps(sorted(document_ids)))


class MainWindow(QMainWindow):
    request_load = Signal(object)  # Settings
    request_unload = Signal()
    request_plan = Signal(object, object)  # Document, Question
    request_ask = Signal(object, int, int, object)  # Document, its id, session id, RunPlan
    request_resume = Signal(int, object)
    document_opened = Signal(object)  # Document: for tests and the self-test
    run_ended = Signal(str)  # final status
    model_ready = Signal()

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("QwenLong Reader")
        self.setAcceptDrops(True)
        self.settings = settings or load_settings()
        apply_theme(self.settings.theme)
        self.store = open_database()
        self.store.mark_stale_running_as_interrupted()
        # Protected documents whose runs were not to be kept, left by a crash: delete now.
        self._unkept_documents: set[int] = set(_read_unkept())
        self._forget_unkept(everything=True)
        self.document: Document | None = None
        self.document_id: int | None = None
        self.password: str | None = None
        self.plan: RunPlan | None = None
        self.run_id: int | None = None
        self.busy = False
        self.model_loaded = False
        self._pending_ask: tuple[str, str, str, str] | None = None

        self.library = LibraryPanel()
        self.viewer = DocumentViewer()
        self.ask_panel = AskPanel()
        self.timeline = TimelinePanel()
        center = QSplitter(Qt.Orientation.Vertical)
        center.addWidget(self.viewer)
        center.addWidget(self.ask_panel)
        center.setSizes([480, 320])
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(self.library)
        main.addWidget(center)
        main.addWidget(self.timeline)
        main.setSizes([230, 650, 400])
        main.setStretchFactor(1, 1)
        self.setCentralWidget(main)
        self.model_label = plain_label(QLabel())  # shows the model's own name
        self.model_label.setAccessibleName("Model status")
        self.statusBar().addPermanentWidget(self.model_label, 1)
        # llama.cpp's own load progress (a 19 GB file takes a while from a laptop disk);
        # busy until its first report arrives.
        self.model_busy = QProgressBar()
        self.model_busy.setAccessibleName("Model loading")
        self.model_busy.setRange(0, 0)
        self.model_busy.setFormat("Loading %p%")
        self.model_busy.setMaximumWidth(160)
        self.model_busy.hide()
        self.statusBar().addPermanentWidget(self.model_busy)
        self._menus()
        for notice in take_notices():  # e.g. a damaged settings file set aside: said once
            self._notice = QMessageBox(QMessageBox.Icon.Warning, "Settings", notice, parent=self)
            self._notice.setTextFormat(Qt.TextFormat.PlainText)
            self._notice.show()  # not modal: the window starts meanwhile

        self.model = ModelThread()
        worker = self.model.worker
        self.request_load.connect(worker.load_model)
        self.request_unload.connect(worker.unload)
        worker.model_unloaded.connect(self._model_unloaded)
        self.request_plan.connect(worker.plan)
        self.request_ask.connect(worker.ask)
        self.request_resume.connect(worker.resume)
        worker.model_loaded.connect(self._model_loaded)
        worker.model_failed.connect(self._model_failed)
        worker.model_load_progress.connect(self._model_load_progress)
        worker.model_load_cancelled.connect(self._model_load_cancelled)
        worker.planned.connect(self._planned)
        worker.plan_failed.connect(self._plan_failed)
        worker.engine_event.connect(self._on_event)
        worker.busy_changed.connect(self._set_busy)

        self.ask_panel.plan_wanted.connect(self._want_plan)
        self.ask_panel.ask_requested.connect(self._ask)
        self.timeline.step_selected.connect(self._show_step)
        self.timeline.passage_requested.connect(self._show_passage)
        self.timeline.cancel_requested.connect(self.cancel_run)
        self.timeline.resume_requested.connect(self.resume_run)
        self.library.document_chosen.connect(self._open_stored_document)
        self.library.run_chosen.connect(self.show_run)
        self.library.search.textChanged.connect(lambda _: self._refresh_history())
        self.ask_panel.answer.citation_clicked.connect(self._open_citation)
        self.library.compare_requested.connect(self.compare_runs)
        self.citations: list[dict[str, Any]] = []
        self._run_after_open: int | None = None
        self._plan_key: tuple[str, str, str] | None = None
        self._plans_in_flight = 0

        self._load_model()
        self._refresh_library()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(1280, 800)

    # -- menus ------------------------------------------------------------------------
    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_action = QAction("&Open…", self, shortcut=QKeySequence(QKeySequence.StandardKey.Open))
        open_action.triggered.connect(self._choose_file)
        file_menu.addAction(open_action)
        collection = QAction("New or edit &collection…", self)
        collection.triggered.connect(self.edit_collection)
        file_menu.addAction(collection)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._fill_recent()
        file_menu.addSeparator()
        settings_action = QAction("&Settings…", self, shortcut=QKeySequence("Ctrl+,"))
        settings_action.triggered.connect(self.open_settings)
        file_menu.addAction(settings_action)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence(QKeySequence.StandardKey.Quit))
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        go_menu = self.menuBar().addMenu("&Go")
        for label, keys, slot in (
            ("&Next step", "Alt+Down", lambda: self.step_by(1)),
            ("&Previous step", "Alt+Up", lambda: self.step_by(-1)),
            ("&Find in document", QKeySequence.StandardKey.Find, self._focus_search),
            ("&Ask", "Ctrl+Return", self.ask_panel.ask_button.click),
            ("&Cancel the run", "Ctrl+.", self.cancel_run),
        ):
            action = QAction(label, self, shortcut=QKeySequence(keys))
            action.triggered.connect(slot)
            go_menu.addAction(action)
        model_menu = self.menuBar().addMenu("&Model")
        load = QAction("&Load model", self)
        load.triggered.connect(self._load_model)
        unload = QAction("&Unload model (free its memory)", self)
        unload.triggered.connect(self.unload_model)
        get = QAction("&Get QwenLong-L1.5…", self)
        get.triggered.connect(self.open_models_dialog)
        for action in (load, unload, get):
            model_menu.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About the model", self)
        about.triggered.connect(lambda: QMessageBox.information(self, "Model", DEMO_NOTE))
        help_menu.addAction(about)
        # What this llama.cpp can do here: the edition or driver to install for the GPU.
        about_app = QAction("About QwenLong &Reader", self)
        about_app.triggered.connect(lambda: show_about(self))
        help_menu.addAction(about_app)

    def step_by(self, delta: int) -> None:
        """Keyboard navigation through the timeline from anywhere in the window."""
        steps = self.timeline.steps
        if steps.count():
            row = steps.currentRow() + delta if steps.currentRow() >= 0 else 0
            steps.setCurrentRow(min(max(row, 0), steps.count() - 1))

    def _focus_search(self) -> None:
        self.viewer.setCurrentWidget(self.viewer.pages)
        self.viewer.pages.search.setFocus()
        self.viewer.pages.search.selectAll()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
        self.recent_menu.setEnabled(bool(self.settings.recent_files))

    # -- model --------------------------------------------------------------------------
    def _load_model(self) -> None:
        self.model_loaded = False
        self.model_label.setText("Loading the model… (Cancel stops it)")
        self.model_busy.setRange(0, 0)
        self.model_busy.show()
        self.model.worker.prepare_load()
        self.request_load.emit(self.settings)

    def _model_load_progress(self, fraction: float) -> None:
        if self.model_busy.maximum() == 0:
            self.model_busy.setRange(0, 100)
        self.model_busy.setValue(int(fraction * 100))

    def _model_load_cancelled(self) -> None:
        self.model_busy.hide()
        self.model_loaded = False
        self.model_label.setText("Model loading cancelled; Model > Load model loads it.")

    def unload_model(self) -> None:
        if self.busy:
            self.statusBar().showMessage("Cancel the run before unloading the model.", 5000)
            return
        self.request_unload.emit()

    def _model_unloaded(self) -> None:
        self.model_loaded = False
        self.model_label.setText("Model unloaded to free memory; it loads again when you ask.")

    def open_models_dialog(self) -> None:
        from app.gui.models_dialog import ModelsDialog
        from app.llm.hardware import detect_hardware

        self.models_dialog = ModelsDialog(detect_hardware(), self)
        self.models_dialog.model_chosen.connect(
            lambda path: self.apply_settings(self.settings.with_changes(model_path=path))
        )
        self.models_dialog.show()

    def _model_loaded(self, name: str, is_demo: bool) -> None:
        self.model_loaded = True
        self.timeline.set_demo(is_demo)
        self.model_busy.hide()
        if is_demo:
            self.model_label.setText(
                f"Model: {name} - a tiny demo model with poor answers. For real work choose "
                "a QwenLong-L1.5 GGUF in Model > Get QwenLong-L1.5… or File > Settings."
            )
        else:
            placed = self.model.worker.plan_description
            self.model_label.setText(f"Model: {name}" + (f" · {placed}" if placed else ""))
        self.model_ready.emit()
        self.ask_panel._replan()

    def _model_failed(self, message: str) -> None:
        self.model_busy.hide()
        self.model_label.setText("No model loaded - open File > Settings to choose one.")
        QMessageBox.warning(self, "The model could not be loaded", plain_html(message))

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() and dialog.result_settings is not None:
            self.apply_settings(dialog.result_settings)

    def apply_settings(self, settings: Settings) -> None:
        save_settings(settings)
        apply_theme(settings.theme)
        # The look and the recent-files list do not need the model loaded again.
        ui_only = {"theme": self.settings.theme, "recent_files": self.settings.recent_files}
        reload = settings.with_changes(**ui_only) != self.settings
        self.settings = settings
        if reload:
            self._load_model()

    # -- documents ----------------------------------------------------------------------
    def _choose_file(self) -> None:
        # Several files selected: one collection, read in the order of their names.
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Open a document (several: read as one collection)", "", FILE_FILTER
        )
        if len(paths) > 1:
            self.open_files(sorted(paths))
        elif paths:
            self.open_file(paths[0])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if len(paths) > 1 or (paths and Path(paths[0]).is_dir()):
            self.open_files(paths)  # several files or a folder: one collection
        elif paths:
            self.open_file(paths[0])

    def edit_collection(self) -> None:
        """File > collection: name the documents and set their reading order."""
        from app.gui.collection_dialog import CollectionDialog

        doc = self.document
        paths = [m.path for m in doc.members] if doc is not None and doc.members else []
        name = doc.title if doc is not None and doc.members else ""
        self.collection_dialog = CollectionDialog(paths, name, FILE_FILTER, self)
        if self.collection_dialog.exec():
            dialog = self.collection_dialog
            self.open_files(dialog.paths(), dialog.name.text().strip())

    def open_files(self, paths: list[str], name: str = "") -> None:
        """Read several files or a folder as one collection (documents/collection.py)."""
        from app.documents.collection import load_collection

        self.statusBar().showMessage(f"Opening {len(paths)} documents as a collection…")
        settings = self.settings

        def job(progress: Any) -> Document:
            return load_collection(
                paths,
                name=name,
                load=lambda path: load_document(
                    path,
                    drop_headers_footers=settings.drop_headers_footers,
                    ocr=settings.ocr,
                ),
            )

        task = Task(job)
        task.signals.done.connect(lambda doc: self._document_loaded(doc, None))
        task.signals.failed.connect(
            lambda message, error: self._document_failed(paths[0], message, error)
        )
        self._task = task
        start_task(task)

    def open_file(
        self,
        path: str,
        password: str | None = None,
        accept_damaged: bool = False,
        keep_runs: bool = False,
    ) -> None:
        if Path(path).is_dir():  # a folder (from history or recent files): a collection
            self.open_files([path])
            return
        self.statusBar().showMessage(f"Opening {Path(path).name}…")
        settings = self.settings

        def job(progress: Any) -> Document:
            return load_document(
                Path(path),
                password=password,
                drop_headers_footers=settings.drop_headers_footers,
                ocr=settings.ocr,
                progress=progress,
                accept_damaged=accept_damaged,
            )

        task = Task(job)
        task.signals.progress.connect(
            lambda done, total: self.statusBar().showMessage(f"Reading page {done} of {total}…")
        )
        task.signals.done.connect(lambda doc: self._document_loaded(doc, password, keep_runs))
        task.signals.failed.connect(
            lambda message, error: self._document_failed(path, message, error, password)
        )
        self._task = task  # keep the signals object alive until it reports
        start_task(task)

    def _document_failed(
        self, path: str, message: str, error: object, password: str | None = None
    ) -> None:
        self.statusBar().clearMessage()
        self._show_pending_run()  # the stored run is still worth reading without its file
        if isinstance(error, PasswordRequired):
            password, ok = QInputDialog.getText(
                self,
                "Password needed",
                f"{Path(path).name} is encrypted. Password:",
                QLineEdit.EchoMode.Password,
            )
            if ok and password:
                # Asked with the password: a run's memory, answer and citations quote
                # the document, so they are kept only with consent (README).
                keep = QMessageBox.question(
                    self,
                    "Keep runs of this protected document?",
                    "Keep the runs you make on this document in the history? Their "
                    "memory, answers and cited passages quote it, readable without its "
                    "password.\n\nNo: they are deleted when you close the document or "
                    "the window. The document's text itself is never stored.",
                    defaultButton=QMessageBox.StandardButton.No,
                )
                self.open_file(path, password, keep_runs=keep == QMessageBox.StandardButton.Yes)
            return
        if isinstance(error, DocumentDamaged):
            answer = QMessageBox.question(
                self,
                "The file is damaged",
                plain_html(
                    f"{error.message}\n\nRead only the {error.pages_read} pages that "
                    "survived? Answers will cover only those pages."
                ),
                defaultButton=QMessageBox.StandardButton.No,
            )
            if answer == QMessageBox.StandardButton.Yes:
                self.open_file(path, password, accept_damaged=True)
            return
        QMessageBox.warning(self, "Could not open the document", plain_html(message))

    def _document_loaded(
        self, document: Document, password: str | None, keep_runs: bool = False
    ) -> None:
        self._forget_unkept()  # the protected document shown before, if its runs go
        self.document, self.password = document, password
        self.document_id = self.store.add_document(document)
        if document.protected and not keep_runs:
            self._unkept_documents.add(self.document_id)
            _remember_unkept(self._unkept_documents)  # deleted at next start after a crash
        self.viewer.show_document(document, password)
        self.timeline.set_document(document)
        warnings = " ".join(document.warnings)
        self.statusBar().showMessage(
            f"{document.title}: {document.page_count} pages, {len(document.text):,} characters. "
            + warnings
        )
        recent = [document.path] + [p for p in self.settings.recent_files if p != document.path]
        self.settings = self.settings.with_changes(recent_files=tuple(recent[:MAX_RECENT]))
        save_settings(self.settings)
        self._fill_recent()
        self._refresh_library()
        self.plan = None
        self.ask_panel._replan()
        self.document_opened.emit(document)
        self._show_pending_run()

    def _show_pending_run(self) -> None:
        run_id, self._run_after_open = self._run_after_open, None
        if run_id is not None:
            self.show_run(run_id, open_document=False)

    def _open_stored_document(self, document_id: int) -> None:
        if document_id != self.document_id:
            row = self.store.get_document_row(document_id)
            members = collections.members_of(self.store, document_id)
            if not members:
                self.open_file(row["path"])
                return
            # A collection: its files as they are now; one changed since is said, not hidden
            changes = collections.changed_members(members)
            if changes:
                QMessageBox.warning(
                    self,
                    "A document of the collection changed",
                    plain_html(
                        "; ".join(c.describe() for c in changes)
                        + ".\n\nIts stored runs show what was read then; new questions "
                        "read the files as they are now."
                    ),
                )
            present = [m.path for m in members if Path(m.path).exists()]
            if len(present) >= 2:
                self.open_files(present, row["title"])

    # -- planning and asking ----------------------------------------------------------
    def _want_plan(self, q_core: str, q_inst: str, mode: str) -> None:
        self.plan = None
        self._plan_key = (q_core, q_inst, mode)
        self.ask_panel.ask_button.setEnabled(False)
        if self.document is None or not self.model_loaded:
            return
        self.ask_panel.set_plan_text("Estimating…")
        self._plans_in_flight += 1
        self.request_plan.emit(self.document, Question("", q_core, q_inst, Mode(mode)))

    def _planned(self, plan: RunPlan, seconds: float) -> None:
        # The model thread answers plan requests in order: while newer ones are pending,
        # this plan is for an earlier question or mode and must not be used.
        self._plans_in_flight = max(0, self._plans_in_flight - 1)
        if self._plans_in_flight:
            return
        self.plan = plan
        if plan.mode == Mode.SINGLE_PASS:
            what = "Single pass"
        else:
            what = f"Memory agent · {len(plan.chunks)} steps"
        self.ask_panel.set_plan_text(f"{what} · about {human_duration(seconds)} - {plan.reason}.")
        self.ask_panel.ask_button.setEnabled(not self.busy)
        if self._pending_ask:
            pending, self._pending_ask = self._pending_ask, None
            self._ask(*pending)

    def _plan_failed(self, message: str) -> None:
        self._plans_in_flight = max(0, self._plans_in_flight - 1)
        if not self._plans_in_flight:
            self._pending_ask = None
            self.ask_panel.set_plan_text(message)

    def _ask(self, question: str, q_core: str, q_inst: str, mode: str) -> None:
        if self.document is None or self.document_id is None or self.busy:
            return
        if not self.model_loaded and self.model_busy.isHidden():
            # Unloaded earlier: load again first; the model thread handles requests in
            # order, so the plan and the ask queued next run once it is loaded.
            self._load_model()
        if self.plan is None or self._plan_key != (q_core, q_inst, mode):
            # No plan yet, or one made for another question or mode: plan, then ask.
            self._pending_ask = (question, q_core, q_inst, mode)
            self._want_plan(q_core, q_inst, mode)
            return
        session_id = self.store.create_session(self.document_id, question[:120])
        self.ask_panel.clear_answer()
        plan = replace(self.plan, question=Question(question, q_core, q_inst, Mode(mode)))
        self.request_ask.emit(self.document, self.document_id, session_id, plan)

    def ask(self, question: str, mode: str = "auto") -> None:
        """Programmatic ask (tests, self-test): fills the box and asks when planned."""
        self.ask_panel.set_question(question)
        self.ask_panel.mode.setCurrentIndex(self.ask_panel.mode.findData(mode))
        p = self.ask_panel
        self._ask(question, p.q_core.text(), p.q_inst.text(), mode)

    def cancel_run(self) -> None:
        self.model.worker.cancel()  # harmless when idle: the next run gets a fresh token
        if self.busy:
            self.statusBar().showMessage("Cancelling… finished steps are kept.")

    def resume_run(self) -> None:
        if self.run_id is None or self.busy:
            return
        run = self.store.get_run(self.run_id)
        if (
            self.document is None
            or self.document.sha256 != self.store.get_document_row(run.document_id)["sha256"]
        ):
            QMessageBox.information(self, "Resume", "Open the run's document first.")
            return
        self.request_resume.emit(self.run_id, self.document)

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.timeline.set_running(busy)
        self.ask_panel.ask_button.setEnabled(not busy and self.plan is not None)

    # -- events from the engine -------------------------------------------------------
    def _on_event(self, event: object) -> None:
        if isinstance(event, RunStarted):
            self.run_id = event.run_id
            page_count = self.document.page_count if self.document else 1
            if event.resumed_from:
                run = self.store.get_run(event.run_id)
                self.timeline.load(run.chunks, run.steps, page_count, run.mode, RunStatus.RUNNING)
            else:
                self.timeline.start(event.chunks, page_count, event.mode)
            self.timeline.set_running(True)
            self._refresh_history()
        elif isinstance(event, StepStarted):
            self.timeline.step_started(event.chunk)
        elif isinstance(event, TokenStreamed):
            if event.step < 0:
                self.ask_panel.stream(event.text, event.thinking)
            else:
                self.timeline.token(event.text, event.thinking)
        elif isinstance(event, StepFinished):
            self.timeline.add_step(event.step, event.memory_diff, event.eta_s)
            self.statusBar().clearMessage()  # a wait for the database, if any, is over
        elif isinstance(event, DatabaseWaiting):
            self.statusBar().showMessage(
                f"Waiting for the database: {event.reason} {event.what.capitalize()} is kept "
                f"in memory; retrying for up to {human_duration(event.limit_s)} "
                f"(waited {human_duration(event.waited_s)})…"
            )
        elif isinstance(event, AnswerStarted):
            self.ask_panel.clear_answer()
            self.statusBar().showMessage("Writing the answer…")
        elif isinstance(event, RunFinished):
            self._show_answer(event.run_id)
            self._ended(RunStatus.FINISHED, "Answered.")
        elif isinstance(event, RunCancelled):
            self._ended(
                RunStatus.CANCELLED, f"Cancelled after {event.steps_done} steps; they are saved."
            )
        elif isinstance(event, RunFailed):
            self._ended(RunStatus.FAILED, "The run failed; finished steps are saved.")
            QMessageBox.warning(self, "The run failed", plain_html(event.message))

    def _ended(self, status: str, message: str) -> None:
        # The run is over with its last event: closing the window now must not ask
        # whether to stop it (the worker's own "not busy" arrives a moment later).
        self._set_busy(False)
        self.timeline.finish(status)
        self.statusBar().showMessage(message)
        self._refresh_history()
        self.run_ended.emit(status)

    def _show_answer(self, run_id: int) -> None:
        """The answer with its citations: page numbers that open the passage, and claims
        with no located support marked as such."""
        run = self.store.get_run(run_id)
        if run.answer is None or run.answer_id is None:
            return
        rows = self.store.list_evidence(run.answer_id)
        self.citations = rows
        evidence = [evidence_from_row(r) for r in rows]
        lines = [run.answer.text, "", "**Sources**", ""]
        cited = cite_answer(run.answer.text, evidence, run.question)
        if not cited:
            lines.append("- *Nothing to cite: the answer only repeats the question or prompt.*")
        for claim, backing in cited:
            if backing:
                links = ", ".join(
                    f"[{self._cite_label(rows[evidence.index(e)], e.page)}]"
                    f"(cite:{evidence.index(e)})"
                    for e in backing
                )
                lines.append(f"- {claim} - {links}")
            else:
                lines.append(f"- {claim} - *unsupported: no passage found in the document*")
        self.ask_panel.show_answer("\n".join(lines), run.answer.stats.thinking)

    def _cite_label(self, row: dict[str, Any], page: int) -> str:
        """ "p. 14", or in a collection the document and its own page: "Lease, p. 14"."""
        doc = self.document
        if doc is not None and doc.members and row.get("char_end", 0) <= len(doc.text):
            return doc.cite(int(row["char_start"]), int(row["char_end"]))
        return f"p. {page}"

    def _open_citation(self, index: int) -> None:
        if 0 <= index < len(self.citations):
            row = self.citations[index]
            self.viewer.mark_span(row["char_start"], row["char_end"])
            self.statusBar().showMessage(f"Page {row['page']}: {row['quote'][:120]}")

    def _show_step(self, step: StepRecord) -> None:
        self.viewer.mark_span(step.chunk.start, step.chunk.end)

    def _show_passage(self, start: int, end: int) -> None:
        """A memory line's evidence, clicked in the timeline: its passage highlighted."""
        self.viewer.mark_span(start, end)
        if self.document is not None:
            quote = " ".join(self.document.text[start:end].split())
            self.statusBar().showMessage(f"Page {self.document.page_of(start)}: {quote[:120]}")

    # -- history ------------------------------------------------------------------------
    def _refresh_library(self) -> None:
        self.library.set_documents(self.store.list_documents(), self.document_id)
        self._refresh_history()

    def _refresh_history(self) -> None:
        search = self.library.search.text().strip() or None
        sessions = self.store.list_sessions(document_id=self.document_id, search=search)
        self.library.set_history([(s, self.store.list_runs(s["id"])) for s in sessions])

    def compare_runs(self, left_id: int, right_id: int) -> None:
        from app.evidence.compare import compare_runs
        from app.gui.compare_dialog import CompareDialog

        try:
            comparison = compare_runs(self.store, left_id, right_id)
        except UserError as error:
            QMessageBox.information(self, "Compare runs", plain_html(str(error)))
            return
        self.compare_dialog = CompareDialog(comparison, self)
        self.compare_dialog.show()

    def show_run(self, run_id: int, open_document: bool = True) -> None:
        """Reopen a stored run exactly as recorded, with its document in the viewer (so
        its citations work and an interrupted run can be resumed, also after a restart)."""
        run = self.store.get_run(run_id)
        if open_document and run.document_id != self.document_id:
            self._run_after_open = run_id
            self.open_file(self.store.get_document_row(run.document_id)["path"])
            return
        self.run_id = run_id
        page_count = self.document.page_count if self.document else 1
        self.timeline.load(run.chunks, run.steps, page_count, run.mode, run.status)
        self.ask_panel.question.blockSignals(True)
        self.ask_panel.question.setPlainText(run.question)
        self.ask_panel.question.blockSignals(False)
        self.ask_panel.q_core.setText(run.q_core)
        self.ask_panel.q_inst.setText(run.q_inst)
        if run.answer is not None:
            self._show_answer(run_id)
        else:
            self.ask_panel.clear_answer()

    # -- closing ------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.busy:
            answer = QMessageBox.question(
                self,
                "A run is in progress",
                "Stop the run and quit? Every finished step is kept; you can resume later.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.model.stop()
        self._forget_unkept(everything=True)
        event.accept()

    def _forget_unkept(self, everything: bool = False) -> None:
        """Delete protected documents whose runs the user chose not to keep (their rows
        cascade to sessions, runs, steps, answers, evidence), except the one still open
        while a run on it may be going."""
        for document_id in list(self._unkept_documents):
            if not everything and (document_id == self.document_id and self.busy):
                continue
            try:
                self.store.delete_document(document_id)
                # secure_delete zeroed the pages; truncating the WAL drops old frames.
                self.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except (UserError, sqlite3.Error):
                continue  # busy or read-only: tried again next time and at next start
            self._unkept_documents.discard(document_id)
        _remember_unkept(self._unkept_documents)
