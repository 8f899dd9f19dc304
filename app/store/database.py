"""The Store: the app's records as rows, a step committed the moment it finishes.

Documents, sessions, runs, steps, answers and evidence, each write its own transaction.
A run is live while its process holds the run's lock file (liveness.py); one left
'running' by a process that is gone reads as interrupted. Opening the file, its checks
and the transactions are StoreBase's (base.py); collections' members are collections.py's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app import paths
from app.documents.model import Document
from app.errors import (
    DatabaseBusy,
    DatabaseFull,
    DatabaseReadOnly,
    ForeignDatabase,
    StoreError,
)
from app.llm.backend import ModelIdentity
from app.records import (
    RESUMABLE,
    AnswerRecord,
    Chunk,
    Evidence,
    Mode,
    Question,
    RunRecord,
    RunStatus,
    StepRecord,
)
from app.store import collections, liveness
from app.store.base import StoreBase
from app.store.connection import user_message
from app.store.rows import (
    answer_from_row,
    answer_row,
    evidence_row,
    run_from_row,
    step_from_row,
    step_row,
)

log = logging.getLogger("app.store")

__all__ = ["DatabaseBusy", "DatabaseFull", "DatabaseReadOnly", "ForeignDatabase", "Store"]


def open_database(path: Path | None = None) -> Store:
    return Store(path or paths.database_path())


class Store(StoreBase):
    def __init__(self, path: Path) -> None:
        self._held_in_memory: set[int] = set()  # the in-memory database's run locks
        super().__init__(path)

    # -- documents ----------------------------------------------------------------------
    def add_document(self, doc: Document) -> int:
        """The document's row id; the same content opened from a new path updates the path."""
        existing = self.find_document(doc.sha256)
        with self.transaction() as c:
            if existing:
                c.execute("UPDATE documents SET path = ? WHERE id = ?", (doc.path, existing["id"]))
                if doc.protected:  # a copy of its text stored by an older version
                    c.execute("UPDATE documents SET text = '' WHERE id = ?", (existing["id"],))
                if doc.members:
                    collections.save_members(c, int(existing["id"]), doc.members)
                return int(existing["id"])
            cursor = c.execute(
                "INSERT INTO documents (path, sha256, kind, title, page_count, char_count, "
                "metadata, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    doc.path,
                    doc.sha256,
                    doc.kind,
                    doc.title,
                    doc.page_count,
                    len(doc.text),
                    json.dumps(doc.metadata),
                    # A password-protected document's text is never stored: the file, with
                    # its password, stays the only copy (README, "Protected documents").
                    "" if doc.protected else doc.text,
                ),
            )
            document_id = int(cursor.lastrowid or 0)
            if doc.members:  # a collection: which files, in which order (migration 4)
                collections.save_members(c, document_id, doc.members)
            return document_id

    def find_document(self, sha256: str) -> dict[str, Any] | None:
        return self._one("SELECT id, path, sha256 FROM documents WHERE sha256 = ?", (sha256,))

    def get_document_row(self, document_id: int) -> dict[str, Any]:
        row = self._one(
            "SELECT id, path, sha256, kind, title, page_count, char_count, metadata, added_at "
            "FROM documents WHERE id = ?",
            (document_id,),
        )
        if row is None:
            raise StoreError(f"Document {document_id} is not in the database.")
        return row

    def list_documents(self) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT d.id, d.path, d.sha256, d.kind, d.title, d.page_count, d.char_count, "
            "d.added_at, MAX(COALESCE(s.updated_at, d.added_at)) AS last_used FROM documents d "
            "LEFT JOIN sessions s ON s.document_id = d.id GROUP BY d.id ORDER BY last_used DESC"
        )

    def delete_document(self, document_id: int) -> None:
        with self.transaction() as c:  # sessions, runs, steps, answers, evidence cascade
            c.execute("DELETE FROM documents WHERE id = ?", (document_id,))

    # -- sessions -----------------------------------------------------------------------
    def create_session(self, document_id: int, title: str) -> int:
        with self.transaction() as c:
            cursor = c.execute(
                "INSERT INTO sessions (document_id, title) VALUES (?, ?)", (document_id, title)
            )
            return int(cursor.lastrowid or 0)

    def touch_session(self, session_id: int) -> None:
        with self.transaction():
            self._touch(session_id)

    def _touch(self, session_id: int) -> None:
        self.conn.execute(
            "UPDATE sessions SET updated_at = datetime('now') WHERE id = ?", (session_id,)
        )

    def list_sessions(
        self, document_id: int | None = None, search: str | None = None
    ) -> list[dict[str, Any]]:
        where: list[str] = []
        params: list[Any] = []
        if document_id is not None:
            where.append("s.document_id = ?")
            params.append(document_id)
        if search:
            # The words as typed: "%" and "_" are characters to find, not wildcards.
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            like = f"%{escaped}%"
            where.append(
                "(s.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM runs r LEFT JOIN "
                "answers a ON a.run_id = r.id WHERE r.session_id = s.id AND (r.question "
                "LIKE ? ESCAPE '\\' OR a.text LIKE ? ESCAPE '\\')))"
            )
            params += [like, like, like]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self._rows(
            f"SELECT s.id, s.document_id, s.title, s.created_at, s.updated_at FROM sessions s "
            f"{clause} ORDER BY s.updated_at DESC, s.id DESC",
            params,
        )

    def delete_session(self, session_id: int) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    # -- runs ---------------------------------------------------------------------------
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
    ) -> int:
        row = {
            "session_id": session_id,
            "document_id": document_id,
            "question": question.text,
            "q_core": question.q_core,
            "q_inst": question.q_inst,
            "mode": mode.value,
            "mode_reason": mode_reason,
            "model_backend": model.backend,
            "model_name": model.name,
            "model_path": model.path,
            "model_sha256": model.sha256,
            "n_ctx": model.n_ctx,
            "settings": json.dumps(settings),
            "chunks": json.dumps([asdict(ch) for ch in chunks]),
        }
        with self.transaction():
            run_id = self.db.table("runs").insert(row).last_rowid
            self._touch(session_id)
            return int(run_id or 0)

    def set_run_status(self, run_id: int, status: RunStatus, error: str | None = None) -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = CASE WHEN ? THEN "
                "datetime('now') ELSE NULL END WHERE id = ?",
                (status.value, error, status.ended, run_id),
            )

    def get_run(self, run_id: int) -> RunRecord:
        row = self._one("SELECT * FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise StoreError(
                f"Run {run_id} is not in the database.",
                hint="List stored runs with `python -m app sessions`.",
            )
        answer = self._one(
            "SELECT * FROM answers WHERE run_id = ? ORDER BY id DESC LIMIT 1", (run_id,)
        )
        return run_from_row(self._true_status(row), self.load_steps(run_id), answer)

    def list_runs(self, session_id: int) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT r.id, r.question, r.mode, r.status, r.created_at, r.model_name, "
            "json_array_length(r.chunks) AS chunk_count, "
            "(SELECT COUNT(*) FROM steps s WHERE s.run_id = r.id) AS steps_done "
            "FROM runs r WHERE r.session_id = ? ORDER BY r.id",
            (session_id,),
        )
        return [self._true_status(r) for r in rows]

    def unfinished_runs(self) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT r.id, r.session_id, r.document_id, r.question, r.status, "
            "json_array_length(r.chunks) AS chunk_count, "
            "(SELECT COUNT(*) FROM steps s WHERE s.run_id = r.id) AS steps_done "
            f"FROM runs r WHERE r.status IN ({', '.join('?' * len(RESUMABLE))}) "
            "ORDER BY r.id DESC",
            [s.value for s in RESUMABLE],
        )
        return [self._true_status(r) for r in rows]

    # -- liveness -------------------------------------------------------------------------
    def _lock_path(self, run_id: int) -> Path:
        return self.path.with_name(f"{self.path.name}-live") / f"run-{run_id}.lock"

    def hold_run(self, run_id: int) -> liveness.Lock | None:
        """The run's lock while this process reads it; None if another process (or
        window) holds it. The OS frees it when the process dies, however it dies."""
        if self.read_only_reason is not None:
            raise self._read_only_error()
        if self.in_memory:  # no other process can see this database
            if run_id in self._held_in_memory:
                return None
            self._held_in_memory.add(run_id)
            return liveness.InProcessLock(lambda: self._held_in_memory.discard(run_id))
        try:
            return liveness.acquire(self._lock_path(run_id))
        except OSError as error:
            raise user_message(error, self.path) from error

    def run_is_live(self, run_id: int) -> bool:
        if self.in_memory:
            return run_id in self._held_in_memory
        try:
            return liveness.is_held(self._lock_path(run_id))
        except OSError:
            return False

    def _true_status(self, row: dict[str, Any]) -> dict[str, Any]:
        """A run left 'running' by a process that is gone reads as 'interrupted' (also
        where the database is read-only and cannot be corrected)."""
        if row.get("status") == RunStatus.RUNNING and not self.run_is_live(int(row["id"])):
            return {**row, "status": RunStatus.INTERRUPTED.value}
        return row

    def mark_stale_running_as_interrupted(self) -> int:
        """Runs left 'running' by a process that died: no process holds their lock. Decided
        under the write lock, so a run that another process starts at this moment (it takes
        its lock, then writes 'running') is never caught in between. Housekeeping only: a
        read-only or busy database is left as it is (reads show the true status anyway)."""
        if self.read_only_reason is not None:
            return 0
        try:
            with self.transaction() as c:
                running = c.execute("SELECT id FROM runs WHERE status = ?", [RunStatus.RUNNING])
                ids = [r[0] for r in running]
                stale = [run_id for run_id in ids if not self.run_is_live(run_id)]
                if not stale:
                    return 0
                marks = ", ".join("?" * len(stale))
                cursor = c.execute(
                    f"UPDATE runs SET status = ? WHERE id IN ({marks})",
                    [RunStatus.INTERRUPTED.value, *stale],
                )
                return cursor.rowcount
        except (DatabaseBusy, DatabaseFull) as error:
            log.warning("left stale runs as they are: %s", error.message)
            return 0

    # -- steps and answers ----------------------------------------------------------------
    def recent_step_speeds(
        self, model_backend: str, model_path: str, limit: int = 20
    ) -> list[tuple[int, float, int, float]]:
        """(prompt tokens, prompt ms, generated tokens, generation ms) of the latest steps
        this model (backend and file or server) computed, newest first: its measured speed."""
        # The model's latest runs first (a small table), then their steps by primary key:
        # never a scan of every step's row, whose texts make them large.
        rows = self.db.execute(
            "SELECT prompt_tokens, prompt_ms, completion_tokens, generation_ms FROM steps "
            "WHERE run_id IN (SELECT id FROM runs WHERE model_backend = ? AND model_path = ? "
            "ORDER BY id DESC LIMIT 5) ORDER BY run_id DESC, idx DESC LIMIT ?",
            [model_backend, model_path, limit],
        ).fetchall()
        return [(int(a), float(b), int(c), float(d)) for a, b, c, d in rows]

    def save_step(self, run_id: int, step: StepRecord) -> None:
        """The checkpoint: one transaction, committed before the caller goes on."""
        with self.transaction():
            self.db.table("steps").insert(step_row(run_id, step), replace=True)

    def load_steps(self, run_id: int) -> list[StepRecord]:
        rows = self._rows("SELECT * FROM steps WHERE run_id = ? ORDER BY idx", (run_id,))
        return [step_from_row(r) for r in rows]

    def save_answer(self, run_id: int, answer: AnswerRecord) -> int:
        with self.transaction() as c:
            answer_id = self.db.table("answers").insert(answer_row(run_id, answer)).last_rowid
            c.execute(
                "UPDATE runs SET status = ?, error = NULL, finished_at = datetime('now') "
                "WHERE id = ?",
                (RunStatus.FINISHED.value, run_id),
            )
            return int(answer_id or 0)

    def latest_answer(self, run_id: int) -> AnswerRecord | None:
        row = self._one(
            "SELECT * FROM answers WHERE run_id = ? ORDER BY id DESC LIMIT 1", (run_id,)
        )
        return answer_from_row(row) if row else None

    # -- evidence -------------------------------------------------------------------------
    def save_evidence(self, answer_id: int, run_id: int, items: Sequence[Evidence]) -> None:
        """Replace the answer's evidence with ``items``."""
        with self.transaction() as c:
            c.execute("DELETE FROM evidence WHERE answer_id = ?", (answer_id,))
            if items:
                self.db.table("evidence").insert_all(
                    evidence_row(answer_id, run_id, e) for e in items
                )

    def list_evidence(self, answer_id: int) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM evidence WHERE answer_id = ? ORDER BY id", (answer_id,))
        for row in rows:
            row["rects"] = [(p, tuple(r)) for p, r in json.loads(row["rects"])]
            row["supported"] = bool(row["supported"])
        return rows
