"""Protected documents whose runs the user chose not to keep.

Their ids are also written to a file in the data folder, so that a crash cannot leave
such a run behind: the next start deletes them (README: runs of a protected document are
kept only with consent).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3

from app import paths, private
from app.errors import UserError
from app.store.database import Store

UNKEPT_FILE = "unkept-protected-documents.json"


def _read_unkept() -> list[int]:
    try:
        data = json.loads((paths.data_dir() / UNKEPT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [int(i) for i in data if isinstance(i, int)] if isinstance(data, list) else []


def _remember_unkept(document_ids: set[int]) -> None:
    """Persist the ids so a crash cannot leave a run the user chose not to keep."""
    file = paths.data_dir() / UNKEPT_FILE
    with contextlib.suppress(OSError):
        if not document_ids:
            file.unlink(missing_ok=True)
            return
        with open(file, "w", encoding="utf-8", opener=private.opener) as out:
            out.write(json.dumps(sorted(document_ids)))


class UnkeptDocuments:
    """The ids of those documents, the ones a crash left included."""

    def __init__(self) -> None:
        self.ids: set[int] = set(_read_unkept())

    def add(self, document_id: int) -> None:
        self.ids.add(document_id)
        _remember_unkept(self.ids)  # deleted at next start after a crash

    def forget(self, store: Store) -> None:
        """Delete them (their rows cascade to sessions, runs, steps, answers, evidence).
        Never under a run: the window opens no other document while one goes on."""
        for document_id in list(self.ids):
            try:
                store.delete_document(document_id)
                # secure_delete zeroed the pages; truncating the WAL drops old frames.
                store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except (UserError, sqlite3.Error):
                continue  # busy or read-only: tried again next time and at next start
            self.ids.discard(document_id)
        _remember_unkept(self.ids)
