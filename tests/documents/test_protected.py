"""Password-protected documents: the password is checked on every open, their text never
reaches the cache or the database, and the app's files are owner-only."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pymupdf
import pytest

from app import paths
from app.documents import cache
from app.documents.ingest import load_document
from app.errors import DocumentError, PasswordRequired
from app.store.database import open_database
from tests.conftest import make_pdf

SECRET = "The vault combination is 31-07-1987."
POSIX = os.name == "posix"


def encrypted_pdf(path: Path, text: str = SECRET, password: str = "s3cret") -> Path:
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_text((72, 72), text)
    pdf.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=password, owner_pw="own")
    pdf.close()
    return path


def files_containing(folder: Path, phrase: str) -> list[Path]:
    needle = phrase.encode()
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_password_is_needed_on_every_open_not_only_the_first(tmp_path, app_home):
    path = encrypted_pdf(tmp_path / "vault.pdf")
    document = load_document(path, password="s3cret")
    assert SECRET in document.text and document.protected
    # The bug: a second open was answered from the cache without any password.
    with pytest.raises(PasswordRequired, match="protected by a password") as missing:
        load_document(path)
    with pytest.raises(PasswordRequired, match="wrong") as wrong:
        load_document(path, password="guess")
    assert missing.value.exit_code == wrong.value.exit_code == 3
    assert SECRET in load_document(path, password="s3cret").text  # the right one still works
    assert files_containing(app_home, "vault combination") == []
    assert not list(cache.folder().glob(f"{document.sha256}-*"))


def test_a_plaintext_entry_left_by_an_older_version_is_deleted_not_used(tmp_path, app_home):
    path = encrypted_pdf(tmp_path / "vault.pdf")
    document = load_document(path, password="s3cret")
    # What versions before this fix wrote: the text, pickled in the clear.
    import pickle

    for name in (f"{document.sha256}-hf0-ocr0-v2.pickle", f"{document.sha256}-hf0-ocr0-v3.pickle"):
        (cache.folder() / name).write_bytes(pickle.dumps(document))
    cache._swept = False  # a new process
    with pytest.raises(PasswordRequired):
        load_document(path)
    assert files_containing(app_home, "vault combination") == []


def test_the_database_keeps_no_text_of_a_protected_document(tmp_path, app_home):
    path = encrypted_pdf(tmp_path / "vault.pdf")
    store = open_database()
    document_id = store.add_document(load_document(path, password="s3cret"))
    plain = make_pdf(tmp_path / "plain.pdf", ["An ordinary sentence about gardens."])
    store.add_document(load_document(plain))
    texts = {r[0]: r[1] for r in store.conn.execute("SELECT kind, text FROM documents")}
    assert texts["pdf"].count("gardens") == 1  # an ordinary document's text is kept
    rows = store.conn.execute("SELECT text FROM documents WHERE id = ?", (document_id,))
    assert rows.fetchone()[0] == ""  # the protected one's never is
    assert store.get_document_row(document_id)["char_count"] == len(SECRET)
    store.close()
    assert files_containing(app_home, "vault combination") == []


@pytest.mark.skipif(not POSIX, reason="POSIX modes; Windows relies on the per-user profile")
def test_cache_database_and_log_files_are_owner_only(tmp_path, app_home):
    os.umask(0o022)  # the usual default, which made every file world-readable
    plain = make_pdf(tmp_path / "plain.pdf", ["Readable text about rivers."])
    load_document(plain)
    entries = list(cache.folder().iterdir())
    assert entries and all(mode(p) == 0o600 for p in entries)
    assert mode(cache.folder()) == 0o700

    store = open_database()
    store.add_document(load_document(plain))
    database = paths.database_path()
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        assert path.exists() and mode(path) == 0o600, path
    store.close()

    import logging

    from app.logs import setup_logging

    root = logging.getLogger("app")
    saved = root.handlers[:]
    root.handlers.clear()
    try:
        setup_logging()
        logging.getLogger("app.test").warning("a line")
        log = paths.log_dir() / "reader.log"
        assert mode(log) == 0o600 and mode(paths.log_dir()) == 0o700
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved


@pytest.mark.skipif(not POSIX, reason="POSIX modes")
def test_an_older_world_readable_cache_entry_is_tightened(tmp_path):
    plain = make_pdf(tmp_path / "plain.pdf", ["Readable text about rivers."])
    document = load_document(plain)
    entry = next(cache.folder().glob(f"{document.sha256}-*"))
    entry.chmod(0o644)
    cache.folder().chmod(0o755)
    cache._swept = False  # a new process
    assert load_document(plain) == document
    assert mode(entry) == 0o600 and mode(cache.folder()) == 0o700


@pytest.mark.skipif(not POSIX, reason="POSIX modes")
def test_model_hash_cache_is_owner_only(tmp_path):
    from app.llm.model_hash import HASH_CACHE_NAME, file_sha256

    os.umask(0o022)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    file_sha256(model)
    assert mode(paths.cache_dir() / HASH_CACHE_NAME) == 0o600


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need developer mode on Windows")
def test_dangling_link_is_reported_as_a_broken_link(tmp_path):
    link = tmp_path / "report.pdf"
    link.symlink_to(tmp_path / "moved-away.pdf")
    with pytest.raises(DocumentError, match="broken link") as error:
        load_document(link)
    assert "report.pdf" in str(error.value) and "moved-away.pdf" in str(error.value)


@pytest.mark.skipif(
    not POSIX or os.geteuid() == 0, reason="root reads any file; runs as a normal user"
)
def test_unreadable_file_says_permissions(tmp_path):
    path = make_pdf(tmp_path / "locked.pdf", ["text"])
    path.chmod(0)
    try:
        with pytest.raises(DocumentError, match="permissions"):
            load_document(path)
    finally:
        path.chmod(0o600)
