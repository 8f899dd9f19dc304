"""The CLI with protected and damaged documents: clear exits before any run, a protected
document's run kept only with --keep-protected-runs (a real run of the tiny model: what
is kept or not does not depend on what the model writes)."""

from __future__ import annotations

import os
from pathlib import Path

import pymupdf
import pytest

from app.documents.ingest import load_document
from app.store.database import open_database
from tests.cli.test_ask_end_to_end import run_app

SECRET = "The vault combination is 31-07-1987."


@pytest.fixture
def env(app_home) -> dict[str, str]:
    return {**os.environ, "QWENLONG_READER_HOME": str(app_home)}


def vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault.pdf"
    pdf = pymupdf.open()
    pdf.new_page().insert_text((72, 72), SECRET)
    pdf.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="s3cret", owner_pw="own")
    return path


def files_containing(folder: Path, phrase: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and phrase.encode() in p.read_bytes()]


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
