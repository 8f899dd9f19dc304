"""Two kinds of failure: the user's (say what to do) and ours (log it, show an id)."""

from __future__ import annotations

import errno
import logging
import uuid

_log = logging.getLogger("app")


class UserError(Exception):
    """A problem with the user's input or environment, with a message that says what to do.

    The GUI shows ``str(error)`` as is; the CLI prints it and exits with ``exit_code``.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class DoesNotFit(UserError):
    """The document does not fit the context in one pass (the single-pass mode asked)."""


class DocumentError(UserError):
    """A file that cannot be read as a document (missing, corrupt, encrypted, binary...)."""

    exit_code = 3


class PasswordRequired(DocumentError):
    """An encrypted PDF: ask for the password and try again. ``path`` is the file that
    needs it (in a collection, the member), so the window can ask for that file's own."""

    def __init__(self, message: str, *, hint: str = "", path: str = "") -> None:
        super().__init__(message, hint=hint)
        self.path = path


class ModelError(UserError):
    """A model file that is missing, not GGUF, or too big for this machine."""

    exit_code = 4


class StoreError(UserError):
    """The database cannot be written or is from a newer version of the app."""

    exit_code = 5


class DatabaseBusy(StoreError):
    """Another program holds the database's write lock: transient, worth waiting for."""


class DatabaseFull(StoreError):
    """The disk (or the database's size limit) is full."""


class DatabaseReadOnly(StoreError):
    """The database file or its folder cannot be written: it can only be reviewed."""


class ForeignDatabase(StoreError):
    """A SQLite file that belongs to another program (or a damaged file): left untouched."""


class NetworkError(UserError):
    """A server that cannot be reached or answered with an error: a model download's
    (the Hub, a mirror) or the remote backend's."""

    exit_code = 6


class BackendError(NetworkError):
    """The remote backend's server cannot be reached or answered with an error."""


class Cancelled(Exception):
    """Raised inside a backend call when the user cancelled; never shown as an error."""


def log_bug(error: BaseException, what: str, log: logging.Logger | None = None) -> str:
    """Log a bug (``error`` while doing ``what``) with its traceback under a new error
    id, and return the id: the message the user sees names it, the log holds the rest."""
    error_id = uuid.uuid4().hex[:8]
    (log or _log).error("%s failed (error id %s)", what, error_id, exc_info=error)
    return error_id


def environment_error(error: BaseException) -> UserError | None:
    """A full disk, a read-only one, or a file the user may not write: the machine's
    problem, not a bug, wherever it happens (an export, a copy, the settings); None for
    anything else."""
    if not isinstance(error, OSError) or error.errno is None:
        return None
    where = f" {error.filename}" if error.filename else ""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return UserError(
            f"The disk is full: could not write{where}.",
            hint="Free some space (or choose another folder) and try again.",
        )
    if error.errno == errno.EROFS:
        return UserError(
            f"The disk is read-only: could not write{where}.",
            hint="Choose a folder on a writable disk.",
        )
    if error.errno in (errno.EACCES, errno.EPERM):
        return UserError(
            f"Permission denied:{where or ' a file'} cannot be opened or written.",
            hint="Choose a folder you can write to, or check the file's permissions.",
        )
    return None


def describe_error(
    error: BaseException, what: str = "a task", log: logging.Logger | None = None
) -> str:
    """What to tell the user: a UserError as it is, the machine's own I/O failures
    likewise (logged too, for the record); a bug logged, with its error id."""
    if isinstance(error, UserError):
        return str(error)
    environment = environment_error(error)
    if environment is not None:
        (log or _log).warning("%s failed: %s", what, error)
        return str(environment)
    error_id = log_bug(error, what, log)
    return f"Something went wrong (error id {error_id}, details in the log): {error}"
