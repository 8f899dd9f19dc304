"""The main window's documents: opening files, folders and collections (a file dialog,
drag and drop, recent files, history), and what a protected or damaged file asks first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMessageBox

from app.documents.ingest import SUPPORTED_FORMATS, load_with_passwords
from app.documents.model import Document, DocumentDamaged
from app.errors import PasswordRequired
from app.gui.safe_text import plain_html
from app.gui.window_state import WindowState
from app.gui.workers import Task, start_task
from app.settings import save_settings
from app.store import collections
from app.units import count_of

# From ingestion's list, so a new format is offered as soon as it can be read. "All files"
# stays: a file is read by its content, whatever its name (documents/formats.py).
FILE_FILTER = (
    f"Documents ({' '.join('*' + ext for ext in SUPPORTED_FORMATS)});;"
    "Word documents (*.docx);;Web pages (*.html *.htm *.xhtml);;All files (*)"
)
MAX_RECENT = 10


class WindowDocuments(WindowState):
    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
        self.recent_menu.setEnabled(bool(self.settings.recent_files))

    def _save_recent(self, paths: list[str]) -> None:
        """File > Open recent, newest first, kept in the settings."""
        self.settings = self.settings.with_changes(recent_files=tuple(paths[:MAX_RECENT]))
        save_settings(self.settings)
        self._fill_recent()

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
            # The same files in another order keep what was entered for them: the
            # passwords (in memory) and the answer about keeping a protected one's runs;
            # a newly added protected file is still asked for its own password.
            keep = bool(doc and doc.protected and self.document_id not in self.unkept.ids)
            self.open_files(
                dialog.paths(), dialog.name.text().strip(), self.passwords, keep_runs=keep
            )

    def open_files(
        self,
        paths: list[str],
        name: str = "",
        passwords: Sequence[str] = (),
        accept_damaged: bool = False,
        keep_runs: bool | None = None,
    ) -> None:
        """Read several files or a folder as one collection (documents/collection.py).
        Each protected member opens with the first of ``passwords`` that fits it."""
        from app.documents.collection import load_collection

        if self._refused_while_running():
            return
        self.statusBar().showMessage(f"Opening {len(paths)} documents as a collection…")
        settings = self.settings
        passwords = list(passwords)

        def job(progress: Any) -> Document:
            return load_collection(
                paths,
                name=name,
                load=lambda path: load_with_passwords(
                    path,
                    passwords,
                    drop_headers_footers=settings.drop_headers_footers,
                    ocr=settings.ocr,
                    accept_damaged=accept_damaged,
                ),
            )

        def reopen(passwords: list[str], accept_damaged: bool, keep_runs: bool | None) -> None:
            self.open_files(paths, name, passwords, accept_damaged, keep_runs)

        self._start_open(job, passwords, accept_damaged, keep_runs, reopen)

    def open_file(
        self,
        path: str,
        passwords: Sequence[str] = (),
        accept_damaged: bool = False,
        keep_runs: bool | None = None,
    ) -> None:
        """Read one file (a folder: a collection). ``keep_runs`` None: ask, if the file
        turns out to be protected, once it is open."""
        if Path(path).is_dir():  # a folder (from history or recent files): a collection
            self.open_files([path], "", passwords, accept_damaged, keep_runs)
            return
        if self._refused_while_running():
            return
        if not Path(path).exists() and path in self.settings.recent_files:
            # Moved or deleted since: said by the failure below, and gone from the list.
            self._save_recent([p for p in self.settings.recent_files if p != path])
        shown = self.document
        if not passwords and shown is not None and shown.protected and shown.path == path:
            # The protected file already open, opened again: what opened it still does.
            passwords = self.passwords
            keep_runs = self.document_id not in self.unkept.ids
        self.statusBar().showMessage(f"Opening {Path(path).name}…")
        settings = self.settings
        passwords = list(passwords)

        def job(progress: Any) -> Document:
            return load_with_passwords(
                Path(path),
                passwords,
                drop_headers_footers=settings.drop_headers_footers,
                ocr=settings.ocr,
                progress=progress,
                accept_damaged=accept_damaged,
            )

        def reopen(passwords: list[str], accept_damaged: bool, keep_runs: bool | None) -> None:
            self.open_file(path, passwords, accept_damaged, keep_runs)

        self._start_open(job, passwords, accept_damaged, keep_runs, reopen)

    def _start_open(
        self,
        job: Callable[[Any], Document],
        passwords: list[str],
        accept_damaged: bool,
        keep_runs: bool | None,
        reopen: Callable[[list[str], bool, bool | None], None],
    ) -> None:
        """Read in a worker; a protected or damaged file asks, then ``reopen`` tries again
        with what the answers add (the same files, a collection's members included)."""
        task = Task(job)
        task.signals.progress.connect(
            lambda done, total: self.statusBar().showMessage(f"Reading page {done} of {total}…")
        )
        task.signals.done.connect(lambda doc: self._document_loaded(doc, passwords, keep_runs))
        task.signals.failed.connect(
            lambda message, error: self._document_failed(
                message, error, passwords, accept_damaged, keep_runs, reopen
            )
        )
        self._task = task  # keep the signals object alive until it reports
        start_task(task)

    def _document_failed(
        self,
        message: str,
        error: object,
        passwords: list[str],
        accept_damaged: bool,
        keep_runs: bool | None,
        reopen: Callable[[list[str], bool, bool | None], None],
    ) -> None:
        self.statusBar().clearMessage()
        self._show_pending_run()  # the stored run is still worth reading without its file
        if isinstance(error, PasswordRequired):
            # The file that needs it: in a collection, one member, whose password may
            # differ from the others'. Every password entered is tried on each member.
            name = Path(error.path).name if error.path else "the document"
            label = f"Password for {name}:"
            if passwords and error.path == self._password_asked_for:  # a wrong one
                label = f"That password does not open {name} (passwords are case-sensitive)."
                label += f"\n\nPassword for {name}:"
            elif passwords:  # the next protected member of a collection
                tried = (
                    "the password entered does not open it"
                    if len(passwords) == 1
                    else f"none of the {len(passwords)} passwords entered opens it"
                )
                label = f"{name} is protected too, and {tried}.\n\nPassword for {name}:"
            self._password_asked_for = error.path
            password, ok = QInputDialog.getText(
                self, "Password needed", label, QLineEdit.EchoMode.Password
            )
            if ok and password:
                more = passwords if password in passwords else [*passwords, password]
                reopen(more, accept_damaged, keep_runs)
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
                reopen(passwords, True, keep_runs)
            return
        QMessageBox.warning(self, "Could not open the document", plain_html(message))

    def _refused_while_running(self) -> bool:
        """A run shows its steps as they come: another document (or run) is opened once
        it has ended or been cancelled."""
        if self.busy:
            self.statusBar().showMessage(
                "A run is in progress: cancel it (finished steps are kept) or wait until it "
                "ends, then open another document or run.",
                10000,
            )
        return self.busy

    def _ask_keep_runs(self) -> bool:
        """Asked once a protected document is open (not before its password is known to
        be right): a run's memory, answer and citations quote the document, so they are
        kept only with consent (README). One answer for the whole document, however
        many members asked for their own password."""
        keep = QMessageBox.question(
            self,
            "Keep runs of this protected document?",
            "Keep the runs you make on this document in the history? Their memory, answers "
            "and cited passages quote it, readable without its password.\n\nNo: they are "
            "deleted when you close the document or the window. The document's text itself "
            "is never stored.",
            defaultButton=QMessageBox.StandardButton.No,
        )
        return keep == QMessageBox.StandardButton.Yes

    def _document_loaded(
        self, document: Document, passwords: list[str], keep_runs: bool | None = None
    ) -> None:
        if document.protected and keep_runs is None:
            keep_runs = self._ask_keep_runs()
        # the protected document shown before, if its runs go
        self.unkept.forget(self.store)
        # The passwords live in this window's memory only: never in settings, the
        # database or the log (README, "Protected documents").
        self.document, self.passwords = document, list(passwords)
        self.document_id = self.store.add_document(document)
        if document.protected and not keep_runs:
            self.unkept.add(self.document_id)  # deleted at next start after a crash
        self.viewer.show_document(document, self.passwords)
        # What was shown is of the document before: a run of this one is shown next if
        # one was asked for (history), else nothing until a question is asked.
        self.run_id, self.citations = None, []
        self.timeline.set_document(document)
        self.timeline.clear()
        self.ask_panel.clear_answer()
        warnings = " ".join(document.warnings)
        self.statusBar().showMessage(
            f"{document.title}: {count_of(document.page_count, 'page')}, "
            f"{count_of(len(document.text), 'character')}. {warnings}".strip()
        )
        others = [p for p in self.settings.recent_files if p != document.path]
        self._save_recent([document.path, *others])
        self._refresh_library()
        self.plan = None
        self._pending_ask = None  # asked of the document before: never run on this one
        self.ask_panel._replan()
        self.document_opened.emit(document)
        self._show_pending_run()

    def _show_pending_run(self) -> None:
        run_id, self._run_after_open = self._run_after_open, None
        if run_id is not None:
            self.show_run(run_id, open_document=False)

    def _open_stored_document(self, document_id: int) -> None:
        if document_id != self.document_id and self._refused_while_running():
            self._refresh_library()  # the list shows the open document selected again
            return
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
