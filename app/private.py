"""Files only their owner may read: the document cache, the database, logs, model hashes.

They hold extracted text, answers and excerpts of the user's documents, some of them
password-protected. The default umask (022) would make them readable by every account on
the machine, so folders are created 0700 and files 0600. On Windows, chmod only toggles
the read-only flag; there the per-user profile folders the app uses already keep other
accounts out, so these calls are harmless no-ops.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
POSIX = os.name == "posix"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it owner-only."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    tighten(path, DIR_MODE)
    return path


def tighten(path: Path, mode: int = FILE_MODE) -> None:
    """Drop group/other access from a file or folder we own (a file made by an older
    version with the default umask). Others' files are left as they are."""
    if not POSIX:
        return
    with contextlib.suppress(OSError):
        info = path.stat()
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            path.chmod(stat.S_IMODE(info.st_mode) & mode)


# A link where one of our files should be is never followed: writing through it would
# change (and chmod) a file elsewhere, e.g. a link planted in a folder a report goes to.
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


def opener(path: str, flags: int) -> int:
    """For ``open(..., opener=opener)``: a new file is created 0600 from the start (no
    window in which it is world-readable), an existing one is tightened; a symbolic link
    in its place is refused (OSError ELOOP), not followed."""
    fd = os.open(path, flags | NO_FOLLOW, FILE_MODE)
    if POSIX:
        with contextlib.suppress(OSError):
            if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
                os.fchmod(fd, FILE_MODE)
    return fd


def write_file(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``path``, owner-only and atomically: into a temporary file beside
    it (0600 from creation on), then os.replace, so no reader and no crash ever sees half a
    file; the temporary is removed when anything fails. ``durable``: fsync before the
    rename (for results that cost minutes to compute)."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        with open(tmp, "wb", opener=opener) as out:
            out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def create_private(path: Path) -> None:
    """Make sure ``path`` exists and is 0600 (e.g. before SQLite opens it: SQLite then
    gives its -wal and -shm files the same mode as the database)."""
    os.close(opener(str(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND))
