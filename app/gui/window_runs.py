"""The main window's runs: a plan asked for as the question is typed, the ask, cancel and
resume, and the engine's events shown as they arrive."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import QMessageBox

from app.agent.events import (
    AnswerStarted,
    DatabaseWaiting,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    TokenStreamed,
)
from app.agent.planning import RunPlan
from app.gui.safe_text import plain_html
from app.gui.window_state import WindowState
from app.llm.backend import CancelToken
from app.records import Mode, Question, RunStatus
from app.units import human_duration

WAITING = "Waiting for the database:"


class WindowRuns(WindowState):
    _plan_key: tuple[str, str, str] | None  # the question and mode the plan is for
    _plans_in_flight: int

    def _want_plan(self, q_core: str, q_inst: str, mode: str) -> None:
        self.plan = None
        self._plan_key = (q_core, q_inst, mode)
        self.ask_panel.ask_button.setEnabled(False)
        if self.document is None:
            self.ask_panel.set_plan_text("Open a document to see the plan.")
            return
        if not self.model_loaded:
            self.ask_panel.set_plan_text("The plan follows once the model is loaded.")
            return
        if not q_core.strip():
            self.ask_panel.set_plan_text("Type a question to see the plan and how long it takes.")
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
        self.request_ask.emit(self.document, self.document_id, session_id, plan, self._started())

    def _started(self) -> CancelToken:
        """Busy from the moment a run is asked for, not from when the model thread takes
        it up (it may still be loading the model or planning): a Cancel or a close in
        between must reach the run."""
        self._run_cancel = CancelToken()
        self._set_busy(True)
        return self._run_cancel

    def ask(self, question: str, mode: str = Mode.AUTO.value) -> None:
        """Programmatic ask (tests, self-test): fills the box and asks when planned."""
        self.ask_panel.set_question(question)
        self.ask_panel.mode.setCurrentIndex(self.ask_panel.mode.findData(mode))
        p = self.ask_panel
        self._ask(question, p.q_core.text(), p.q_inst.text(), mode)

    def cancel_run(self) -> None:
        self._run_cancel.cancel()  # harmless when idle: the next run gets a fresh token
        self.model.worker.cancel()  # and a model load, if one is under way
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
        cancel = self._started()
        self.timeline.resume_button.hide()  # until the run's first event: it is resuming
        self.timeline.progress.setFormat("Resuming…")
        self.request_resume.emit(self.run_id, self.document, cancel)

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.timeline.set_running(busy)
        self.ask_panel.ask_button.setEnabled(not busy and self.plan is not None)

    # -- events from the engine -------------------------------------------------------
    def _on_event(self, event: object) -> None:
        if isinstance(event, RunStarted):
            self.run_id = event.run_id
            self.statusBar().clearMessage()  # e.g. the last run's "Cancelled after…"
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
            if self.statusBar().currentMessage().startswith(WAITING):
                self.statusBar().clearMessage()  # the wait is over; other messages stay
        elif isinstance(event, DatabaseWaiting):
            self.statusBar().showMessage(
                f"{WAITING} {event.reason} {event.what.capitalize()} is kept "
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
