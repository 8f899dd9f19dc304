"""Numbered, append-only schema migrations. Never edit one that has been released: add
the next number. PRAGMA user_version records how far a database has been migrated."""

from __future__ import annotations

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

MIGRATIONS: list[str] = [M1_CORE, M2_FULL_TEXT_SEARCH]
LATEST = len(MIGRATIONS)


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, target: int = LATEST) -> None:
    """Apply pending migrations, each with its version bump in one transaction."""
    for number in range(schema_version(db) + 1, target + 1):
        # One script, one transaction: a failed migration leaves the previous version.
        script = f"BEGIN IMMEDIATE;\n{MIGRATIONS[number - 1]}\nPRAGMA user_version = {number};"
        try:
            db.executescript(script + "\nCOMMIT;")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
