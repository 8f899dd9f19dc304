"""PDFs and the other formats PyMuPDF opens (EPUB, XPS, FB2, MOBI, CBZ).

Text comes from PyMuPDF's "blocks" extraction, which is faster than plain get_text()
and gives each paragraph's rectangle. Line rectangles are interpolated inside their
block (paragraphs have uniform line height), which is precise enough to highlight a
passage and costs nothing at ingestion. Blocks are put in reading order column by
column: blocks left of the page's middle, then right of it, with full-width blocks
(titles, tables) as separators between such bands. Tables (pdf_tables.py) become rows of
"label | value | value" with a rectangle per cell.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections import Counter
from collections.abc import Callable, Collection
from pathlib import Path

import pymupdf

from app.documents.model import DamagedFile, Document, DocumentDamaged, SpanTable
from app.documents.pdf_aligned import aligned_tables
from app.documents.pdf_tables import (
    Block,
    PageBlock,
    may_hold_table,
    outside_tables,
    page_tables,
    with_tables,
)
from app.errors import Cancelled, DocumentError, PasswordRequired

# MuPDF prints its errors ("MuPDF error: format error: ...") on stdout, where `text`
# writes exactly what the model reads: they go to the log. What they mean for the
# document is read from TOOLS.mupdf_warnings(), which keeps them all the same.
pymupdf.set_messages(pylogging_name="app.mupdf", pylogging_level=logging.INFO)

PAGE_SEPARATOR = "\n\n"  # between pages in Document.text
_DIGITS = re.compile(r"\d+")


def ocr_available() -> bool:
    return shutil.which("tesseract") is not None


def reading_order(blocks: list[PageBlock], page_width: float) -> list[PageBlock]:
    middle = page_width / 2
    ordered: list[PageBlock] = []
    left: list[PageBlock] = []
    right: list[PageBlock] = []

    def flush() -> None:
        ordered.extend(sorted(left, key=lambda b: (b[1], b[0])))
        ordered.extend(sorted(right, key=lambda b: (b[1], b[0])))
        left.clear()
        right.clear()

    for block in sorted(blocks, key=lambda b: (b[1], b[0])):
        x0, x1 = block[0], block[2]
        if x1 <= middle + 4:
            left.append(block)
        elif x0 >= middle - 4:
            right.append(block)
        else:  # spans the middle: ends a band of columns
            flush()
            ordered.append(block)
    flush()
    return ordered


def _page_blocks(page: pymupdf.Page, ocr: bool) -> list[Block]:
    textpage = None
    if ocr:
        # Partial OCR (only the page's images) copies the page into a PDF first, which
        # fails for a page of an image file ("source or target not a PDF"): an image is
        # all image anyway, so it is read whole.
        textpage = page.get_textpage_ocr(full=not page.parent.is_pdf, dpi=200)
    raw = page.get_text("blocks", textpage=textpage)
    return [(b[0], b[1], b[2], b[3], b[4]) for b in raw if b[6] == 0 and b[4].strip()]


def _repeated_margins(pages: list[list[PageBlock]], heights: list[float]) -> set[str]:
    """Normalised lines found in the top or bottom 8% of most pages: headers, footers."""
    if len(pages) < 3:
        return set()
    counts: Counter[str] = Counter()
    for blocks, height in zip(pages, heights, strict=True):
        seen = set()
        for block in blocks:
            y0, y1, text = block[1], block[3], block[4]
            if y1 < height * 0.08 or y0 > height * 0.92:
                seen.add(_DIGITS.sub("#", text.strip()))
        counts.update(seen)
    return {line for line, n in counts.items() if n >= max(3, 0.6 * len(pages))}


# MuPDF warnings that mean a page's own objects or content stream are broken, so its
# text is missing or cut short. (Tree-level notes such as "non-page object in page tree"
# are caught by checking each page's object instead; font notes are harmless.)
_PAGE_DAMAGE = re.compile(
    r"premature end|Length incorrect|endobj|cannot (?:load|find) object|out of range|"
    r"syntax error|truncated|corrupt",
    re.IGNORECASE,
)
# MuPDF warnings that a page's content stream could not be decoded: on a page that then
# has no text, the page is lost, not a scan (a truncated encrypted PDF loses its /Encrypt
# dictionary with its trailer, and its encrypted streams fail to inflate). On a page with
# text they may be a broken image only, which costs no text.
_STREAM_UNREADABLE = re.compile(r"zlib error|read error|cannot (?:decode|inflate)", re.I)
# What MuPDF writes on a page of an EPUB/FB2 whose chapter file is missing or encrypted.
_MISSING_CHAPTER = "ERROR: cannot find chapter"
# Exceptions PyMuPDF raises for broken input (FzErrorBase is not a RuntimeError).
_MUPDF_ERRORS = (RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase)


# EPUB encryption.xml algorithms that only obfuscate embedded fonts (IDPF, Adobe):
# the text is readable. Any other algorithm there encrypts content, i.e. DRM.
_FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
# Files that only DRM schemes put in an EPUB: Adobe ADEPT, Apple FairPlay, Readium LCP.
_DRM_MARKERS = {"META-INF/rights.xml", "META-INF/sinf.xml", "META-INF/license.lcpl"}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_DRM_HINT = (
    "The app cannot remove DRM. Use a DRM-free copy (many publishers and libraries offer "
    "one), or a PDF export that the rights holder allows."
)


def _zip_refusal(path: Path, data: bytes) -> str | None:
    import io
    import zipfile
    from xml.etree import ElementTree

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        return None  # not a zip after all: PyMuPDF reports what it finds
    with archive:
        names = set(archive.namelist())
        if any(info.flag_bits & 0x1 for info in archive.infolist()):
            return f"{path.name} is a password-protected archive, which PyMuPDF cannot open."
        if names & _DRM_MARKERS:
            return f"{path.name} is protected by DRM (copy protection); its text is encrypted."
        if "META-INF/encryption.xml" in names:
            try:
                root = ElementTree.fromstring(archive.read("META-INF/encryption.xml"))
            except (ElementTree.ParseError, KeyError, zipfile.BadZipFile):
                return None
            algorithms = {
                element.get("Algorithm", "")
                for element in root.iter()
                if element.tag.endswith("EncryptionMethod")
            }
            if algorithms - _FONT_OBFUSCATION:
                return f"{path.name} is protected by DRM (copy protection); its text is encrypted."
    return None


def refuse_drm(path: Path, data: bytes) -> None:
    """Copy-protected e-books open in PyMuPDF as garbage, blank pages or a "damaged"
    error; say what they are instead, before anything is read or cached."""
    suffix = path.suffix.lower()
    problem: str | None = None
    if suffix in (".epub", ".cbz") and data[:2] == b"PK":
        problem = _zip_refusal(path, data)
    elif suffix in (".xps", ".oxps") and data.startswith(_OLE_MAGIC):
        # Rights-managed (IRM) XPS is wrapped in an OLE compound file; plain XPS is a zip.
        problem = f"{path.name} is protected by rights management (IRM); its text is encrypted."
    elif suffix in (".mobi", ".azw", ".azw3", ".prc") and len(data) > 96:
        # Palm database: record 0 holds the MOBI header; its encryption field (offset 12)
        # is 1 or 2 for Mobipocket DRM, 0 when the book is unprotected.
        record0 = int.from_bytes(data[78:82], "big")
        if record0 + 14 <= len(data) and int.from_bytes(data[record0 + 12 : record0 + 14], "big"):
            problem = f"{path.name} is protected by DRM (Mobipocket); its text is encrypted."
    if problem:
        raise DocumentError(problem, hint=_DRM_HINT)


def needs_password(path: str) -> bool:
    """Whether the file can only be read with a password (checked on every open, before
    any cache: see cache.py). A file PyMuPDF cannot open is reported by pdf_document."""
    try:
        with pymupdf.open(path) as pdf:
            return bool(pdf.needs_pass)
    except _MUPDF_ERRORS:
        return False


def _page_object_lost(pdf: pymupdf.Document, page: pymupdf.Page) -> bool:
    """A truncated PDF keeps its page list (/Count, /Kids) while the page objects it
    points at are gone: MuPDF then returns blank pages, which must not pass for pages
    without a text layer."""
    if not pdf.is_pdf:
        return False
    try:
        return pdf.xref_object(page.xref, compressed=True).strip() in ("", "null")
    except _MUPDF_ERRORS:
        return True  # the xref number is past the end of what survived


def _ranges(pages: list[int]) -> str:
    parts: list[str] = []
    start = prev = pages[0]
    for page in [*pages[1:], None]:
        if page is not None and page == prev + 1:
            prev = page
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if page is not None:
            start = prev = page
    return ", ".join(parts)


def pdf_document(
    path: str,
    sha256: str,
    title: str,
    *,
    password: str | None,
    drop_headers_footers: bool,
    ocr: bool,
    progress: Callable[[int, int], None] | None,
    cancel: Callable[[], bool] | None,
    accept_damaged: bool = False,
) -> Document:
    name = Path(path).name  # what messages call the file: the name the user sees
    pymupdf.TOOLS.mupdf_warnings(reset=True)
    try:
        pdf = pymupdf.open(path)
    except _MUPDF_ERRORS as error:
        raise DocumentError(
            f"{name} is damaged or not a document PyMuPDF can read ({error}).",
            hint="Re-download or re-export it; if another viewer opens it, print it to a new PDF.",
        ) from error
    opened = pymupdf.TOOLS.mupdf_warnings(reset=True)
    with pdf:
        protected = bool(pdf.needs_pass)
        if protected:
            if not password:
                raise PasswordRequired(
                    f"{name} is protected by a password.",
                    hint="Enter the password (CLI: --password).",
                    path=path,
                )
            if not pdf.authenticate(password):
                raise PasswordRequired(
                    f"The password for {title} is wrong.",
                    hint="Try again; passwords are case-sensitive.",
                    path=path,
                )
        repaired = pdf.is_pdf and bool(pdf.is_repaired)
        cut_short = repaired and "startxref" in opened  # its end (xref, trailer) is gone
        try:
            count = pdf.page_count
        except _MUPDF_ERRORS:  # "Invalid number of pages": the page tree is unreadable
            count = 0
        if count == 0:
            raise (DamagedFile if repaired else DocumentError)(
                f"{name} is damaged: its list of pages is lost"
                + (" (the file looks cut short)." if cut_short else ".")
                if repaired
                else f"{name} has no pages.",
                hint="Re-download or re-export the file.",
            )
        use_ocr = ocr and ocr_available()
        pages: list[list[PageBlock]] = []
        heights: list[float] = []
        damaged: list[int] = []  # 1-based pages whose objects or content are broken
        for number in range(count):
            if cancel is not None and cancel():
                raise Cancelled()
            pymupdf.TOOLS.mupdf_warnings(reset=True)
            try:
                page = pdf[number]
                if _page_object_lost(pdf, page):
                    raise ValueError("page object missing")
                blocks = _page_blocks(page, ocr=False)
                scanned = not blocks and use_ocr
                if scanned:
                    blocks = _page_blocks(page, ocr=True)
                rect = page.rect  # each .rect call asks MuPDF again: once per page
                width, height = rect.width, rect.height
                warnings = pymupdf.TOOLS.mupdf_warnings(reset=True)
                if (
                    _PAGE_DAMAGE.search(warnings)
                    or (not blocks and _STREAM_UNREADABLE.search(warnings))
                    or (blocks and blocks[0][4].startswith(_MISSING_CHAPTER))
                ):
                    damaged.append(number + 1)
                    blocks = []  # MuPDF's placeholder is not the document's text
                page_blocks: list[PageBlock] = list(blocks)
                if blocks and not scanned:
                    tables = page_tables(page) if may_hold_table(pdf, page) else []
                    tables += aligned_tables(page, outside_tables(blocks, tables))
                    if tables:
                        page_blocks = with_tables(blocks, tables)
            except _MUPDF_ERRORS:
                damaged.append(number + 1)
                page_blocks, width, height = [], 595.0, 842.0
            pages.append(reading_order(page_blocks, width))
            heights.append(height)
            if progress is not None:
                progress(number + 1, count)
        metadata = {k: v for k, v in (pdf.metadata or {}).items() if isinstance(v, str) and v}
    damage = ""
    if damaged:
        read = count - len(damaged)
        how = " (the file looks cut short)" if cut_short else ""
        damage = (
            f"{name} is damaged{how}: {read} of {count} pages could be read; "
            f"page{'s' if len(damaged) > 1 else ''} {_ranges(damaged)} "
            f"{'are' if len(damaged) > 1 else 'is'} missing or incomplete."
        )
        if read == 0:
            raise DamagedFile(damage, hint="Re-download or re-export the file.")
        if not accept_damaged:
            # Asked before any run: answers from part of a document look complete.
            raise DocumentDamaged(
                damage,
                hint="Re-download or re-export the file to read all of it, or choose to "
                "read only the pages that survived (CLI: --accept-damaged).",
                pages_read=read,
                pages_total=count,
            )
    margins = _repeated_margins(pages, heights) if drop_headers_footers else set()
    document = _assemble(path, sha256, title, pages, margins, metadata, ocr, use_ocr, set(damaged))
    document.protected = protected
    document.damage = damage
    if damage:
        document.warnings.insert(0, damage + " Answers cover only the pages that were read.")
    elif repaired:
        document.warnings.insert(
            0, f"{name}'s structure was damaged and has been repaired; all {count} pages read."
        )
    return document


def _assemble(
    path: str,
    sha256: str,
    title: str,
    pages: list[list[PageBlock]],
    margins: set[str],
    metadata: dict[str, str],
    ocr_requested: bool,
    ocr_used: bool,
    damaged: Collection[int] = (),
) -> Document:
    parts: list[str] = []
    page_starts: list[int] = []
    spans = SpanTable()
    empty: list[int] = []
    pos = 0
    for number, blocks in enumerate(pages, start=1):
        if number > 1:
            parts.append(PAGE_SEPARATOR)
            pos += len(PAGE_SEPARATOR)
        page_starts.append(pos)
        kept = (
            [b for b in blocks if _DIGITS.sub("#", b[4].strip()) not in margins]
            if margins
            else blocks
        )
        if not kept and number not in damaged:  # a lost page is not a scan: no OCR advice
            empty.append(number)
        for i, block in enumerate(kept):
            if i:
                parts.append("\n")
                pos += 1
            x0, y0, x1, y1, text = block[:5]
            if len(block) == 6:  # a table: a span per cell
                for j, (line, cells) in enumerate(zip(text.split("\n"), block[5], strict=True)):
                    if j:
                        parts.append("\n")
                        pos += 1
                    for start, end, rect in cells:
                        spans.add(pos + start, pos + end, number, *rect)
                    parts.append(line)
                    pos += len(line)
                continue
            lines = text.rstrip("\n").split("\n")
            step = (y1 - y0) / max(1, len(lines))
            for j, line in enumerate(lines):
                if j:
                    parts.append("\n")
                    pos += 1
                spans.add(pos, pos + len(line), number, x0, y0 + j * step, x1, y0 + (j + 1) * step)
                parts.append(line)
                pos += len(line)
    text = "".join(parts)
    warnings = []
    if empty:
        how = (
            "OCR found no text on them"
            if ocr_used
            else "turn on OCR in Settings to read them"
            if ocr_available()
            else "install Tesseract (tesseract-ocr) and turn on OCR in Settings to read them"
        )
        warnings.append(f"{len(empty)} of {len(pages)} pages have no text layer; {how}.")
    if not text.strip():
        raise DocumentError(
            f"{Path(path).name} has no text layer: it is a scanned or image-only document.",
            hint=(
                "OCR ran but found no text."
                if ocr_used
                else "Turn on OCR in Settings (needs Tesseract installed) to read scanned pages."
                if not ocr_requested
                else "Install Tesseract (tesseract-ocr) so OCR can read the scanned pages."
            ),
        )
    return Document(
        path=path,
        sha256=sha256,
        kind="pdf",
        title=metadata.get("title") or title,
        text=text,
        page_starts=page_starts,
        spans=spans,
        pages_without_text=empty,
        warnings=warnings,
        metadata=metadata,
    )
