"""Logging to a rotating file in the log directory; warnings also go to stderr."""

from __future__ import annotations

import contextlib
import io
import logging
import logging.handlers
import sys

from app import paths, private


class QuietRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A log write that fails (a full disk, a folder gone or made read-only) must neither
    stop the app nor print logging's "--- Logging error ---" traceback on the console:
    the first failure is said once, on one line, and later ones are dropped (writes
    resume by themselves once there is room again)."""

    reported = False

    def flush(self) -> None:
        try:
            super().flush()
        except OSError:  # on close, or at exit: the same full disk
            self.handleError(None)  # type: ignore[arg-type]

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # closing flushes what the full disk would not take
            self.handleError(None)  # type: ignore[arg-type]

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802
        if self.reported:
            return
        self.reported = True
        error = sys.exc_info()[1]
        with contextlib.suppress(Exception):  # stderr itself may be gone
            sys.stderr.write(
                f"Note: cannot write the log file {self.baseFilename} ({error}); "
                "log lines are dropped until it can be written again.\n"
            )


class QuietStreamHandler(logging.StreamHandler):
    """The console handler: a closed or broken stderr is no reason for a traceback."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802
        pass


class PrivateRotatingFileHandler(QuietRotatingFileHandler):
    """Log files are created 0600 in a 0700 folder: they can quote documents, questions
    and model output (app/private.py). Rotation renames, so old logs keep the mode."""

    def _open(self) -> io.TextIOWrapper:
        stream = open(  # noqa: SIM115 - logging owns and closes it
            self.baseFilename,
            self.mode,
            encoding=self.encoding,
            errors=self.errors,
            opener=private.opener,
        )
        assert isinstance(stream, io.TextIOWrapper)  # text mode: what logging expects
        return stream


def setup_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger("app")
    if root.handlers:
        return
    root.setLevel(level)
    try:
        file = PrivateRotatingFileHandler(
            private.private_dir(paths.log_dir()) / "reader.log",
            maxBytes=2_000_000,
            backupCount=3,
            encoding="utf-8",
        )
    except OSError as error:  # a full disk or a read-only home: run on, without a log file
        sys.stderr.write(f"Note: no log file this time ({error}).\n")
    else:
        file.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root.addHandler(file)
    console = QuietStreamHandler()
    console.setLevel(logging.WARNING)
    root.addHandler(console)
