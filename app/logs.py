"""Logging to a rotating file in the log directory; warnings also go to stderr."""

from __future__ import annotations

import io
import logging
import logging.handlers

from app import paths, private


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
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
    file = PrivateRotatingFileHandler(
        private.private_dir(paths.log_dir()) / "reader.log",
        maxBytes=2_000_000,
        backupCount=3,
        encoding="utf-8",
    )
    file.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root.addHandler(file)
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    root.addHandler(console)
