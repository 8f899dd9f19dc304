"""The CLI with protected and damaged documents: clear exits before any run, a protected
document's run kept only with --keep-protected-runs (a real run of the tiny model: what
is kept or not does not depend on what the model writes)."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from app.documents.ingest import load_document
from app.store.database import open_database
from tests.cli.test_ask_end_to_end import run_app
from tests.documents.test_protected import (
    AUDIT_PW,
    LEASE_PW,
    SECRET,
    encrypted_pdf,
    files_containing,
    protected_room,
)


def vault(tmp_path: Path) -> Path:
    return encrypted_pdf(tmp_path / "vault.pdf")


def test_no_or_wrong_password_exits_3_even_after_a_successful_open(tmp_path, env):
    path = vault(tmp_path)
    load_document(path, password="s3cret")  # opened once, in this same app home
    missing = run_app("ask", str(path), "What is the combination?", env=env)
    assert missing.returncode == 3 and "protected by a password" in missing.stderr
    assert "--password" in missing.stderr
    wrong = run_app("ask", str(path), "q?", "--password", "guess", env=env)
    assert wrong.returncode == 3 and "wrong" in wrong.stderr
    assert "31-07-1987" not in missing.stdout + wrong.stdout


def test_damaged_pdf_exits_7_and_says_how_many_pages_survived(tmp_path, env):
    pdf = pymupdf.open()
    for number in range(10):
        pdf.new_page().insert_textbox(pymupdf.Rect(56, 56, 539, 800), f"Page {number} " * 80)
    data = pdf.tobytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(data[: len(data) // 2])
    result = run_app("ask", str(cut), "q?", env=env)
    assert result.returncode == 7, result.stderr
    assert "damaged" in result.stderr and "of 10 pages could be read" in result.stderr
    assert "--accept-damaged" in result.stderr and "OCR" not in result.stderr


def test_a_protected_run_is_kept_only_with_consent(tmp_path, env, app_home, tiny_model):
    path = vault(tmp_path)
    question = "What is the vault combination?"
    ask = ["ask", str(path), question, "--password", "s3cret", "--model", str(tiny_model)]
    ask += ["--mode", "single_pass", "--ctx", "2048", "--max-new-tokens", "8"]
    unkept = run_app(*ask, env=env)
    assert unkept.returncode == 0, unkept.stderr
    assert "== Answer ==" in unkept.stdout and "Not kept" in unkept.stderr
    database = app_home / "data" / "reader.sqlite3"
    if database.exists():
        store = open_database(database)
        assert store.list_documents() == [] and store.list_sessions() == []
        store.close()
    # Nothing the app wrote holds the document's text: no cache, no prompt, no log line.
    assert files_containing(app_home, "vault combination is") == []

    kept = run_app(*ask, "--keep-protected-runs", env=env)
    assert kept.returncode == 0, kept.stderr
    assert "Not kept" not in kept.stderr
    store = open_database(database)
    (document,) = store.list_documents()
    assert document["char_count"] == len(SECRET)
    assert store.conn.execute("SELECT text FROM documents").fetchone()[0] == ""
    (session,) = store.list_sessions()
    run_id = int(kept.stdout.split("Run ", 1)[1].split(":", 1)[0])
    assert store.get_run(run_id).status == "finished"
    store.close()


FAST = ["--mode", "single_pass", "--ctx", "2048", "--max-new-tokens", "8"]


def test_each_protected_member_of_a_folder_opens_with_its_own_password(
    tmp_path, env, app_home, tiny_model
):
    room = protected_room(tmp_path / "room")
    ask = ["ask", str(room), "What are the codes?", "--model", str(tiny_model), *FAST]
    # in the other order than the files': each is tried on each protected member
    result = run_app(*ask, "--password", AUDIT_PW, "--password", LEASE_PW, env=env)
    assert result.returncode == 0, result.stderr
    assert "Collection room (3 documents): 3 documents, 3 pages." in result.stderr
    assert "== Answer ==" in result.stdout and "Not kept" in result.stderr
    for phrase in ("lease code", "audit code", LEASE_PW, AUDIT_PW):
        assert files_containing(app_home, phrase) == []


def test_a_member_no_password_opens_is_named_before_any_run(tmp_path, env):
    room = protected_room(tmp_path / "room")
    one = run_app("ask", str(room), "q?", "--password", LEASE_PW, env=env)
    assert one.returncode == 3 and "c-audit.pdf: The password for c-audit is wrong" in one.stderr
    none = run_app("ask", str(room), "q?", env=env)
    assert none.returncode == 3
    assert "Error: a-lease.pdf is protected by a password" in none.stderr
    assert "--password" in none.stderr
    assert "4471" not in one.stdout + none.stdout and "9932" not in one.stdout + none.stdout


def test_a_single_password_opens_a_collection_whose_files_share_it(tmp_path, env, tiny_model):
    room = tmp_path / "room"
    room.mkdir()
    for name in ("a.pdf", "b.pdf"):
        pdf = pymupdf.open()
        pdf.new_page().insert_text((72, 72), f"{name} says: {SECRET}")
        pdf.save(room / name, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="s3cret")
    ask = ["ask", str(room), "q?", "--password", "s3cret", "--model", str(tiny_model), *FAST]
    result = run_app(*ask, env=env)
    assert result.returncode == 0, result.stderr
    assert "2 documents, 2 pages." in result.stderr and "== Answer ==" in result.stdout


def test_password_may_be_repeated_on_ask_and_resume():
    from app.cli import build_parser

    parser = build_parser()
    ask = parser.parse_args(["ask", "f.pdf", "q?", "--password", "a", "--password", "b"])
    assert ask.password == ["a", "b"]
    assert parser.parse_args(["ask", "f.pdf", "q?", "--password", "a"]).password == ["a"]
    assert parser.parse_args(["ask", "f.pdf", "q?"]).password is None
    resume = parser.parse_args(["resume", "4", "--password", "a", "--password", "b"])
    assert resume.password == ["a", "b"]


def test_resume_reads_a_stored_collection_again_with_each_password(tmp_path, store):
    """What ``resume`` and ``ask --collection`` do: the members' files read again, each
    protected one with whichever --password opens it; one that none opens is named."""
    import argparse

    from app.cli.documents import reload_document
    from app.documents.collection import load_collection
    from app.documents.ingest import load_with_passwords
    from app.errors import PasswordRequired

    room = protected_room(tmp_path / "room")
    passwords = [LEASE_PW, AUDIT_PW]
    doc = load_collection([room], load=lambda path: load_with_passwords(path, passwords))
    doc_id = store.add_document(doc)
    row = store.get_document_row(doc_id)
    assert store.conn.execute("SELECT text FROM documents").fetchone()[0] == ""
    args = argparse.Namespace(password=[AUDIT_PW, LEASE_PW], accept_damaged=False)
    again = reload_document(store, args, doc_id, row, "run 1")
    assert again.sha256 == doc.sha256 and again.text == doc.text
    args = argparse.Namespace(password=[AUDIT_PW], accept_damaged=False)
    with pytest.raises(PasswordRequired, match="^a-lease.pdf: The password for a-lease"):
        reload_document(store, args, doc_id, row, "run 1")


def test_a_password_can_stay_off_the_command_line(tmp_path, env, tiny_model):
    """QWENLONG_READER_PASSWORD, or `--password -` answered on the terminal: `ps` and the
    shell's history never see it. (Here the "terminal" is the child's controlling tty
    replaced by a pseudo-terminal.)"""
    import os
    import pty
    import subprocess
    import sys

    path = vault(tmp_path)
    ask = ["ask", str(path), "What is the combination?", "--model", str(tiny_model)]
    ask += ["--mode", "single_pass", "--ctx", "2048", "--max-new-tokens", "8"]
    by_env = run_app(*ask, env={**env, "QWENLONG_READER_PASSWORD": "s3cret"})
    assert by_env.returncode == 0, by_env.stderr
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "app", *ask, "--password", "-"],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
        preexec_fn=lambda: __import__("fcntl").ioctl(0, __import__("termios").TIOCSCTTY, 0),
    )
    os.close(follower)
    prompt = b""
    while b"not shown" not in prompt:
        prompt += os.read(leader, 1024)
    os.write(leader, b"s3cret\n")
    out, err = child.communicate(timeout=120)
    os.close(leader)
    assert child.returncode == 0, err
    assert b"== Answer ==" in out


def test_an_empty_question_is_refused_before_anything_runs(tmp_path, env):
    notes = tmp_path / "notes.txt"
    notes.write_text("Some notes.")
    done = run_app("ask", str(notes), "  ", env=env)
    assert done.returncode == 2 and "No question given" in done.stderr
