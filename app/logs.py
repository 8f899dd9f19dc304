"""Logging to a rotating file in the log directory; warnings also go to stderr."""

from __future__ import annotations

import logging
import logging.handlers

from app import paths


def setup_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger("app")
    if root.handlers:
        return
    root.setLevel(level)
    file = logging.handlers.RotatingFileHandler(
        paths.log_dir() / "reader.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    file.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root.addHandler(file)
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    root.addHandler(console)
