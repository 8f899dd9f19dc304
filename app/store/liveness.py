"""Which runs are live: a per-run lock file, held with an OS file lock by the process
that is reading the run, released by the OS when that process dies.

A run row saying 'running' proves nothing (the process may have been killed); elapsed
time proves nothing either (one model call can take many minutes). The lock does: it
exists exactly as long as its holder. flock (POSIX) and msvcrt.locking (Windows) locks
belong to an open file, so a second window in the same process sees the first window's
run as live too.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class Lock(Protocol):
    def release(self) -> None: ...


class InProcessLock:
    """For an in-memory database, which no other process can see."""

    def __init__(self, on_release: Callable[[], None]) -> None:
        self._on_release: Callable[[], None] | None = on_release

    def release(self) -> None:
        on_release, self._on_release = self._on_release, None
        if on_release is not None:
            on_release()


class RunLock:
    """A held lock; ``release`` (or process death) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if sys.platform == "win32":  # an open file cannot be removed there
            _unlock(fd)
            os.close(fd)
            with contextlib.suppress(OSError):
                self.path.unlink()
            return
        # Removed while still locked: whoever opened the old file then finds it is no
        # longer the one at this path, and tries again (see acquire).
        with contextlib.suppress(OSError):
            self.path.unlink()
        _unlock(fd)
        os.close(fd)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(path: Path, patience_s: float = 0.5) -> RunLock | None:
    """The lock at ``path``, or None when another holder has it. Retries for a moment,
    since a checker (``is_held``) holds it for an instant while it looks."""
    deadline = time.monotonic() + patience_s
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # owner-only, as the data
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if _try_lock(fd):
            try:  # (Windows never removes an open file: nothing to check there)
                same = sys.platform == "win32" or os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return RunLock(path, fd)
            _unlock(fd)  # a released file that was removed: lock the new one
            os.close(fd)
            continue
        os.close(fd)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def is_held(path: Path) -> bool:
    """Whether a live process (this one included) holds the lock at ``path``."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    except PermissionError:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False
    try:
        if _try_lock(fd):
            _unlock(fd)
            return False
        return True
    finally:
        os.close(fd)
