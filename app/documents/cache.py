"""Extracted documents cached by content hash: reopening a file skips extraction, and a
changed file (new hash) is read again. Pickle of plain dataclasses, versioned.

Password-protected documents are never cached: an entry would hold their text in the
clear and let anyone who can read the cache folder skip the password (the file itself
stays the only copy, as strong as its own encryption). The folder is 0700 and every
entry 0600 because the cache holds the text of every document the user opened.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import re
from pathlib import Path

from app import paths, private
from app.documents.model import Document

FORMAT = 6  # bump when Document or the extraction changes: old entries are deleted
_OLD = re.compile(r"-v(\d+)\.pickle$")
_swept = False
_log = logging.getLogger(__name__)


def folder() -> Path:
    return private.private_dir(paths.cache_dir() / "documents")


def _file(sha256: str, options: str) -> Path:
    return folder() / f"{sha256}-{options}-v{FORMAT}.pickle"


def _sweep(where: Path) -> None:
    """Once per process: delete entries of older formats (never read again, and written
    before protected documents were kept out, so one may hold such a document's text)
    and tighten entries an older version wrote world-readable."""
    global _swept
    if _swept:
        return
    _swept = True
    for entry in where.iterdir():
        match = _OLD.search(entry.name)
        if entry.name.endswith(".tmp") or (match and int(match.group(1)) < FORMAT):
            entry.unlink(missing_ok=True)
        else:
            private.tighten(entry)


def forget(sha256: str) -> None:
    """Delete every entry for this content (a document found to be protected)."""
    for entry in folder().glob(f"{sha256}-*"):
        entry.unlink(missing_ok=True)


def load(sha256: str, options: str) -> Document | None:
    try:
        target = _file(sha256, options)
        _sweep(target.parent)
        with target.open("rb") as f:
            document = pickle.load(f)
    except OSError:  # no entry yet, or an unreadable cache folder: read the file itself
        return None
    except Exception as error:  # noqa: BLE001 - garbage unpickles into any error at all
        _discard(target, f"cannot be unpickled ({type(error).__name__}: {error})")
        return None
    if not isinstance(document, Document) or document.protected:
        _discard(target, "does not hold an unprotected document")
        return None
    return document


def _discard(entry: Path, why: str) -> None:
    """A bad entry (a disk error, a copy from another program) is only a cache miss: it is
    deleted so the document is read again and stored afresh, never a document that cannot
    be opened."""
    _log.warning("cache entry %s %s: deleted, the document is read again", entry.name, why)
    with contextlib.suppress(OSError):
        entry.unlink(missing_ok=True)


def store(document: Document, options: str) -> None:
    if document.protected:
        forget(document.sha256)  # e.g. a copy cached by a version before this rule
        return
    if document.damage:  # re-read (and asked about) every time, like the first time
        return
    with contextlib.suppress(OSError):  # a full cache disk must not break opening files
        data = pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL)
        private.write_file(_file(document.sha256, options), data)
