"""The main window: library | document viewer + question and answer | memory timeline.

Here the panels are laid out, the menus built and the signals wired; what the window does
comes from its parts (window_state.py lists them).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QMessageBox, QProgressBar, QSplitter

from app.gui.about import show_about
from app.gui.ask_panel import AskPanel
from app.gui.elided_label import ElidedLabel
from app.gui.library import LibraryPanel
from app.gui.theme import apply_theme
from app.gui.timeline import TimelinePanel
from app.gui.unkept import UnkeptDocuments
from app.gui.viewer import DocumentViewer
from app.gui.window_documents import WindowDocuments
from app.gui.window_model import WindowModel
from app.gui.window_review import WindowReview
from app.gui.window_runs import WindowRuns
from app.gui.workers import ModelThread
from app.llm.backend import CancelToken
from app.settings import Settings, load_settings, take_notices
from app.store.database import open_database

MODEL_LABEL_MAX_WIDTH = 560  # px: the rest of the status bar is for its messages


class MainWindow(WindowModel, WindowDocuments, WindowRuns, WindowReview):
    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("QwenLong Reader")
        self.setAcceptDrops(True)
        self.settings = settings or load_settings()
        apply_theme(self.settings.theme)
        self.store = open_database()
        self.store.mark_stale_running_as_interrupted()
        # Protected documents whose runs were not to be kept, left by a crash: delete now.
        self.unkept = UnkeptDocuments()
        self.unkept.forget(self.store)
        self.document = None
        self.document_id = None
        self.passwords = []  # what opened the shown document: in memory only
        self._password_asked_for: str | None = None  # the file last asked about
        self.plan = None
        self.run_id = None
        self.busy = False
        self._run_cancel = CancelToken()
        self.model_loaded = False
        self._pending_ask = None

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
        # The model's own name, plain text; no stretch, so that the status messages
        # (shown on the left) have the rest of the bar.
        self.model_label = ElidedLabel(MODEL_LABEL_MAX_WIDTH)
        self.model_label.setAccessibleName("Model status")
        self.statusBar().addPermanentWidget(self.model_label)
        # A message longer than its room (a document's warnings) is read whole by hovering.
        bar = self.statusBar()
        bar.messageChanged.connect(lambda message: bar.setToolTip(message))
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
        worker.model_reloading.connect(self._model_loading)
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
        self.citations = []
        self._run_after_open = None
        self._plan_key = None
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
        self.export_action = QAction("&Export this run…", self, shortcut=QKeySequence("Ctrl+E"))
        self.export_action.triggered.connect(self.export_run)
        file_menu.addAction(self.export_action)
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
        about.triggered.connect(self.about_model)
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
        self.unkept.forget(self.store)
        event.accept()
