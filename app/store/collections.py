"""Collections in the store: each collection document's members (migration 4), named
collections, and whether a member changed on disk since a run read it.

Functions over a Store rather than more Store methods: database.py keeps the run tables,
this module the one thing collections add to them."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.documents.model import Member

if TYPE_CHECKING:
    from app.store.database import Store

_COLUMNS = (
    "document_id, position, path, sha256, title, kind, char_start, text_start, char_end, "
    "first_page, page_count, protected"
)


def save_members(conn: sqlite3.Connection, document_id: int, members: Sequence[Member]) -> None:
    """Inside the transaction that stores the collection's documents row. The same
    content stored again (same members, same order) keeps its rows."""
    conn.executemany(
        f"INSERT OR IGNORE INTO document_members ({_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                document_id,
                m.index,
                m.path,
                m.sha256,
                m.title,
                m.kind,
                m.start,
                m.text_start,
                m.end,
                m.first_page,
                m.page_count,
                int(m.protected),
            )
            for m in members
        ],
    )
    # a member seen at a new path (the data room moved) is found there next time
    conn.executemany(
        "UPDATE document_members SET path = ? WHERE document_id = ? AND position = ?",
        [(m.path, document_id, m.index) for m in members],
    )


def members_of(store: Store, document_id: int) -> list[Member]:
    """The collection's documents in reading order; empty for a plain document."""
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM document_members WHERE document_id = ? ORDER BY position",
        (document_id,),
    ).fetchall()
    return [
        Member(
            index=r["position"],
            path=r["path"],
            sha256=r["sha256"],
            title=r["title"],
            kind=r["kind"],
            start=r["char_start"],
            text_start=r["text_start"],
            end=r["char_end"],
            first_page=r["first_page"],
            page_count=r["page_count"],
            protected=bool(r["protected"]),
        )
        for r in rows
    ]


def name_collection(store: Store, name: str, document_id: int) -> None:
    """``name`` now means these members (a collection whose members were added, removed
    or reordered is a new documents row; its earlier runs keep theirs)."""
    with store.transaction() as c:
        c.execute(
            "INSERT INTO collections (name, document_id) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET document_id = excluded.document_id, "
            "updated_at = datetime('now')",
            (name, document_id),
        )


def find_collection(store: Store, name: str) -> int | None:
    """The documents row a named collection points at."""
    row = store.conn.execute(
        "SELECT document_id FROM collections WHERE name = ?", (name,)
    ).fetchone()
    return int(row["document_id"]) if row and row["document_id"] is not None else None


def list_collections(store: Store) -> list[tuple[str, int]]:
    rows = store.conn.execute(
        "SELECT c.name, count(m.position) AS n FROM collections c "
        "LEFT JOIN document_members m ON m.document_id = c.document_id "
        "GROUP BY c.id ORDER BY c.name"
    ).fetchall()
    return [(r["name"], int(r["n"])) for r in rows]


@dataclass(frozen=True)
class Change:
    member: Member
    what: str  # "missing" | "changed"

    def describe(self) -> str:
        if self.what == "missing":
            return f"{self.member.title} ({self.member.path}) is no longer there"
        return f"{self.member.title} ({self.member.path}) has changed since the run read it"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def changed_members(members: Sequence[Member]) -> list[Change]:
    """Members whose file is gone or no longer has the content the run read: flagged in
    review, and a resume refuses to mix them in."""
    found = []
    for member in members:
        path = Path(member.path)
        try:
            if file_sha256(path) != member.sha256:
                found.append(Change(member, "changed"))
        except OSError:
            found.append(Change(member, "missing"))
    return found
