"""Plain text and Markdown: encoding detection, binary refusal, virtual pages.

Text files have no pages, so the page map cuts them into "virtual pages": at form feeds
when the file has them, otherwise about every 3,000 characters at a line end. A span's
rect for text is (0, line, 0, line + 1): the line number within its virtual page.
"""

from __future__ import annotations

import codecs

from app.documents.model import Document, SpanTable
from app.errors import DocumentError

VIRTUAL_PAGE_CHARS = 3000
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
]
# Tried in order after UTF-8; cp1252 decodes almost anything, so it is a last resort
# before latin-1 and only accepted when the result looks like text.
_CJK = ["gb18030", "shift_jis"]  # accepted only when they yield mostly CJK characters
_LEGACY = ["cp1252", "cp1251", "latin-1"]


def _looks_like_text(text: str) -> bool:
    if not text:
        return True
    sample = text[:20000]
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t\f\v\x1b")
    return control / len(sample) < 0.01 and "\x00" not in sample


def _mostly_cjk(text: str) -> bool:
    """European text in cp1252 rarely decodes as GB18030/Shift-JIS at all; when it does,
    the result is not mostly ideographs and kana."""
    wide = [ch for ch in text[:20000] if ord(ch) > 0x7F]
    cjk = sum(1 for ch in wide if 0x3000 <= ord(ch) <= 0x9FFF or 0xFF00 <= ord(ch) <= 0xFFEF)
    return bool(wide) and cjk / len(wide) > 0.7


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text without a BOM has a NUL in every other byte (for Latin scripts)."""
    sample = data[:4000]
    if len(sample) < 4:
        return None
    even_nuls = sample[0::2].count(0) / (len(sample) / 2)
    odd_nuls = sample[1::2].count(0) / (len(sample) / 2)
    if odd_nuls > 0.3 and even_nuls < 0.05:
        encoding = "utf-16-le"
    elif even_nuls > 0.3 and odd_nuls < 0.05:
        encoding = "utf-16-be"
    else:
        return None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def decode_text(data: bytes, name: str) -> tuple[str, str]:
    """(text, encoding). Raises DocumentError for binary content."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding), encoding + " (BOM)"
            except UnicodeDecodeError as error:
                raise DocumentError(
                    f"{name} starts with a {encoding} marker but is not valid "
                    f"{encoding}: {error.reason}."
                ) from error
    utf16 = _utf16_without_bom(data)
    if utf16 is not None and _looks_like_text(utf16):
        return utf16, "utf-16 (no BOM)"
    if b"\x00" in data[:8192]:
        raise DocumentError(
            f"{name} looks like a binary file, not text.",
            hint="Open a PDF, an e-book or a plain-text file; if this is text in an unusual "
            "encoding, save it as UTF-8 first.",
        )
    try:
        text = data.decode("utf-8")
        if _looks_like_text(text):
            return text, "utf-8"
    except UnicodeDecodeError:
        pass
    for encoding in _CJK:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_like_text(text) and _mostly_cjk(text):
            return text, encoding
    for encoding in _LEGACY:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_like_text(text):
            return text, encoding
    raise DocumentError(
        f"{name} looks like a binary file, not text.",
        hint="Open a PDF, an e-book or a plain-text file; if this is text in an unusual "
        "encoding, save it as UTF-8 first.",
    )


def text_document(path: str, sha256: str, title: str, data: bytes) -> Document:
    text, encoding = decode_text(data, title)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    page_starts: list[int] = [0]
    spans = SpanTable()
    line_in_page = 0
    pos = 0
    use_form_feeds = "\f" in text
    for line in text.splitlines(keepends=True):
        new_page = (use_form_feeds and line.startswith("\f")) or (
            not use_form_feeds and pos - page_starts[-1] >= VIRTUAL_PAGE_CHARS
        )
        if new_page and pos > page_starts[-1]:
            page_starts.append(pos)
            line_in_page = 0
        end = pos + len(line.rstrip("\n"))
        spans.add(pos, end, len(page_starts), 0.0, line_in_page, 0.0, line_in_page + 1)
        line_in_page += 1
        pos += len(line)
    return Document(
        path=path,
        sha256=sha256,
        kind="text",
        title=title,
        text=text,
        page_starts=page_starts,
        spans=spans,
        metadata={"encoding": encoding},
    )
