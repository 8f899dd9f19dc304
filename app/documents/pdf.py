"""PDFs and the other formats PyMuPDF opens (EPUB, XPS, FB2, MOBI, CBZ).

Text comes from PyMuPDF's "blocks" extraction, which is faster than plain get_text()
and gives each paragraph's rectangle. Line rectangles are interpolated inside their
block (paragraphs have uniform line height), which is precise enough to highlight a
passage and costs nothing at ingestion. Blocks are put in reading order column by
column: blocks left of the page's middle, then right of it, with full-width blocks
(titles, tables) as separators between such bands.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Callable

import pymupdf

from app.documents.model import Document, SpanTable
from app.errors import Cancelled, DocumentError, PasswordRequired

PAGE_SEPARATOR = "\n\n"  # between pages in Document.text
Block = tuple[float, float, float, float, str]
_DIGITS = re.compile(r"\d+")


def ocr_available() -> bool:
    return shutil.which("tesseract") is not None


def reading_order(blocks: list[Block], page_width: float) -> list[Block]:
    middle = page_width / 2
    ordered: list[Block] = []
    left: list[Block] = []
    right: list[Block] = []

    def flush() -> None:
        ordered.extend(sorted(left, key=lambda b: (b[1], b[0])))
        ordered.extend(sorted(right, key=lambda b: (b[1], b[0])))
        left.clear()
        right.clear()

    for block in sorted(blocks, key=lambda b: (b[1], b[0])):
        x0, _, x1, _, _ = block
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
        textpage = page.get_textpage_ocr(full=False, dpi=200)
    raw = page.get_text("blocks", textpage=textpage)
    return [(b[0], b[1], b[2], b[3], b[4]) for b in raw if b[6] == 0 and b[4].strip()]


def _repeated_margins(pages: list[list[Block]], heights: list[float]) -> set[str]:
    """Normalised lines found in the top or bottom 8% of most pages: headers, footers."""
    if len(pages) < 3:
        return set()
    counts: Counter[str] = Counter()
    for blocks, height in zip(pages, heights, strict=True):
        seen = set()
        for _, y0, _, y1, text in blocks:
            if y1 < height * 0.08 or y0 > height * 0.92:
                seen.add(_DIGITS.sub("#", text.strip()))
        counts.update(seen)
    return {line for line, n in counts.items() if n >= max(3, 0.6 * len(pages))}


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
) -> Document:
    try:
        pdf = pymupdf.open(path)
    except (pymupdf.FileDataError, RuntimeError, ValueError) as error:
        raise DocumentError(
            f"{title} is damaged or not a document PyMuPDF can read ({error}).",
            hint="Re-download or re-export it; if another viewer opens it, print it to a new PDF.",
        ) from error
    with pdf:
        if pdf.needs_pass:
            if not password:
                raise PasswordRequired(
                    f"{title} is protected by a password.",
                    hint="Enter the password (CLI: --password).",
                )
            if not pdf.authenticate(password):
                raise PasswordRequired(
                    f"The password for {title} is wrong.",
                    hint="Try again; passwords are case-sensitive.",
                )
        count = pdf.page_count
        if count == 0:
            raise DocumentError(f"{title} has no pages.", hint="It may be truncated or damaged.")
        use_ocr = ocr and ocr_available()
        pages: list[list[Block]] = []
        heights: list[float] = []
        try:
            for number in range(count):
                if cancel is not None and cancel():
                    raise Cancelled()
                page = pdf[number]
                blocks = _page_blocks(page, ocr=False)
                if not blocks and use_ocr:
                    blocks = _page_blocks(page, ocr=True)
                rect = page.rect  # each .rect call asks MuPDF again: once per page
                pages.append(reading_order(blocks, rect.width))
                heights.append(rect.height)
                if progress is not None:
                    progress(number + 1, count)
        except (RuntimeError, ValueError) as error:
            raise DocumentError(
                f"{title} is damaged: page {len(pages) + 1} of {count} cannot be read ({error}).",
                hint="Re-download or re-export the file.",
            ) from error
        metadata = {k: v for k, v in (pdf.metadata or {}).items() if isinstance(v, str) and v}
    margins = _repeated_margins(pages, heights) if drop_headers_footers else set()
    return _assemble(path, sha256, title, pages, margins, metadata, ocr, use_ocr)


def _assemble(
    path: str,
    sha256: str,
    title: str,
    pages: list[list[Block]],
    margins: set[str],
    metadata: dict[str, str],
    ocr_requested: bool,
    ocr_used: bool,
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
        if not kept:
            empty.append(number)
        for i, (x0, y0, x1, y1, text) in enumerate(kept):
            if i:
                parts.append("\n")
                pos += 1
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
            f"{title} has no text layer: it is a scanned or image-only document.",
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
