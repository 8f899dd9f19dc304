"""What the main window's parts share: its signals, its state, and the calls between them.

``MainWindow`` (window.py) lays out the panels, builds the menus and wires the signals; its
behaviour comes from parts, one job each, every one a mixin on this base:
window_model.py (loading the model; settings), window_documents.py (opening documents,
collections and recent files), window_runs.py (planning, asking, cancelling, resuming; the
engine's events) and window_review.py (the answer with its citations, stored runs, history).
The state is set in ``MainWindow.__init__``; the annotations here let each part be checked
on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMainWindow

if TYPE_CHECKING:
    from PySide6.QtWidgets import QLabel, QMenu, QProgressBar

    from app.agent.planning import RunPlan
    from app.documents.model import Document
    from app.gui.ask_panel import AskPanel
    from app.gui.library import LibraryPanel
    from app.gui.timeline import TimelinePanel
    from app.gui.unkept import UnkeptDocuments
    from app.gui.viewer import DocumentViewer
    from app.gui.workers import ModelThread
    from app.llm.backend import CancelToken
    from app.settings import Settings
    from app.store.database import Store


class WindowState(QMainWindow):
    request_load = Signal(object)  # Settings
    request_unload = Signal()
    request_plan = Signal(object, object)  # Document, Question
    # Document, its id, session id, RunPlan, and the run's CancelToken (made when asked)
    request_ask = Signal(object, int, int, object, object)
    request_resume = Signal(int, object, object)  # run id, Document, CancelToken
    document_opened = Signal(object)  # Document: for tests and the self-test
    run_ended = Signal(str)  # final status
    model_ready = Signal()

    settings: Settings
    store: Store
    unkept: UnkeptDocuments
    model: ModelThread
    model_loaded: bool
    # the open document, and the run shown
    document: Document | None
    document_id: int | None
    passwords: list[str]  # opened the document; in memory only, never stored
    _password_asked_for: str | None
    plan: RunPlan | None
    _pending_ask: tuple[str, str, str, str] | None  # asked before its plan was ready
    run_id: int | None
    busy: bool  # a run asked for and not ended (set when asked, before the worker starts)
    _run_cancel: CancelToken  # the asked run's; the window's Cancel sets it
    citations: list[dict[str, Any]]  # the shown answer's evidence rows
    _run_after_open: int | None  # a stored run to show once its document is open
    # the widgets
    library: LibraryPanel
    viewer: DocumentViewer
    ask_panel: AskPanel
    timeline: TimelinePanel
    model_label: QLabel
    model_busy: QProgressBar
    recent_menu: QMenu

    if TYPE_CHECKING:  # defined by one part, called by another

        def _load_model(self) -> None: ...

        def _refused_while_running(self) -> bool: ...

        def open_file(self, path: str) -> None: ...

        def show_run(self, run_id: int, open_document: bool = True) -> None: ...

        def _show_answer(self, run_id: int) -> None: ...

        def _refresh_library(self) -> None: ...

        def _refresh_history(self) -> None: ...
