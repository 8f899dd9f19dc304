"""Opening the database file: what a failure means to the user, whether the file can be
written, a read-only connection that misses no page, and WAL mode.

StoreBase (base.py) opens its connection with these; nothing here knows a table.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from app.errors import DatabaseBusy, DatabaseFull, DatabaseReadOnly, StoreError

log = logging.getLogger("app.store")

BUSY_TIMEOUT_MS = 5000

# Primary SQLite result codes (error.sqlite_errorcode & 0xff).
_BUSY, _LOCKED, _READONLY, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 11, 13, 14, 26


WRITABLE_HINT = (
    "To ask or resume, copy the database to a writable folder and point "
    "QWENLONG_READER_DB at the copy, or make the file and its folder writable."
)


def user_message(
    error: BaseException, path: Path, read_only_reason: str | None = None
) -> StoreError:
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(error).lower()
    if (
        primary == _FULL
        or "full" in text
        or (isinstance(error, OSError) and error.errno == errno.ENOSPC)
    ):
        return DatabaseFull(
            f"The disk holding {path} is full; the last step was not saved.",
            hint="Free some space and press Resume: nothing finished is lost.",
        )
    if primary == _READONLY or "readonly" in text or "read-only" in text:
        why = read_only_reason or "the file or its folder is read-only"
        return DatabaseReadOnly(
            f"The database {path} is read-only ({why}): runs can be reviewed, not written.",
            hint=WRITABLE_HINT,
        )
    if primary in (_BUSY, _LOCKED) or "locked" in text or "busy" in text:
        return DatabaseBusy(
            f"The database {path} is locked by another program.",
            hint="Close other programs (or QwenLong Reader windows) writing to it, then retry.",
        )
    if primary in (_NOTADB, _CORRUPT) or "not a database" in text or "malformed" in text:
        return StoreError(
            f"{path} is not a QwenLong Reader database or is damaged.",
            hint="Move it aside (the app then starts a new one) or restore it from a backup.",
        )
    if primary == _CANTOPEN or "unable to open" in text:
        return StoreError(
            f"The database {path} cannot be opened ({error}).",
            hint="Check that its folder exists and that you may read it, or set "
            "QWENLONG_READER_DB to another file.",
        )
    return StoreError(f"Database error in {path}: {error}")


def _writable(path: Path) -> bool:
    """Writable, and not marked read-only: the permission bits are honoured even for an
    administrator, who could write anyway (a file copied off a DVD keeps its r--)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return os.access(path, os.W_OK) and bool(mode & 0o222)


def write_blocker(path: Path) -> str | None:
    """Why the database at ``path`` cannot be written (or made), or None if it can."""
    if path.exists():
        if not _writable(path.parent):  # WAL needs its -wal and -shm files beside it
            return f"its folder {path.parent} is read-only"
        if not _writable(path):
            return f"the file {path.name} is read-only"
        return None
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not _writable(folder):
        return f"the folder {folder} is read-only"
    return None


def connect_read_only(
    path: Path, read_only_reason: str | None
) -> tuple[sqlite3.Connection, tempfile.TemporaryDirectory[str] | None]:
    """mode=ro where the folder takes the -shm file WAL readers need; else immutable
    (nothing is created beside the file). A folder that cannot be written but holds
    a -wal with unmerged pages is read from a temporary copy, so no page is missed."""
    if not path.exists():
        raise DatabaseReadOnly(
            f"There is no database at {path}, and none can be made there: {read_only_reason}.",
            hint="Set QWENLONG_READER_DB to a file in a writable folder.",
        )
    source = path.resolve()
    copy_dir = None
    wal = source.with_name(source.name + "-wal")
    if _writable(source.parent):
        query = "mode=ro"
    elif wal.exists() and wal.stat().st_size > 0:
        copy_dir = tempfile.TemporaryDirectory(prefix="qwenlong-ro-")
        copy = Path(copy_dir.name) / source.name
        shutil.copyfile(source, copy)
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        source, query = copy, "mode=ro"
    else:
        query = "immutable=1"
    conn = sqlite3.connect(
        f"{source.as_uri()}?{query}",
        uri=True,
        isolation_level=None,
        timeout=BUSY_TIMEOUT_MS / 1000,
    )
    return conn, copy_dir


def use_wal(conn: sqlite3.Connection, path: Path) -> None:
    """Switch to WAL; a second instance switching at the same moment can find the
    file busy for an instant, so retry within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() == "wal":
                return
        except sqlite3.OperationalError as error:
            if not isinstance(user_message(error, path), DatabaseBusy):
                raise
        if time.monotonic() >= deadline:
            log.warning("%s stays in its old journal mode: it is busy", path)
            return
        time.sleep(0.05)
