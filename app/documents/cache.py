"""Extracted documents cached by content hash: reopening a file skips extraction, and a
changed file (new hash) is read again. Pickle of plain dataclasses, versioned."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from app import paths
from app.documents.model import Document

FORMAT = 2  # bump when Document or the extraction changes: old entries are ignored


def _file(sha256: str, options: str) -> Path:
    folder = paths.cache_dir() / "documents"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{sha256}-{options}-v{FORMAT}.pickle"


def load(sha256: str, options: str) -> Document | None:
    try:
        with _file(sha256, options).open("rb") as f:
            document = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None
    return document if isinstance(document, Document) else None


def store(document: Document, options: str) -> None:
    target = _file(document.sha256, options)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            pickle.dump(document, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, target)  # atomic: a reader never sees half a file
    except OSError:
        tmp.unlink(missing_ok=True)  # a full cache disk must not break opening files
