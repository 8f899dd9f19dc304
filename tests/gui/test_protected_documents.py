"""The window with a password-protected and a damaged PDF: the password, then (once it
opened the file) the consent to keep runs; a damaged file is explained and read only on
request.

The modal dialogs are answered by replacing QInputDialog.getText/QMessageBox.question
(a test cannot click a modal box that blocks its own thread); the PDFs, the database
and the window are real."""

from __future__ import annotations

from PySide6.QtWidgets import QInputDialog, QMessageBox

from app import paths
from app.gui.main import make_app
from app.gui.unkept import UNKEPT_FILE
from app.gui.window import MainWindow
from app.settings import Settings
from app.store.database import open_database
from tests.documents.test_protected import (
    AUDIT_PW,
    AUDIT_SECRET,
    LEASE_PW,
    LEASE_SECRET,
    encrypted_pdf,
    files_containing,
    protected_room,
    ten_page_pdf,
)

FAST = Settings(n_ctx=2048, chunk_tokens=300, max_new_tokens=16, mode="single_pass")


def test_protected_document_not_kept_is_deleted_with_its_runs(qtbot, tmp_path, monkeypatch):
    path = encrypted_pdf(tmp_path / "vault.pdf")
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


def test_a_wrong_password_is_asked_again_saying_so(qtbot, tmp_path, monkeypatch):
    """And whether to keep the runs is asked once the document is open, not after a
    password that turns out wrong; opening it again asks nothing."""
    path = encrypted_pdf(tmp_path / "vault.pdf")
    asked: list[str] = []

    def get_text(parent, title, label, *args, **kwargs):
        asked.append(label)
        return ("S3CRET" if len(asked) == 1 else "s3cret"), True

    def question(parent, title, *args, **kwargs):
        asked.append(title)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QInputDialog, "getText", get_text)
    monkeypatch.setattr(QMessageBox, "question", question)
    make_app()
    win = MainWindow(FAST)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.document_opened, timeout=30_000):
        win.open_file(str(path))
    assert asked == [
        "Password for vault.pdf:",
        "That password does not open vault.pdf (passwords are case-sensitive).\n\n"
        "Password for vault.pdf:",
        "Keep runs of this protected document?",
    ]
    with qtbot.waitSignal(win.document_opened, timeout=30_000) as again:
        win.open_file(str(path))
    assert again.args[0].protected and len(asked) == 3
    win.model.stop()


def test_damaged_pdf_asks_before_reading_the_surviving_pages(qtbot, tmp_path, monkeypatch):
    data = ten_page_pdf()
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


def answer_passwords(monkeypatch, answers: dict[str, str]) -> list[str]:
    """QInputDialog answered with each file's own password (as a user reads the label's
    file name); the labels asked are returned, in order."""
    labels: list[str] = []

    def get_text(parent, title, label, *args, **kwargs):
        labels.append(label)
        return answers[label.rsplit("Password for ", 1)[1].rstrip(":")], True

    monkeypatch.setattr(QInputDialog, "getText", get_text)
    return labels


def test_a_folder_asks_each_protected_member_for_its_own_password(
    qtbot, tmp_path, app_home, monkeypatch
):
    room = protected_room(tmp_path / "room")
    labels = answer_passwords(monkeypatch, {"a-lease.pdf": LEASE_PW, "c-audit.pdf": AUDIT_PW})
    kept: list[str] = []

    def question(parent, title, text, *args, **kwargs):
        kept.append(title)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", question)
    make_app()
    win = MainWindow(FAST)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.document_opened, timeout=30_000) as opened:
        win.open_files([str(room)])
    # the lease asked first (no password yet), then the audit, which the lease's does not
    # open; the consent to keep runs asked once, with the first password
    assert labels == [
        "Password for a-lease.pdf:",
        "c-audit.pdf is protected too, and the password entered does not open it.\n\n"
        "Password for c-audit.pdf:",
    ]
    assert kept == ["Keep runs of this protected document?"]
    doc = opened.args[0]
    assert doc is win.document and doc.kind == "collection" and doc.protected
    assert [m.title for m in doc.members] == ["a-lease", "b-memo", "c-audit"]
    assert LEASE_SECRET in doc.text and AUDIT_SECRET in doc.text
    assert win.passwords == [LEASE_PW, AUDIT_PW]
    row = win.store.conn.execute("SELECT text FROM documents WHERE id = ?", (win.document_id,))
    assert row.fetchone()[0] == ""  # the text of a protected collection is never stored

    # The page view: the first member, then the second protected one at a cited passage,
    # each opened with the password that fits it.
    pages = win.viewer.pages
    assert pages.pdf is not None and pages.pdf.name.endswith("a-lease.pdf")
    assert not pages.pdf.is_encrypted
    at = doc.text.index(AUDIT_SECRET)
    win.viewer.mark_span(at, at + len(AUDIT_SECRET))
    assert pages.pdf is not None and pages.pdf.name.endswith("c-audit.pdf")
    assert not pages.pdf.is_encrypted and pages.pdf.page_count == 1
    assert AUDIT_SECRET in pages.pdf[0].get_text() and not pages.label.pixmap().isNull()
    assert pages.highlights.keys() == {1}
    # without the password that fits, the page view shows nothing, not encrypted garbage
    pages.open(str(room / "c-audit.pdf"), [LEASE_PW])
    assert pages.pdf is None and "locked" in pages.status.text()

    win.close()
    win.model.stop()
    for phrase in ("lease code", "audit code", LEASE_PW, AUDIT_PW):
        assert files_containing(app_home, phrase) == []  # settings, database, logs, cache


def test_a_damaged_member_asks_once_and_the_whole_collection_opens(qtbot, tmp_path, monkeypatch):
    """The answer reopens what was opened (every member), not only the first file."""
    data = ten_page_pdf()
    room = tmp_path / "room"
    room.mkdir()
    (room / "a-plain.txt").write_text("Readable text about rivers.\n", encoding="utf-8")
    (room / "b-cut.pdf").write_bytes(data[: len(data) // 2])
    asked: list[str] = []

    def question(parent, title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", question)
    warned: list[str] = []  # a failure to open: said, not left blocking the test
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text, *a, **k: warned.append(text))
    make_app()
    win = MainWindow(FAST)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.document_opened, timeout=30_000) as opened:
        win.open_files([str(room / "a-plain.txt"), str(room / "b-cut.pdf")])
    assert warned == []
    assert len(asked) == 1 and asked[0].startswith("<p>b-cut.pdf is damaged")
    assert "of 10 pages" in asked[0]
    doc = opened.args[0]
    assert doc.kind == "collection" and [m.title for m in doc.members] == ["a-plain", "b-cut"]
    win.model.stop()


def test_reordering_a_protected_collection_asks_nothing_again(
    qtbot, tmp_path, app_home, monkeypatch
):
    from app.gui import collection_dialog

    room = protected_room(tmp_path / "room")
    labels = answer_passwords(monkeypatch, {"a-lease.pdf": LEASE_PW, "c-audit.pdf": AUDIT_PW})
    asked: list[str] = []
    monkeypatch.setattr(
        QMessageBox, "question", lambda *a, **k: asked.append(a[1]) or QMessageBox.StandardButton.No
    )
    make_app()
    win = MainWindow(FAST)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.document_opened, timeout=30_000):
        win.open_files([str(room)])
    assert len(labels) == 2 and len(asked) == 1
    # File > New or edit collection: the user puts the audit first and clicks OK
    monkeypatch.setattr(collection_dialog.CollectionDialog, "exec", lambda self: 1)
    monkeypatch.setattr(
        collection_dialog.CollectionDialog,
        "paths",
        lambda self: sorted((m.path for m in win.document.members), key=lambda p: "audit" not in p),
    )
    with qtbot.waitSignal(win.document_opened, timeout=30_000) as opened:
        win.edit_collection()
    assert opened.args[0].members[0].path.endswith("c-audit.pdf")
    assert len(labels) == 2 and len(asked) == 1  # nothing asked again
    assert win.document_id in win.unkept.ids  # "not kept" still holds for the new order
    win.close()
    win.model.stop()
