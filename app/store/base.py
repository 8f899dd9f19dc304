"""The database file opened for one thread: one file, WAL mode, short transactions.

Each thread opens its own Store (sqlite3 connections belong to the thread that made
them). Writes run in short explicit transactions; two app instances can share a file
(WAL plus a busy timeout; migrations under the write lock). Errors the user can act on
become StoreError subclasses, so callers can tell a transient lock from a full disk.

The file is ours only if its header says so (PRAGMA application_id) or, for files of
earlier versions, its tables do: another program's database is refused before anything
is written to it. A file or folder that cannot be written is opened read-only, so a
copy on a DVD or a read-only share can still be reviewed.

StoreBase knows no table: the Store (database.py) adds the rows of documents, sessions
and runs; collections.py the members of collections.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import paths, private
from app.errors import DatabaseReadOnly, ForeignDatabase, StoreError
from app.store import migrations
from app.store.connection import (
    BUSY_TIMEOUT_MS,
    WRITABLE_HINT,
    connect_read_only,
    use_wal,
    user_message,
    write_blocker,
)
from app.store.sqlite_utils_import import import_sqlite_utils

if TYPE_CHECKING:
    from sqlite_utils import Database


class StoreBase:
    """One connection to the database file, made on this thread: checked, migrated,
    read-only where it cannot be written; its transactions and queries."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.in_memory = str(path) == ":memory:"  # one connection, gone when it closes
        self.read_only_reason = None if self.in_memory else write_blocker(self.path)
        self._copy: tempfile.TemporaryDirectory[str] | None = None
        try:
            if self.read_only_reason is None:
                if not self.in_memory:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                self._make_private()
                self.conn = sqlite3.connect(
                    self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
                )
                # Deleted rows are overwritten with zeros, not left readable in free pages.
                self.conn.execute("PRAGMA secure_delete = ON")
            else:
                self.conn, self._copy = connect_read_only(self.path, self.read_only_reason)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            kind = migrations.check(self.conn)  # reads only: nothing is written before
            if self.read_only_reason is None:
                if not self.in_memory:
                    use_wal(self.conn, self.path)
                migrations.migrate(self.conn)
            elif kind == migrations.EMPTY:
                self.close()
                raise DatabaseReadOnly(
                    f"{self.path} holds no QwenLong Reader data, and it cannot be set up "
                    f"because {self.read_only_reason}.",
                    hint=WRITABLE_HINT,
                )
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoint
        except (migrations.ForeignSchema, migrations.NewerSchema) as refusal:
            self.close()
            raise self._refusal(refusal) from None
        except sqlite3.Error as error:
            self.close()
            raise user_message(error, self.path, self.read_only_reason) from error
        self.db: Database = import_sqlite_utils().Database(self.conn)

    def _make_private(self) -> None:
        """Owner-only (it holds answers and excerpts of the user's documents): created
        0600 before SQLite opens it, so its -wal and -shm get 0600 too (SQLite gives them
        the database's mode). The app's own file from an older version is tightened."""
        if str(self.path) == ":memory:":
            return
        if not self.path.exists():
            private.create_private(self.path)
        elif self.path == paths.data_dir() / "reader.sqlite3":
            private.tighten(self.path)

    def _refusal(self, refusal: Exception) -> StoreError:
        if isinstance(refusal, migrations.NewerSchema):
            return StoreError(
                f"{self.path} was written by a newer version of QwenLong Reader "
                f"(schema {refusal.version}; this version knows {migrations.LATEST}).",
                hint="Update the app, or set QWENLONG_READER_DB to use another database.",
            )
        return ForeignDatabase(
            f"{self.path} is another program's SQLite database, not a QwenLong Reader one; "
            "it was left untouched.",
            hint="Set QWENLONG_READER_DB (or the database in Settings) to a QwenLong Reader "
            "database, or to a new file name for a new one.",
        )

    @property
    def writable(self) -> bool:
        return self.read_only_reason is None

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
        if self._copy is not None:
            self._copy.cleanup()
            self._copy = None

    def _read_only_error(self) -> DatabaseReadOnly:
        return DatabaseReadOnly(
            f"The database {self.path} is read-only ({self.read_only_reason}): runs can be "
            "reviewed, not written.",
            hint=WRITABLE_HINT,
        )

    @contextlib.contextmanager
    def lock_wait_at_most(self, seconds: float) -> Iterator[None]:
        """Writes in this block wait at most ``seconds`` (at least 0.1 s) for another
        program's lock, not the usual busy timeout: a caller that retries for a given time
        then keeps to it."""
        cut = max(100, int(seconds * 1000))
        was = int(self.conn.execute("PRAGMA busy_timeout").fetchone()[0])
        if cut >= was:
            yield
            return
        self.conn.execute(f"PRAGMA busy_timeout = {cut}")
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute(f"PRAGMA busy_timeout = {was}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error: never half a write."""
        if self.read_only_reason is not None:
            raise self._read_only_error()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as error:
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            raise user_message(error, self.path, self.read_only_reason) from error

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            return [dict(r) for r in self.conn.execute(sql, params)]
        except sqlite3.Error as error:
            raise user_message(error, self.path, self.read_only_reason) from error

    def _one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None
