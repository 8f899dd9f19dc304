"""Text files that are almost, not quite, one encoding: UTF-8 with a stray byte stays
UTF-8 (the byte replaced, and said), legacy encodings are not mistaken for it."""

from __future__ import annotations

import pytest

from app.documents.ingest import load_document

FRENCH = "Le café est fermé. Résumé des incidents à Zürich. " * 200
CHINESE = "合同的签署人是王伟。金额为五百万元。" * 100


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_utf8_with_one_stray_byte_is_utf8_with_a_notice(tmp_path, bom):
    data = FRENCH.encode("utf-8")
    path = tmp_path / "one_bad_byte.txt"
    path.write_bytes(bom + data[:5000] + b"\xff" + data[5000:])
    doc = load_document(path)
    assert "Le café est fermé" in doc.text and "Ã" not in doc.text
    assert doc.text.count("\ufffd") == 1
    assert doc.text.replace("\ufffd", "") == FRENCH
    assert doc.warnings == [
        "one_bad_byte.txt: 1 byte that is not valid UTF-8 was replaced with \ufffd; the rest "
        "was read as UTF-8."
    ]


def test_chinese_utf8_with_stray_bytes_is_not_read_as_gb18030(tmp_path):
    data = CHINESE.encode("utf-8")
    path = tmp_path / "contract.txt"
    path.write_bytes(data[:301] + b"\x80\x80" + data[301:])  # 300 is a character boundary
    doc = load_document(path)
    assert doc.metadata["encoding"] == "utf-8" and "王伟" in doc.text
    assert "2 bytes that are not valid UTF-8 were replaced" in doc.warnings[0]


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (FRENCH, "cp1252"),
        ("Prix: 10 £ net.\n" * 50, "cp1252"),  # ASCII but for one byte: no UTF-8 evidence
        (CHINESE, "gb18030"),
    ],
)
def test_legacy_encodings_are_not_taken_for_damaged_utf8(tmp_path, text, encoding):
    path = tmp_path / "legacy.txt"
    path.write_bytes(text.encode(encoding))
    doc = load_document(path)
    assert doc.text == text and doc.metadata["encoding"] == encoding and not doc.warnings


def test_utf32_without_bom_with_characters_beyond_the_bmp(tmp_path):
    text = "Incident report: pump failed \U0001f6a8 at 03:00.\n" * 20
    for encoding in ("utf-32-le", "utf-32-be"):
        path = tmp_path / f"{encoding}.txt"
        path.write_bytes(text.encode(encoding))
        doc = load_document(path)
        assert doc.text == text and doc.metadata["encoding"] == "utf-32 (no BOM)"
