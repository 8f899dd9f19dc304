"""Which documents a command reads: ``ask``'s files and folders (one collection when
several), a named collection, or a stored run's document read again from disk."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from app.documents.ingest import load_with_passwords
from app.documents.model import Document
from app.errors import UserError
from app.store import collections
from app.store.database import Store, open_database


def split_documents(values: list[str]) -> tuple[list[str], list[str]]:
    """``ask``'s positionals: the leading ones that exist on disk are documents, the rest
    questions (the first is always a document, so a missing file says so)."""
    count = 1
    while count < len(values) - 1 and Path(values[count]).expanduser().exists():
        count += 1
    files, questions = values[:count], [q for q in values[count:] if q.strip()]
    if not questions:
        raise UserError(
            "No question given.", hint='Usage: python -m app ask FILE... "your question"'
        )
    return files, questions


# A password on the command line is seen by `ps` and kept in the shell's history: this
# variable, or `--password -` (asked on the terminal, not echoed), keeps it out of both.
PASSWORD_ENV = "QWENLONG_READER_PASSWORD"


def given_passwords(args: argparse.Namespace) -> list[str]:
    """``--password``, given any number of times (``-``: asked on the terminal), then
    QWENLONG_READER_PASSWORD: each is tried on each protected file. Asked once per
    command, however many files it opens."""
    cached = getattr(args, "_passwords", None)
    if cached is not None:
        return list(cached)
    value = getattr(args, "password", None)
    values = [] if value is None else [value] if isinstance(value, str) else list(value)
    passwords = []
    for given in values:
        if given == "-":
            import getpass

            given = getpass.getpass("Password of the protected document (not shown): ")
        if given and given not in passwords:
            passwords.append(given)
    from_env = os.environ.get(PASSWORD_ENV, "")
    if from_env and from_env not in passwords:
        passwords.append(from_env)
    args._passwords = passwords
    return list(passwords)


def read_one(args: argparse.Namespace, path: str | Path) -> Document:
    return load_with_passwords(
        Path(path), given_passwords(args), accept_damaged=args.accept_damaged
    )


def load_documents(args: argparse.Namespace, files: list[str]) -> Document:
    """One document, or several files / a folder as one collection."""
    if len(files) == 1 and not Path(files[0]).expanduser().is_dir():
        return read_one(args, files[0])
    from app.documents.collection import load_collection

    return load_collection(
        files, name=args.collection or "", load=lambda path: read_one(args, path)
    )


def stored_collection(args: argparse.Namespace) -> Document:
    store = open_database()
    try:
        document_id = collections.find_collection(store, args.collection)
        if document_id is None:
            known = ", ".join(name for name, _ in collections.list_collections(store))
            raise UserError(
                f"There is no collection named {args.collection!r}.",
                hint=(f"Known collections: {known}. " if known else "")
                + 'Create one: python -m app ask FILES... --collection NAME "question"',
            )
        row = store.get_document_row(document_id)
        return reload_document(store, args, document_id, row, f"collection {args.collection}")
    finally:
        store.close()


def reload_document(
    store: Store, args: argparse.Namespace, document_id: int, row: dict, what: str
) -> Document:
    """A stored document read again from disk: a collection from its members' files, in
    their order, refused when one is gone or has changed (never silently mixed in)."""
    members = collections.members_of(store, document_id)
    if not members:
        return read_one(args, row["path"])
    changes = collections.changed_members(members)
    if changes:
        raise UserError(
            f"Collection {row['title']}: " + "; ".join(c.describe() for c in changes) + ".",
            hint=f"Reading on would mix other versions into {what}; ask the question again "
            "on the collection as it is now.",
        )
    from app.documents.collection import build_collection, load_members

    documents = load_members([m.path for m in members], lambda path: read_one(args, path))
    return build_collection(documents, row["title"])
