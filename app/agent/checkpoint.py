"""Writing a run's results: each one committed before the engine announces it.

A write that finds the database locked by another program, or its disk full, waits and
retries (sending DatabaseWaiting) for minutes, not the 5 s busy timeout; a computed step
or answer whose write still fails is kept in memory for this process's life, and in a
side file (app/agent/unsaved.py) for the next process, and written first on resume, so
the model is not asked again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TypeVar

from app.agent.events import DatabaseWaiting, Event
from app.agent.run_store import RunStore
from app.agent.unsaved import read_unsaved, write_unsaved
from app.errors import DatabaseBusy, DatabaseFull, StoreError
from app.llm.backend import CancelToken
from app.records import AnswerRecord, RunStatus, StepRecord

log = logging.getLogger("app.agent")

T = TypeVar("T")

# How long a checkpoint waits for a database another program has locked, or for room on
# its full disk, before the run stops (resumable, the step kept in memory and in a side
# file). QWENLONG_READER_DB_WAIT overrides it.
DB_WAIT_S = 300.0
DB_WAIT_ENV = "QWENLONG_READER_DB_WAIT"
_NOTICE_EVERY_S = 10.0

# Computed but not yet written (database locked, disk full): per database file and run,
# for the whole life of the process, so a retry by a new Engine (the window makes one per
# run) writes them instead of asking the model again.
_UNSAVED_STEPS: dict[str, dict[int, list[StepRecord]]] = {}
_UNSAVED_ANSWERS: dict[str, dict[int, AnswerRecord]] = {}
_SPILLED: dict[str, dict[int, Path]] = {}  # runs whose unsaved results are in a side file
_LOADED: set[str] = set()  # databases whose side files this process has read


def default_db_wait() -> float:
    try:
        return max(0.0, float(os.environ.get(DB_WAIT_ENV, "")))
    except ValueError:
        return DB_WAIT_S


class Checkpoints:
    """The engine's writes to ``store``, retried while the database is locked."""

    def __init__(self, store: RunStore, db_wait_s: float | None = None) -> None:
        self.store = store
        self.db_wait_s = default_db_wait() if db_wait_s is None else db_wait_s
        where = str(store.path)
        self.unsaved_steps = _UNSAVED_STEPS.setdefault(where, {})
        self.unsaved_answers = _UNSAVED_ANSWERS.setdefault(where, {})
        self.spilled = _SPILLED.setdefault(where, {})
        self.on_disk = where != ":memory:"  # an unsaved run (protected document): no file
        if self.on_disk and where not in _LOADED:
            _LOADED.add(where)
            self._load_side_files()

    def _load_side_files(self) -> None:
        """What an earlier process computed and could not write, for resume to write."""
        path = Path(self.store.path)
        for run_id, (steps, answer) in read_unsaved(path).items():
            pending = self.unsaved_steps.setdefault(run_id, [])
            known = {step.index for step in pending}
            pending.extend(step for step in steps if step.index not in known)
            pending.sort(key=lambda step: step.index)
            if not pending:
                self.unsaved_steps.pop(run_id, None)
            if answer is not None:
                self.unsaved_answers.setdefault(run_id, answer)
            self.spilled[run_id] = path

    def spill(self, run_id: int) -> Path | None:
        """Write ``run_id``'s unsaved results to its side file (or remove the file when
        none are left); the file, or None."""
        if not self.on_disk:
            return None
        steps = self.unsaved_steps.get(run_id, [])
        answer = self.unsaved_answers.get(run_id)
        if not steps and answer is None and run_id not in self.spilled:
            return None
        kept = write_unsaved(Path(self.store.path), run_id, steps, answer)
        if kept is None:
            self.spilled.pop(run_id, None)
        else:
            self.spilled[run_id] = kept
        return kept

    def pending(self, run_id: int) -> int:
        """How many computed results of ``run_id`` wait to be written."""
        return len(self.unsaved_steps.get(run_id, [])) + (run_id in self.unsaved_answers)

    def persist(
        self, run_id: int, what: str, write: Callable[[], T], cancel: CancelToken
    ) -> Generator[Event, None, T]:
        """``write()``, retried for up to ``db_wait_s`` while another program holds the
        database's lock or its disk is full (what was computed stays in memory meanwhile);
        DatabaseWaiting goes out every few seconds, saying which. No try waits for a lock
        past the end of the wait (SQLite's busy timeout is cut to what is left)."""
        began = time.monotonic()
        notice = -_NOTICE_EVERY_S
        while True:
            try:
                with self.store.lock_wait_at_most(self.db_wait_s - (time.monotonic() - began)):
                    return write()
            except (DatabaseBusy, DatabaseFull) as error:
                full = isinstance(error, DatabaseFull)
                now = time.monotonic()
                waited = now - began
                if waited >= self.db_wait_s:
                    raise self._given_up(error, what, waited) from error
                if now - notice >= _NOTICE_EVERY_S:
                    notice = now
                    reason = error.message + (" Free some space on that disk." if full else "")
                    yield DatabaseWaiting(run_id, what, waited, self.db_wait_s, reason)
                pause = now + min(1.0, self.db_wait_s - waited)
                while time.monotonic() < pause:
                    cancel.raise_if_cancelled()
                    time.sleep(0.05)
                cancel.raise_if_cancelled()

    def _given_up(self, error: StoreError, what: str, waited: float) -> StoreError:
        """The end of the wait, said as it is; how to resume is the engine's to add."""
        if isinstance(error, DatabaseFull):
            return DatabaseFull(
                f"The disk holding the database {self.store.path} stayed full for "
                f"{waited:.0f} s while {what} waited to be saved; the run stopped.",
                hint="Free some space on that disk.",
            )
        return DatabaseBusy(
            f"The database stayed locked by another program for {waited:.0f} s "
            f"while {what} waited to be saved; the run stopped.",
            hint="Close the program that holds it (another app with the file open).",
        )

    def save_step(
        self, run_id: int, step: StepRecord, cancel: CancelToken
    ) -> Generator[Event, None, None]:
        """The checkpoint: the step is held in memory until the store has it."""
        pending = self.unsaved_steps.setdefault(run_id, [])
        if step not in pending:
            pending.append(step)
        try:
            yield from self.persist(
                run_id,
                f"step {step.index + 1}",
                lambda: self.store.save_step(run_id, step),
                cancel,
            )
        except BaseException:  # given up, cancelled, disk full: the next process has it
            self.spill(run_id)
            raise
        self.forget_step(run_id, step)

    def forget_step(self, run_id: int, step: StepRecord) -> None:
        pending = self.unsaved_steps.get(run_id, [])
        if step in pending:
            pending.remove(step)
        if not pending:
            self.unsaved_steps.pop(run_id, None)
        if run_id in self.spilled:
            self.spill(run_id)

    def save_answer(
        self, run_id: int, answer: AnswerRecord, cancel: CancelToken
    ) -> Generator[Event, None, int]:
        self.unsaved_answers[run_id] = answer  # until it is written
        try:
            answer_id = yield from self.persist(
                run_id, "the answer", lambda: self.store.save_answer(run_id, answer), cancel
            )
        except BaseException:
            self.spill(run_id)
            raise
        self.unsaved_answers.pop(run_id, None)
        if run_id in self.spilled:
            self.spill(run_id)
        return answer_id

    def set_status_quietly(self, run_id: int, status: RunStatus, error: str | None = None) -> None:
        """One try, hardly waiting (half a second for a lock): the run is ending anyway."""
        if not run_id:
            return
        try:
            with self.store.lock_wait_at_most(0.5):
                self.store.set_run_status(run_id, status, error)
        except StoreError as failure:
            log.warning("could not record status %s of run %s: %s", status, run_id, failure)
