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
from app.documents.collection import load_collection
from app.documents.ingest import load_document, load_with_passwords
from app.documents.model import DocumentDamaged
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


# A data room whose two protected PDFs have different passwords, and a plain memo between
# them (the tests of the CLI and the window use it too).
LEASE_SECRET = "The lease code is 4471."
AUDIT_SECRET = "The audit code is 9932."
LEASE_PW = "lease-pw-7Q"
AUDIT_PW = "audit-pw-3Z"


def protected_room(folder: Path) -> Path:
    folder.mkdir()
    encrypted_pdf(folder / "a-lease.pdf", LEASE_SECRET, LEASE_PW)
    (folder / "b-memo.txt").write_text("Memo: the tenant is Harbor Ltd.\n", encoding="utf-8")
    encrypted_pdf(folder / "c-audit.pdf", AUDIT_SECRET, AUDIT_PW)
    return folder


def open_room(folder: Path, passwords: list[str]):
    return load_collection([folder], load=lambda path: load_with_passwords(path, passwords))


def test_each_protected_member_opens_with_its_own_password_in_any_order(tmp_path, app_home):
    room = protected_room(tmp_path / "room")
    for passwords in ([LEASE_PW, AUDIT_PW], [AUDIT_PW, LEASE_PW]):
        doc = open_room(room, passwords)
        assert doc.kind == "collection" and doc.protected
        assert [(Path(m.path).name, m.protected) for m in doc.members] == [
            ("a-lease.pdf", True),
            ("b-memo.txt", False),
            ("c-audit.pdf", True),
        ]
        assert LEASE_SECRET in doc.text and AUDIT_SECRET in doc.text and "Harbor" in doc.text
    # neither member's text reached the cache (nor the passwords any file)
    for phrase in ("lease code", "audit code", LEASE_PW, AUDIT_PW):
        assert files_containing(app_home, phrase) == []


def test_a_member_that_no_given_password_opens_is_named(tmp_path):
    room = protected_room(tmp_path / "room")
    with pytest.raises(PasswordRequired) as one:
        open_room(room, [LEASE_PW])  # opens the lease, not the audit
    assert str(one.value).startswith("c-audit.pdf: ") and "wrong" in one.value.message
    assert Path(one.value.path).name == "c-audit.pdf" and one.value.exit_code == 3
    with pytest.raises(PasswordRequired) as two:
        open_room(room, [LEASE_PW, "guess"])
    assert two.value.message == "c-audit.pdf: None of the 2 passwords given opens c-audit."
    assert "--password" in two.value.hint and Path(two.value.path).name == "c-audit.pdf"
    with pytest.raises(PasswordRequired) as none:
        open_room(room, [])  # the first protected member is the first to ask
    assert none.value.message == "a-lease.pdf is protected by a password."
    assert Path(none.value.path).name == "a-lease.pdf"


def test_passwords_change_nothing_for_an_unprotected_file(tmp_path):
    plain = make_pdf(tmp_path / "plain.pdf", ["An ordinary sentence about gardens."])
    assert load_with_passwords(plain, ["x", "y"]) == load_document(plain)
    assert load_with_passwords(plain, []) == load_document(plain)
    vault = encrypted_pdf(tmp_path / "vault.pdf")
    with pytest.raises(PasswordRequired, match="protected by a password"):
        load_with_passwords(vault, ["", ""])  # empty answers are no password
    assert SECRET in load_with_passwords(vault, ["guess", "s3cret"]).text


def ten_page_pdf() -> bytes:
    """A ten-page PDF of text, to cut in half: a damaged file whose first pages survive."""
    pdf = pymupdf.open()
    for number in range(10):
        pdf.new_page().insert_textbox(pymupdf.Rect(56, 56, 539, 800), f"Page {number} " * 80)
    return bytes(pdf.tobytes())


def test_a_damaged_member_is_named_and_keeps_its_page_counts(tmp_path):
    """Naming the member keeps the error's type and what it carries: the window asks
    about that member (a DocumentDamaged once failed to be rebuilt with its name)."""
    data = ten_page_pdf()
    room = tmp_path / "room"
    room.mkdir()
    (room / "a-cut.pdf").write_bytes(data[: len(data) // 2])
    make_pdf(room / "b-plain.pdf", ["Readable text about rivers."])
    with pytest.raises(DocumentDamaged) as damaged:
        load_collection([room])
    assert damaged.value.message.startswith("a-cut.pdf is damaged")
    assert damaged.value.pages_total == 10 and 0 < damaged.value.pages_read < 10
