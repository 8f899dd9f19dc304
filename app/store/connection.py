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
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = (
    5,
    6,
    8,
    10,
    11,
    13,
    14,
    26,
)

# Below this much free space a disk counts as full: SQLite's -shm file alone takes 32 KiB.
LOW_SPACE_BYTES = 256 << 10
DISK_FULL_REASON = "the disk holding it is full"
FULL_HINT = "Free some space on that disk, then try again."


WRITABLE_HINT = (
    "To ask or resume, make the file and its folder writable (on a full disk: free some "
    "space there), or copy the database to a writable folder and point "
    "QWENLONG_READER_DB at the copy."
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
        or (primary == _IOERR and disk_full(path))  # e.g. no room for the -shm file
    ):
        return DatabaseFull(
            f"The disk holding {path} is full: nothing more can be written to the database.",
            hint=FULL_HINT,
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


def _existing_folder(path: Path) -> Path:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def disk_full(path: Path) -> bool:
    """Whether the disk that holds (or would hold) ``path`` has next to no room left."""
    try:
        return shutil.disk_usage(_existing_folder(path)).free < LOW_SPACE_BYTES
    except OSError:
        return False


def _cannot_be_opened_for_lack_of_space(path: Path) -> bool:
    """A read through an ordinary connection fails for lack of room (in WAL mode even a
    reader needs the -shm file, which a full disk cannot take)."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error:
        return False
    try:
        conn.execute("PRAGMA application_id").fetchone()
    except sqlite3.Error as error:
        return isinstance(user_message(error, path), DatabaseFull)
    finally:
        conn.close()
    return False


def write_blocker(path: Path) -> str | None:
    """Why the database at ``path`` cannot be written (or made), or None if it can. A
    full disk counts where it keeps even a reader out, or leaves no room for a new file:
    the database is then opened read-only, so its runs can still be reviewed."""
    if path.exists():
        if not _writable(path.parent):  # WAL needs its -wal and -shm files beside it
            return f"its folder {path.parent} is read-only"
        if not _writable(path):
            return f"the file {path.name} is read-only"
        if disk_full(path) and _cannot_be_opened_for_lack_of_space(path):
            return DISK_FULL_REASON
        return None
    folder = _existing_folder(path)
    if not _writable(folder):
        return f"the folder {folder} is read-only"
    if disk_full(path):
        return DISK_FULL_REASON
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
            hint=FULL_HINT
            if read_only_reason == DISK_FULL_REASON
            else "Set QWENLONG_READER_DB to a file in a writable folder.",
        )
    source = path.resolve()
    copy_dir = None
    wal = source.with_name(source.name + "-wal")
    full = read_only_reason == DISK_FULL_REASON  # the folder is writable, the disk is not
    if _writable(source.parent) and not full:
        query = "mode=ro"
    elif wal.exists() and wal.stat().st_size > 0:
        try:
            copy_dir = tempfile.TemporaryDirectory(prefix="qwenlong-ro-")
            copy = Path(copy_dir.name) / source.name
            shutil.copyfile(source, copy)
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        except OSError as error:
            if copy_dir is not None:
                copy_dir.cleanup()
            if not full:
                raise
            raise DatabaseFull(
                f"The disk holding {path} is full, and the database's latest changes (in "
                f"{wal.name}) cannot be read without room for SQLite's files ({error}).",
                hint=FULL_HINT,
            ) from error
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
