"""Plain text and Markdown: encoding detection, binary refusal, virtual pages.

Text files have no pages, so the page map cuts them into "virtual pages": at form feeds
when the file has them, otherwise about every 3,000 characters at a line end. A span's
rect for text is (0, line, 0, line + 1): the line number within its virtual page.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

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
_ESCAPED = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a bad byte


def _looks_like_text(text: str) -> bool:
    if not text:
        return True
    sample = text[:20000]
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t\f\v\x1b")
    return control / len(sample) < 0.01 and "\x00" not in sample


def _mostly_cjk(text: str) -> bool:
    """European text in cp1252 rarely decodes as GB18030/Shift-JIS at all; when it does,
    the result is not mostly ideographs and kana. Half-width katakana prove nothing: in
    Shift-JIS they are single bytes 0xA1-0xDF, which is where cp1252 puts £, é and the like."""
    wide = [ch for ch in text[:20000] if ord(ch) > 0x7F and not 0xFF61 <= ord(ch) <= 0xFF9F]
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


def _utf32_without_bom(data: bytes) -> str | None:
    """UTF-32 without a BOM: every code point is at most 0x10FFFF, so in each 4-byte unit
    the top byte is 0 and the next at most 0x10 (LE: bytes 3 and 2; BE: bytes 0 and 1)."""
    sample = data[:4000]
    if len(sample) < 8 or len(data) % 4:
        return None
    for encoding, top, next_ in (("utf-32-le", 3, 2), ("utf-32-be", 0, 1)):
        if not any(sample[top::4]) and max(sample[next_::4]) <= 0x10:
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    return None


def _mostly_utf8(data: bytes) -> tuple[str, int] | None:
    """(text, bad bytes) when ``data`` is UTF-8 but for a few stray bytes (a file spliced
    from two sources, a bad copy): the bad bytes become U+FFFD and the rest stays right,
    where cp1252 would garble every accented letter. Valid multi-byte sequences must
    outnumber the bad bytes 4 to 1: cp1252 or GB18030 text yields almost none of them."""
    escaped = data.decode("utf-8", errors="surrogateescape")  # a bad byte: one U+DCxx
    text = _ESCAPED.sub("\ufffd", escaped)
    bad = len(escaped) - len(_ESCAPED.sub("", escaped))
    valid = sum(1 for ch in escaped if ord(ch) > 0x7F) - bad
    if bad and valid >= 4 * bad:
        return text, bad
    return None


def _binary(name: str) -> DocumentError:
    return DocumentError(
        f"{name} looks like a binary file, not text.",
        hint="Open a PDF, an e-book or a plain-text file; if this is text in an unusual "
        "encoding, save it as UTF-8 first.",
    )


def _replaced(name: str, bad: int) -> str:
    return (
        f"{name}: {bad:,} byte{'s' if bad > 1 else ''} that {'are' if bad > 1 else 'is'} "
        "not valid UTF-8 "
        f"{'were' if bad > 1 else 'was'} replaced with \ufffd; the rest was read as UTF-8."
    )


def decode_text(data: bytes, name: str) -> tuple[str, str, list[str]]:
    """(text, encoding, notices). Raises DocumentError for binary content."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding), encoding + " (BOM)", []
            except UnicodeDecodeError as error:
                mostly = _mostly_utf8(data[len(bom) :]) if encoding == "utf-8" else None
                if mostly is not None:
                    return mostly[0], "utf-8 (BOM)", [_replaced(name, mostly[1])]
                raise DocumentError(
                    f"{name} starts with a {encoding} marker but is not valid "
                    f"{encoding}: {error.reason}."
                ) from error
    for without_bom, label in ((_utf32_without_bom, "utf-32"), (_utf16_without_bom, "utf-16")):
        text = without_bom(data)
        if text is not None and _looks_like_text(text):
            return text, f"{label} (no BOM)", []
    if b"\x00" in data[:8192]:
        raise _binary(name)
    try:
        text = data.decode("utf-8")
        if _looks_like_text(text):
            return text, "utf-8", []
    except UnicodeDecodeError:
        mostly = _mostly_utf8(data)  # before GB18030, which decodes almost anything
        if mostly is not None and _looks_like_text(mostly[0]):
            return mostly[0], "utf-8", [_replaced(name, mostly[1])]
    for encoding in _CJK:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_like_text(text) and _mostly_cjk(text):
            return text, encoding, []
    for encoding in _LEGACY:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_like_text(text):
            return text, encoding, []
    raise _binary(name)


def text_document(path: str, sha256: str, title: str, data: bytes) -> Document:
    # Messages name the file as the user sees it (notes.txt), not its title.
    text, encoding, notices = decode_text(data, Path(path).name)
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
        warnings=notices,
        metadata={"encoding": encoding},
    )
