"""The window with a password-protected and a damaged PDF: the password and the consent
to keep runs are asked together; a damaged file is explained and read only on request.

The modal dialogs are answered by replacing QInputDialog.getText/QMessageBox.question
(a test cannot click a modal box that blocks its own thread); the PDFs, the database
and the window are real."""

from __future__ import annotations

import pymupdf
from PySide6.QtWidgets import QInputDialog, QMessageBox

from app import paths
from app.gui.main import make_app
from app.gui.unkept import UNKEPT_FILE
from app.gui.window import MainWindow
from app.settings import Settings
from app.store.database import open_database

FAST = Settings(n_ctx=2048, chunk_tokens=300, max_new_tokens=16, mode="single_pass")
SECRET = "The vault combination is 31-07-1987."


def test_protected_document_not_kept_is_deleted_with_its_runs(qtbot, tmp_path, monkeypatch):
    path = tmp_path / "vault.pdf"
    pdf = pymupdf.open()
    pdf.new_page().insert_text((72, 72), SECRET)
    pdf.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="s3cret", owner_pw="own")
    asked: list[str] = []
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("s3cret", True))

    def question(parent, title, text, *args, **kwargs):
        asked.append(title)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", question)
    make_app()
    win = MainWindow(FAST)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.document_opened, timeout=30_000) as opened:
        win.open_file(str(path))
    assert opened.args[0].protected and asked == ["Keep runs of this protected document?"]
    document_id = win.document_id
    session = win.store.create_session(document_id, "What is the combination?")
    assert (paths.data_dir() / UNKEPT_FILE).exists()  # a crash now still deletes it later
    win.close()
    win.model.stop()
    store = open_database()
    assert store.list_documents() == [] and store.list_sessions() == []
    assert session and not (paths.data_dir() / UNKEPT_FILE).exists()
    store.close()


def test_damaged_pdf_asks_before_reading_the_surviving_pages(qtbot, tmp_path, monkeypatch):
    pdf = pymupdf.open()
    for number in range(10):
        pdf.new_page().insert_textbox(pymupdf.Rect(56, 56, 539, 800), f"Page {number} " * 80)
    data = pdf.tobytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(data[: len(data) // 2])
    asked: list[str] = []

    def question(parent, title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", question)
    make_app()
    win = MainWindow(FAST)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.document_opened, timeout=30_000) as opened:
        win.open_file(str(cut))
    assert len(asked) == 1 and "of 10 pages could be read" in asked[0]
    assert opened.args[0].damage and "OCR" not in asked[0]
    win.model.stop()
