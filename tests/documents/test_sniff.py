"""Type by content: real files made here (PyMuPDF, python-docx, zipfile, gzip, tarfile,
this interpreter's own executable), then read under wrong names."""

from __future__ import annotations

import gzip
import io
import sys
import tarfile
import zipfile
from pathlib import Path

import docx
import pymupdf
import pytest

from app.__main__ import main
from app.documents.ingest import load_document
from app.documents.sniff import sniff
from app.errors import DocumentError
from tests.conftest import make_pdf


def _pdf_bytes(tmp_path: Path) -> bytes:
    return make_pdf(tmp_path / "x.pdf", ["The vault code is 4417."]).read_bytes()


def _docx_bytes() -> bytes:
    d = docx.Document()
    d.add_paragraph("A Word paragraph.")
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def _zip(entries: dict[str, bytes], stored_first: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        if stored_first:  # EPUB: "mimetype" first and uncompressed
            z.writestr(zipfile.ZipInfo(stored_first), entries.pop(stored_first))
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


def _image(fmt: str) -> bytes:
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 8, 8), False)
    return pix.tobytes(fmt)


def _tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("notes.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return out.getvalue()


def test_each_kind_by_its_bytes(tmp_path):
    cases = {
        "pdf": _pdf_bytes(tmp_path),
        "docx": _docx_bytes(),
        "epub": _zip(
            {"mimetype": b"application/epub+zip", "META-INF/container.xml": b"<c/>"},
            stored_first="mimetype",
        ),
        "xlsx": _zip({"[Content_Types].xml": b"<T/>", "xl/workbook.xml": b"<w/>"}),
        "pptx": _zip({"[Content_Types].xml": b"<T/>", "ppt/presentation.xml": b"<p/>"}),
        "zip": _zip({"a.txt": b"one", "b.csv": b"1,2"}),
        "png": _image("png"),
        "jpeg": _image("jpg"),
        "gif": b"GIF89a\x08\x00\x08\x00" + bytes(20),
        "exe": Path(sys.executable).resolve().read_bytes()[:4096],  # a real ELF / Mach-O
        "gzip": gzip.compress(b"some text"),
        "tar": _tar(),
        "7z": b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24),
        "rar": b"Rar!\x1a\x07\x01\x00" + bytes(24),
        "rtf": rb"{\rtf1\ansi Hello}",
        "html": b"\xef\xbb\xbf  \n<!-- saved page -->\n<!DOCTYPE html><html><body>x</body></html>",
        "text": "Plain notes, café.\n".encode(),
    }
    for kind, data in cases.items():
        assert sniff(data).kind == kind, kind
    assert sniff(b"MZ\x90\x00" + bytes(60)).kind == "exe"  # a Windows program's header
    assert sniff(b"junk\n%PDF-1.7\n" + bytes(10)).kind == "pdf"  # %PDF inside the first KB
    assert sniff(b"<HEAD><title>t</title></HEAD>").kind == "html"
    assert sniff("<html><body>x</body></html>".encode("utf-16")).kind == "html"  # BOM
    assert sniff(b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml">').kind == (
        "html"
    )
    assert sniff(b"<p>a fragment is not a page</p>").kind == "text"
    assert sniff(b"<?xml version='1.0'?><note>x</note>").kind == "text"


def test_html_named_pdf_is_read_as_html_with_a_notice(tmp_path):
    path = tmp_path / "statement.pdf"
    path.write_text("<!doctype html><html><body><h1>Statement</h1><p>Balance: 42.</p>")
    doc = load_document(path)
    assert doc.kind == "html" and doc.text == "# Statement\nBalance: 42."
    assert doc.warnings == [
        "statement.pdf is a web page (HTML), although its name ends in .pdf: it was read as HTML."
    ]
    again = load_document(path)  # from the cache: the notice is still there, once
    assert again.warnings == doc.warnings


def test_pdf_named_docx_is_read_as_the_pdf_it_is(tmp_path, capsys):
    path = tmp_path / "contract.docx"
    path.write_bytes(_pdf_bytes(tmp_path))
    doc = load_document(path)
    assert doc.kind == "pdf" and "The vault code is 4417." in doc.text
    at = doc.text.index("4417")
    assert doc.rects_for(at, at + 4)[0][0] == 1  # a real PDF page map, with rectangles
    assert any("is a PDF, although its name ends in .docx" in w for w in doc.warnings)
    assert main(["text", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "--- page 1 ---\n" in out and "The vault code is 4417." in out
    assert "is a PDF, although its name ends in .docx" in err


def test_docx_named_txt_is_read_as_word(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(_docx_bytes())
    doc = load_document(path)
    assert doc.kind == "docx" and doc.text == "A Word paragraph."
    assert "is a Word document (.docx), although its name ends in .txt" in doc.warnings[0]


@pytest.mark.parametrize(
    ("name", "data", "says", "advice"),
    [
        ("budget.xlsx", _zip({"xl/workbook.xml": b"<w/>"}), "Excel workbook", "PDF or CSV"),
        ("deck.pptx", _zip({"ppt/presentation.xml": b"<p/>"}), "PowerPoint", "as PDF"),
        ("scan.png", _image("png"), "PNG image", "OCR"),
        ("photo.pdf", _image("jpg"), "JPEG image", "Tesseract"),
        ("setup.pdf", b"MZ\x90\x00" + bytes(200), "Windows program", "document itself"),
        ("files.docx", _zip({"a.txt": b"1"}), "damaged", "docx"),
        ("bundle.zip", _zip({"a.txt": b"1"}), "ZIP archive", "Extract it"),
        ("logs.gz", gzip.compress(b"x" * 100), "gzip archive", "Extract it"),
    ],
)
def test_unsupported_types_get_one_clear_sentence(tmp_path, capsys, name, data, says, advice):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DocumentError) as caught:
        load_document(path)
    assert says in caught.value.message and advice in str(caught.value)
    assert caught.value.message.count(". ") == 0  # one sentence, then the hint
    assert main(["text", str(path)]) == (7 if says == "damaged" else 3)  # README's codes
    assert says in capsys.readouterr().err


def test_binary_garbage_named_pdf_is_called_damaged(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"\x00\x01\x02garbage" * 100)
    with pytest.raises(DocumentError, match="damaged or not a PDF") as caught:
        load_document(path)
    assert caught.value.exit_code == 7


def test_text_named_pdf_is_read_as_text_with_a_notice(tmp_path):
    path = tmp_path / "minutes.pdf"
    path.write_text("Minutes of the meeting.\nThe chair opened at 9.\n", encoding="utf-8")
    doc = load_document(path)
    assert doc.kind == "text" and "chair opened" in doc.text
    assert "is plain text, although its name ends in .pdf" in doc.warnings[0]
