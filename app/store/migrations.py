"""Numbered, append-only schema migrations. Never edit one that has been released: add
the next number. PRAGMA user_version records how far a database has been migrated and
PRAGMA application_id marks the file as ours, so another program's SQLite file is never
taken for an empty database of ours.

Migrating takes the write lock (BEGIN IMMEDIATE) before it reads the version, so two
instances started at once on a new file cannot both apply the same migration."""

from __future__ import annotations

import contextlib
import sqlite3

M1_CORE = """
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            kind TEXT NOT NULL,
            title TEXT NOT NULL,
            page_count INTEGER NOT NULL,
            char_count INTEGER NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            text TEXT NOT NULL,
            added_at TEXT NOT NULL DEFAULT (datetime('now'))
        );
        CREATE UNIQUE INDEX documents_sha256 ON documents(sha256);
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            title TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (datetime('now')),
            updated_at TEXT NOT NULL DEFAULT (datetime('now'))
        );
        CREATE INDEX sessions_document ON sessions(document_id);
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            question TEXT NOT NULL,
            q_core TEXT NOT NULL,
            q_inst TEXT NOT NULL,
            mode TEXT NOT NULL,
            mode_reason TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'running',
            error TEXT,
            model_backend TEXT NOT NULL,
            model_name TEXT NOT NULL,
            model_path TEXT NOT NULL,
            model_sha256 TEXT NOT NULL,
            n_ctx INTEGER NOT NULL,
            settings TEXT NOT NULL,
            chunks TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (datetime('now')),
            finished_at TEXT
        );
        CREATE INDEX runs_session ON runs(session_id);
        CREATE TABLE steps (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            char_start INTEGER NOT NULL,
            char_end INTEGER NOT NULL,
            page_first INTEGER NOT NULL,
            page_last INTEGER NOT NULL,
            chunk_tokens INTEGER NOT NULL,
            memory TEXT NOT NULL,
            plan TEXT NOT NULL,
            thinking TEXT NOT NULL,
            raw_output TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            prompt_ms REAL NOT NULL,
            generation_ms REAL NOT NULL,
            wall_ms REAL NOT NULL,
            malformed INTEGER NOT NULL,
            stop_reason TEXT NOT NULL,
            notes TEXT NOT NULL DEFAULT '[]',
            saved_at TEXT NOT NULL DEFAULT (datetime('now')),
            PRIMARY KEY (run_id, idx)
        );
        CREATE TABLE answers (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            thinking TEXT NOT NULL,
            raw_output TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            prompt_ms REAL NOT NULL,
            generation_ms REAL NOT NULL,
            wall_ms REAL NOT NULL,
            cached_tokens INTEGER NOT NULL,
            stop_reason TEXT NOT NULL,
            notes TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL DEFAULT (datetime('now'))
        );
        CREATE INDEX answers_run ON answers(run_id);
        CREATE TABLE evidence (
            id INTEGER PRIMARY KEY,
            answer_id INTEGER NOT NULL REFERENCES answers(id) ON DELETE CASCADE,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            claim TEXT NOT NULL,
            quote TEXT NOT NULL,
            step_first INTEGER NOT NULL,
            step_last_changed INTEGER NOT NULL,
            char_start INTEGER NOT NULL,
            char_end INTEGER NOT NULL,
            page INTEGER NOT NULL,
            rects TEXT NOT NULL,
            confidence REAL NOT NULL,
            supported INTEGER NOT NULL
        );
        CREATE INDEX evidence_answer ON evidence(answer_id);
"""

# External-content FTS5 tables kept in sync by triggers: no second copy of the text.
M2_FULL_TEXT_SEARCH = """
        CREATE VIRTUAL TABLE documents_fts USING fts5(
            title, text, content='documents', content_rowid='id');
        INSERT INTO documents_fts(rowid, title, text) SELECT id, title, text FROM documents;
        CREATE TRIGGER documents_ai AFTER INSERT ON documents BEGIN
            INSERT INTO documents_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
        END;
        CREATE TRIGGER documents_ad AFTER DELETE ON documents BEGIN
            INSERT INTO documents_fts(documents_fts, rowid, title, text)
            VALUES ('delete', old.id, old.title, old.text);
        END;
        CREATE TRIGGER documents_au AFTER UPDATE OF title, text ON documents BEGIN
            INSERT INTO documents_fts(documents_fts, rowid, title, text)
            VALUES ('delete', old.id, old.title, old.text);
            INSERT INTO documents_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
        END;
        CREATE VIRTUAL TABLE steps_fts USING fts5(
            memory, plan, content='steps', content_rowid='rowid');
        INSERT INTO steps_fts(rowid, memory, plan) SELECT rowid, memory, plan FROM steps;
        CREATE TRIGGER steps_ai AFTER INSERT ON steps BEGIN
            INSERT INTO steps_fts(rowid, memory, plan) VALUES (new.rowid, new.memory, new.plan);
        END;
        CREATE TRIGGER steps_ad AFTER DELETE ON steps BEGIN
            INSERT INTO steps_fts(steps_fts, rowid, memory, plan)
            VALUES ('delete', old.rowid, old.memory, old.plan);
        END;
        CREATE TRIGGER steps_au AFTER UPDATE ON steps BEGIN
            INSERT INTO steps_fts(steps_fts, rowid, memory, plan)
            VALUES ('delete', old.rowid, old.memory, old.plan);
            INSERT INTO steps_fts(rowid, memory, plan) VALUES (new.rowid, new.memory, new.plan);
        END;
"""

# Schema 3: the full-text index is removed, not put to use. History search matches a
# session's title, questions and answers, a few thousand short rows at most, where LIKE
# takes milliseconds and also finds a part of a word (a figure, a name's stem); the
# indexes cost a write on every checkpoint, held a second copy of every document's
# words (most of a database's size), and went stale on a step rewritten by INSERT OR
# REPLACE (whose implicit delete fires no trigger). A step records its cached prompt
# tokens like an answer, so both rows hold the same call statistics (CallStats).
M3_NO_FULL_TEXT_INDEX = """
        DROP TRIGGER IF EXISTS documents_ai;
        DROP TRIGGER IF EXISTS documents_ad;
        DROP TRIGGER IF EXISTS documents_au;
        DROP TRIGGER IF EXISTS steps_ai;
        DROP TRIGGER IF EXISTS steps_ad;
        DROP TRIGGER IF EXISTS steps_au;
        DROP TABLE IF EXISTS documents_fts;
        DROP TABLE IF EXISTS steps_fts;
        ALTER TABLE steps ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
"""

# Schema 4: collections (app/documents/collection.py). A collection's joined text is a
# documents row of kind 'collection', so runs, resume, history, compare and export work on
# it as on any document; its members are rows here: each file's path, SHA-256 and title,
# and where it sits in the collection's text and pages, so a run read months later names
# every file it read and can tell whether one has changed on disk since. A named
# collection (`ask --collection NAME`) points at the documents row of its current members.
M4_COLLECTIONS = """
        CREATE TABLE document_members (
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            title TEXT NOT NULL,
            kind TEXT NOT NULL,
            char_start INTEGER NOT NULL,
            text_start INTEGER NOT NULL,
            char_end INTEGER NOT NULL,
            first_page INTEGER NOT NULL,
            page_count INTEGER NOT NULL,
            protected INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (document_id, position)
        );
        CREATE INDEX document_members_sha256 ON document_members(sha256);
        CREATE TABLE collections (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            document_id INTEGER REFERENCES documents(id) ON DELETE SET NULL,
            updated_at TEXT NOT NULL DEFAULT (datetime('now'))
        );
"""

MIGRATIONS: list[str] = [M1_CORE, M2_FULL_TEXT_SEARCH, M3_NO_FULL_TEXT_INDEX, M4_COLLECTIONS]
LATEST = len(MIGRATIONS)

APPLICATION_ID = 0x51574C52  # "QWLR" in the database header; 0 in files of earlier versions
# What a database made by an earlier version (no application_id yet) has: the first
# migration's tables, with columns no other program is likely to share.
_SIGNATURE = {
    "documents": {"sha256", "page_count", "char_count", "text"},
    "runs": {"q_core", "q_inst", "mode_reason", "model_sha256", "chunks"},
    "steps": {"run_id", "idx", "memory", "plan", "raw_output"},
}
EMPTY, OURS, EARLIER_OURS, FOREIGN = "empty", "ours", "earlier_ours", "foreign"


class ForeignSchema(Exception):
    """The file is a SQLite database, but another program's."""


class NewerSchema(Exception):
    def __init__(self, version: int) -> None:
        super().__init__(f"schema {version}")
        self.version = version


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def application_id(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA application_id").fetchone()[0])


def ownership(db: sqlite3.Connection) -> str:
    """EMPTY (no schema at all), OURS (our application_id), EARLIER_OURS (made by a
    version before the application_id: recognised by its tables) or FOREIGN. Reads only."""
    app_id = application_id(db)
    if app_id == APPLICATION_ID:
        return OURS
    if app_id != 0:
        return FOREIGN
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    if not names and schema_version(db) == 0:
        return EMPTY
    for table, columns in _SIGNATURE.items():
        if table not in names:
            return FOREIGN
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if not columns <= have:
            return FOREIGN
    return EARLIER_OURS if schema_version(db) >= 1 else FOREIGN


def check(db: sqlite3.Connection) -> str:
    """``ownership`` that raises for a file we must not touch. Its reads are one snapshot
    (a read transaction): read one by one, they could straddle another instance's
    migration commit and see its tables without the application_id read just before."""
    if db.in_transaction:
        kind = ownership(db)
    else:
        db.execute("BEGIN")
        try:
            kind = ownership(db)
        except BaseException:
            # the first error is the one to report (a COMMIT after a failed read would
            # only say that no transaction is active)
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    if kind == FOREIGN:
        raise ForeignSchema()
    version = schema_version(db)
    if version > LATEST:
        raise NewerSchema(version)
    return kind


def statements(script: str) -> list[str]:
    """A migration script as single statements (trigger bodies kept whole)."""
    out: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete statement in a migration: {buffer.strip()[:60]}")
    return out


def needs_work(db: sqlite3.Connection, target: int = LATEST) -> bool:
    return ownership(db) != OURS or schema_version(db) < target


def migrate(db: sqlite3.Connection, target: int = LATEST) -> None:
    """Apply pending migrations, each with its version bump in one transaction, and mark
    the file as ours. The version is read under the write lock, so a second instance
    migrating the same new file at the same moment waits, then finds nothing to do."""
    if not needs_work(db, target):
        return
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            check(db)  # again, under the lock: the file may have changed since
            version = schema_version(db)
            if version < target:
                for statement in statements(MIGRATIONS[version]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if version + 1 >= target:
            return
