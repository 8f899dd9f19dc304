"""Two kinds of failure: the user's (say what to do) and ours (log it, show an id)."""

from __future__ import annotations


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


class DocumentError(UserError):
    """A file that cannot be read as a document (missing, corrupt, encrypted, binary...)."""

    exit_code = 3


class PasswordRequired(DocumentError):
    """An encrypted PDF: ask for the password and try again."""


class ModelError(UserError):
    """A model file that is missing, not GGUF, or too big for this machine."""

    exit_code = 4


class StoreError(UserError):
    """The database cannot be written or is from a newer version of the app."""

    exit_code = 5


class BackendError(UserError):
    """A remote server that cannot be reached or answered with an error."""

    exit_code = 6


class Cancelled(Exception):
    """Raised inside a backend call when the user cancelled; never shown as an error."""
