"""The main window's review of runs: the answer with its citations, a step's or a memory
line's passage in the viewer, stored runs reopened exactly as recorded, the history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.errors import UserError, describe_error
from app.evidence.provenance import cite_answer, evidence_from_row
from app.gui.safe_text import plain_html
from app.gui.window_state import WindowState
from app.records import StepRecord


class WindowReview(WindowState):
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
        if self.busy:  # the running run's timeline stays; another is opened after it
            if run_id != self.run_id:
                self._refused_while_running()
            return
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
        self.ask_panel._replan()  # the same question can be asked again at once
        if run.answer is not None:
            self._show_answer(run_id)
        else:
            self.ask_panel.clear_answer()

    def export_run(self, folder: str = "") -> None:
        """File > Export: the shown run's report (Markdown, PDF, JSON evidence bundle), as
        the ``export`` command writes it, into a folder the user picks."""
        if self.run_id is None:
            self.statusBar().showMessage(
                "Nothing to export yet: ask a question, or open a run from the history.", 8000
            )
            return
        if not folder:
            folder = QFileDialog.getExistingDirectory(
                self, f"Export run {self.run_id}: choose a folder for its report"
            )
            if not folder:
                return
        from app.evidence.report import export_run

        try:
            written = export_run(self.store, self.run_id, Path(folder))
        except Exception as error:  # noqa: BLE001 - a full disk, a folder not writable...
            QMessageBox.warning(self, "Export failed", plain_html(describe_error(error)))
            return
        names = ", ".join(path.name for path in written.values())
        self.statusBar().showMessage(f"Exported run {self.run_id} to {folder}: {names}.")
