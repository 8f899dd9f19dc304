"""What the engine needs of a store: exactly the calls it makes, typed.

``app.store.database.Store`` implements it; tests may pass anything shaped like it. The
agent never imports the store: it depends on this protocol, the store on app.records.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from app.llm.backend import ModelIdentity
from app.records import (
    AnswerRecord,
    Chunk,
    Evidence,
    Mode,
    Question,
    RunRecord,
    RunStatus,
    StepRecord,
)


class RunLock(Protocol):
    """Held while a run is read; released when the reading stops."""

    def release(self) -> None: ...


class RunStore(Protocol):
    """Each write is its own transaction, committed before it returns; a locked
    database raises app.errors.DatabaseBusy, other failures app.errors.StoreError."""

    @property
    def path(self) -> Path: ...

    def create_run(
        self,
        session_id: int,
        document_id: int,
        question: Question,
        mode: Mode,
        mode_reason: str,
        model: ModelIdentity,
        settings: dict[str, Any],
        chunks: Sequence[Chunk],
    ) -> int: ...

    def lock_wait_at_most(self, seconds: float) -> AbstractContextManager[None]:
        """Writes in the block wait at most ``seconds`` for another program's lock."""
        ...

    def hold_run(self, run_id: int) -> RunLock | None:
        """The run's lock, or None while another process or window holds it."""
        ...

    def get_run(self, run_id: int) -> RunRecord: ...

    def set_run_status(self, run_id: int, status: RunStatus, error: str | None = None) -> None: ...

    def save_step(self, run_id: int, step: StepRecord) -> None: ...

    def save_answer(self, run_id: int, answer: AnswerRecord) -> int: ...

    def save_evidence(self, answer_id: int, run_id: int, items: Sequence[Evidence]) -> None: ...
