"""Damaged and copy-protected files are named as such, not blamed on a missing text
layer or a generic read error; the user decides whether to read what survived."""

from __future__ import annotations

import zipfile
from pathlib import Path

import docx
import pymupdf
import pytest

from app.documents import cache
from app.documents.ingest import load_document
from app.documents.model import DamagedFile, DocumentDamaged
from app.errors import DocumentError


def ten_page_pdf(path: Path) -> bytes:
    pdf = pymupdf.open()
    for number in range(10):
        page = pdf.new_page(width=595, height=842)
        page.insert_textbox(pymupdf.Rect(56, 56, 539, 800), f"Page {number} text " * 40)
    pdf.save(path)
    pdf.close()
    return path.read_bytes()


def test_a_pdf_cut_in_the_middle_is_reported_as_damaged_before_reading(tmp_path):
    data = ten_page_pdf(tmp_path / "whole.pdf")
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(data[: len(data) // 2])  # e.g. an interrupted download
    with pytest.raises(DocumentDamaged) as raised:
        load_document(cut)
    error = raised.value
    assert error.exit_code == 7 and error.pages_total == 10 and 0 < error.pages_read < 10
    message = str(error)
    assert f"{error.pages_read} of 10 pages could be read" in message
    assert "cut short" in message and "--accept-damaged" in message
    assert "OCR" not in message and "text layer" not in message  # the old mis-blame

    document = load_document(cut, accept_damaged=True)
    assert document.damage and document.warnings[0].startswith("cut.pdf is damaged")
    assert not any("text layer" in w for w in document.warnings)
    assert "Page 0 text" in document.text and "Page 9 text" not in document.text
    # Not cached: the next open asks again instead of answering from a partial copy.
    assert not list(cache.folder().glob(f"{document.sha256}-*"))
    with pytest.raises(DocumentDamaged):
        load_document(cut)


def test_a_pdf_missing_only_its_xref_is_repaired_and_read_whole(tmp_path):
    data = ten_page_pdf(tmp_path / "whole.pdf")
    cut = tmp_path / "no-xref.pdf"
    cut.write_bytes(data[: data.rindex(b"xref")])  # every object survived
    document = load_document(cut)
    assert document.page_count == 10 and "Page 9 text" in document.text
    assert "repaired; all 10 pages read" in document.warnings[0]


def test_a_pdf_whose_page_list_is_lost_says_damaged_not_no_pages(tmp_path):
    data = ten_page_pdf(tmp_path / "whole.pdf")
    # Keep the header and the first objects only: catalog and page tree are gone.
    cut = tmp_path / "stub.pdf"
    cut.write_bytes(data[: data.index(b"3 0 obj")])
    with pytest.raises(DocumentError, match="damaged|PyMuPDF can read"):
        load_document(cut)


def minimal_epub(path: Path, extra: dict[str, bytes] | None = None) -> Path:
    chapter = (
        b'<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
        b"<head><title>c</title></head><body><p>The heron nests by the mill.</p></body></html>"
    )
    opf = (
        b'<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
        b'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        b'<dc:identifier id="id">x</dc:identifier><dc:title>Birds</dc:title></metadata>'
        b'<manifest><item id="c" href="c.xhtml" media-type="application/xhtml+xml"/>'
        b'</manifest><spine><itemref idref="c"/></spine></package>'
    )
    container = (
        b'<?xml version="1.0"?><container version="1.0" '
        b'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        b'<rootfile full-path="content.opf" media-type="application/oebps-package+xml"/>'
        b"</rootfiles></container>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("content.opf", opf)
        archive.writestr("c.xhtml", chapter)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def encryption_xml(algorithm: str, uri: str = "c.xhtml") -> bytes:
    return (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        f'<enc:EncryptionMethod Algorithm="{algorithm}"/>'
        '<enc:CipherData><enc:CipherReference URI="{uri}"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    ).encode()


def test_epub_with_drm_is_named_as_drm(tmp_path):
    plain = minimal_epub(tmp_path / "birds.epub")
    assert "heron nests" in load_document(plain).text  # the control: a readable EPUB
    fonts_only = minimal_epub(
        tmp_path / "fonts.epub",
        {
            "META-INF/encryption.xml": encryption_xml(
                "http://www.idpf.org/2008/embedding", uri="fonts/serif.otf"
            ),
            "fonts/serif.otf": bytes(64),
        },
    )
    assert "heron nests" in load_document(fonts_only).text  # font obfuscation is not DRM
    aes = minimal_epub(
        tmp_path / "locked.epub",
        {"META-INF/encryption.xml": encryption_xml("http://www.w3.org/2001/04/xmlenc#aes128-cbc")},
    )
    adept = minimal_epub(tmp_path / "adept.epub", {"META-INF/rights.xml": b"<rights/>"})
    for path in (aes, adept):
        with pytest.raises(DocumentError, match="DRM") as error:
            load_document(path)
        assert "DRM-free copy" in str(error.value)


def test_epub_with_a_missing_chapter_is_damaged_not_read_as_an_error_message(tmp_path):
    good = minimal_epub(tmp_path / "birds.epub")
    broken = tmp_path / "broken.epub"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            if item.filename != "c.xhtml":  # the only chapter is gone
                target.writestr(item, source.read(item))
    with pytest.raises(DocumentError, match="damaged") as error:
        load_document(broken)
    assert "ERROR" not in str(error.value)


def test_rights_managed_xps_and_drm_mobi_are_named(tmp_path):
    xps = tmp_path / "memo.xps"
    xps.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000))  # OLE wrapper
    with pytest.raises(DocumentError, match="rights management"):
        load_document(xps)
    record0 = 96
    header = bytearray(record0 + 32)
    header[60:68] = b"BOOKMOBI"
    header[76:78] = (1).to_bytes(2, "big")
    header[78:82] = record0.to_bytes(4, "big")
    header[record0 + 12 : record0 + 14] = (2).to_bytes(2, "big")  # Mobipocket DRM
    mobi = tmp_path / "novel.mobi"
    mobi.write_bytes(bytes(header))
    with pytest.raises(DocumentError, match="DRM"):
        load_document(mobi)
    header[record0 + 12 : record0 + 14] = bytes(2)  # unencrypted: not called DRM
    mobi.write_bytes(bytes(header))
    with pytest.raises(DocumentError) as other:
        load_document(mobi)
    assert "DRM" not in str(other.value)


def test_a_cut_encrypted_pdf_is_damaged_not_a_scan(tmp_path):
    # Its trailer (and with it /Encrypt) is gone, so MuPDF sees an unencrypted file whose
    # content streams fail to inflate: blank pages, which are not "no text layer".
    pdf = pymupdf.open()
    for number in range(6):
        page = pdf.new_page()
        page.insert_textbox(pymupdf.Rect(56, 56, 539, 800), f"Secret page {number} " * 40)
    whole = tmp_path / "secret.pdf"
    pdf.save(whole, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="owner")
    pdf.close()
    data = whole.read_bytes()
    cut = tmp_path / "secret_cut.pdf"
    cut.write_bytes(data[: len(data) * 2 // 3])
    for password in (None, "pw"):
        with pytest.raises(DamagedFile) as raised:
            load_document(cut, password=password)
        message = str(raised.value)
        assert message.startswith("secret_cut.pdf is damaged") and raised.value.exit_code == 7
        assert "text layer" not in message and "OCR" not in message


def test_a_damaged_pdf_of_which_nothing_survives_exits_7_like_one_partly_read(tmp_path):
    data = ten_page_pdf(tmp_path / "whole.pdf")
    cut = tmp_path / "stub.pdf"
    cut.write_bytes(data[: data.index(b"3 0 obj")])
    with pytest.raises(DamagedFile, match="^stub.pdf is damaged") as raised:
        load_document(cut)
    assert raised.value.exit_code == 7 and not isinstance(raised.value, DocumentDamaged)


@pytest.mark.parametrize(
    "content",
    [
        bytes(4096),  # zeros: an interrupted copy
        b"PK\x03\x04" + b"word/document.xml" + b"\x00" * 200,  # a cut package
    ],
)
def test_a_damaged_docx_exits_7_like_a_damaged_pdf(tmp_path, content):
    path = tmp_path / "lease.docx"
    path.write_bytes(content)
    with pytest.raises(DamagedFile, match="^lease.docx is damaged") as raised:
        load_document(path)
    assert raised.value.exit_code == 7


def test_a_docx_with_a_broken_part_exits_7(tmp_path):
    good = tmp_path / "good.docx"
    document = docx.Document()
    document.add_paragraph("Rent is due on the first.")
    document.save(good)
    broken = tmp_path / "lease.docx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename == "word/document.xml":
                body = body[: len(body) // 2]  # cut mid-element
            target.writestr(item, body)
    with pytest.raises(DamagedFile, match="^lease.docx is damaged") as raised:
        load_document(broken)
    assert raised.value.exit_code == 7
