"""``python -m app text FILE [--pages A-B]``: what the model gets, with page markers."""

from __future__ import annotations

import subprocess
import sys

import docx
import pymupdf
import pytest

from app.__main__ import main
from app.documents.ingest import load_document
from app.documents.markers import mark_pages
from tests.conftest import make_pdf

PAGES = ["Alpha page text.", "Bravo page text.", "Charlie page text.", "Delta page text."]


def test_every_page_starts_with_its_marker(tmp_path, capsys):
    path = make_pdf(tmp_path / "four.pdf", PAGES)
    assert main(["text", str(path)]) == 0
    out = capsys.readouterr().out
    for number, body in enumerate(PAGES, start=1):
        marker = f"--- page {number} ---\n"
        assert out.index(marker) < out.index(body)
        assert out.count(marker) == 1
    # nothing but the markers is added: removing them gives back Document.text
    text = load_document(path).text
    stripped = out
    for number in range(1, 5):
        stripped = stripped.replace(f"--- page {number} ---\n", "")
    assert stripped.rstrip("\n") == text.rstrip("\n")


def test_a_page_range(tmp_path, capsys):
    path = make_pdf(tmp_path / "four.pdf", PAGES)
    assert main(["text", str(path), "--pages", "2-3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("--- page 2 ---\nBravo")
    assert "Charlie" in out and "Alpha" not in out and "Delta" not in out
    assert main(["text", str(path), "--pages", "4"]) == 0
    assert capsys.readouterr().out == "--- page 4 ---\nDelta page text.\n"
    assert main(["text", str(path), "--pages", "3-"]) == 0
    assert "Delta" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["0", "5-2", "two", "9"])
def test_bad_ranges_say_what_to_write(tmp_path, capsys, bad):
    path = make_pdf(tmp_path / "four.pdf", PAGES)
    assert main(["text", str(path), "--pages", bad]) == 2
    err = capsys.readouterr().err
    assert "page" in err and ("1-4" in err or "2-5" in err)


def test_marked_offsets_land_on_the_same_characters(tmp_path):
    d = docx.Document()
    for i in range(3):
        d.add_paragraph(f"Section {i} says the figure is {i * 7}.")
        d.add_page_break()
    d.save(tmp_path / "s.docx")
    doc = load_document(tmp_path / "s.docx")
    marked = mark_pages(doc)
    for phrase in ("figure is 0", "figure is 7", "figure is 14"):
        at = doc.text.index(phrase)
        shown = marked.display_offset(at)
        assert marked.text[shown : shown + len(phrase)] == phrase
    part = mark_pages(doc, 2, 2)
    at = doc.text.index("figure is 7")
    assert part.text.startswith("--- page 2 ---\n")
    assert part.text[part.display_offset(at) :].startswith("figure is 7")


def test_as_a_process(tmp_path):
    """The real entry point: stdout is the text, the notice goes to stderr."""
    path = tmp_path / "page.pdf"  # an HTML page saved under a PDF's name
    path.write_text("<html><body><p>Saved from the browser.</p></body></html>")
    result = subprocess.run(
        [sys.executable, "-m", "app", "text", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "--- page 1 ---\nSaved from the browser.\n"
    assert "read as HTML" in result.stderr


def _cut_pdf(tmp_path):
    pdf = pymupdf.open()
    for number in range(8):
        page = pdf.new_page()
        page.insert_textbox(pymupdf.Rect(56, 56, 539, 800), f"Page {number} text " * 40)
    whole = tmp_path / "whole.pdf"
    pdf.save(whole)
    pdf.close()
    data = whole.read_bytes()
    cut = tmp_path / "trunc.pdf"
    cut.write_bytes(data[: len(data) // 2])  # an interrupted download
    return cut


def test_a_damaged_pdf_keeps_stdout_to_the_text_and_takes_accept_damaged(tmp_path):
    """MuPDF's own messages ("MuPDF error: format error: ...") never reach stdout, which
    is exactly what the model reads; the hint's --accept-damaged is a flag `text` takes."""
    cut = _cut_pdf(tmp_path)
    refused = subprocess.run(
        [sys.executable, "-m", "app", "text", str(cut)], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 7 and "--accept-damaged" in refused.stderr
    assert refused.stdout == ""
    accepted = subprocess.run(
        [sys.executable, "-m", "app", "text", str(cut), "--accept-damaged"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.startswith("--- page 1 ---\nPage 0 text")
    assert "MuPDF" not in accepted.stdout and "Page 7 text" not in accepted.stdout
    assert "Notice: trunc.pdf is damaged (the file looks cut short)" in accepted.stderr


def test_text_takes_passwords_as_ask_does(tmp_path, env, capsys, monkeypatch):
    """Several --password (the first that opens it wins), or QWENLONG_READER_PASSWORD."""
    from tests.documents.test_protected import SECRET, encrypted_pdf

    path = encrypted_pdf(tmp_path / "vault.pdf")
    monkeypatch.setenv("QWENLONG_READER_HOME", env["QWENLONG_READER_HOME"])
    assert main(["text", str(path), "--password", "guess", "--password", "s3cret"]) == 0
    assert SECRET in " ".join(capsys.readouterr().out.split())
    monkeypatch.setenv("QWENLONG_READER_PASSWORD", "s3cret")
    assert main(["text", str(path)]) == 0
    assert SECRET in " ".join(capsys.readouterr().out.split())
    monkeypatch.delenv("QWENLONG_READER_PASSWORD")
    assert main(["text", str(path)]) == 3
