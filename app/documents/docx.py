"""Word .docx files through python-docx: the text a reader sees, in order, with its pages.

python-docx opens and validates the package and resolves styles, sections and
headers; the body is walked as WordprocessingML elements because python-docx's
paragraph objects lose what matters here: where page breaks fall inside a paragraph,
footnote and comment references, and tables interleaved with paragraphs.

What the model gets: headings as "#"-prefixed lines ("## Results" for Heading 2),
list items as "- " or "1. " indented by level, tables row by row with cells joined by
" | " (the header row is the first row, as in the file), footnotes and comments on a
line of their own after the paragraph that refers to them ("[Footnote 1: ...]",
"[Comment by Ana: ...]"), endnotes at the end, and each section's header and footer
("[Header: ...]") unless drop_headers_footers is set.

Pages: Word's page breaks (w:br type=page, pageBreakBefore, the breaks Word records
where it last laid out a page, and section breaks that start a new page). A file with
none gets virtual pages of about 3,000 characters, and a warning that says so.

This module walks the body; the text inside one paragraph (runs, breaks, notes and
comments) is docx_text.py's, the prefixes of headings and list items docx_lists.py's.
"""

from __future__ import annotations

import io
import os
from typing import Any

import docx
from docx.oxml.ns import qn
from lxml import etree

from app.documents.docx_lists import Prefixes
from app.documents.docx_text import PAGE_BREAK, W_P, W_TYPE, W_VAL, Notes, pieces, plain, text_of
from app.documents.model import DamagedFile, Document
from app.documents.reflow import PageBuilder
from app.errors import DocumentError

_W_TBL, _W_SDT, _W_SDT_CONTENT = qn("w:tbl"), qn("w:sdt"), qn("w:sdtContent")


class _Reader:
    """Walks the body in order: paragraphs, tables and content controls, each section's
    header and footer, into a PageBuilder."""

    def __init__(self, document: Any, drop_headers_footers: bool) -> None:
        self.document = document
        self.drop_headers_footers = drop_headers_footers
        self.out = PageBuilder()
        self.notes = Notes(document)
        self.prefixes = Prefixes(document)
        self.last_header = ""
        self.last_footer = ""

    # -- paragraphs -------------------------------------------------------------------
    def paragraph(self, p: Any) -> None:
        ppr = p.find(qn("w:pPr"))
        if ppr is not None:
            before = ppr.find(qn("w:pageBreakBefore"))
            if before is not None and before.get(W_VAL, "true") not in ("0", "false"):
                self.out.break_page()
        prefix, heading = self.prefixes.prefix(p)
        line = ""
        first = True
        # None ends the paragraph; a page break inside it ends a line and the page.
        for piece in [*pieces(p, self.notes), None]:
            if isinstance(piece, str):
                line += piece
                continue
            text = line.strip()
            if text:
                if first and heading and self.out.has_lines:
                    self.out.add("")  # a blank line sets a heading off from the text above
                self.out.add((prefix if first else "") + text)
                first = False
            line = ""
            self._flush_pending()  # notes stay on the page of their reference
            if piece is PAGE_BREAK:
                self.out.break_page()
        if ppr is not None and ppr.find(qn("w:sectPr")) is not None:
            self.end_section(ppr.find(qn("w:sectPr")))

    def _flush_pending(self) -> None:
        for pending in self.notes.pending:
            self.out.add(pending)
        self.notes.pending.clear()

    # -- tables -----------------------------------------------------------------------
    def table(self, tbl: Any) -> None:
        if self.out.has_lines:
            self.out.add("")
        for tr in tbl.iter(qn("w:tr")):
            if tr.getparent() is not tbl and tr.getparent().tag != _W_SDT_CONTENT:
                continue  # nested table: read as part of its cell
            cells: list[str] = []
            broke = False
            for tc in tr.iter(qn("w:tc")):
                if tc.getparent() is not tr and tc.getparent().tag != _W_SDT_CONTENT:
                    continue
                texts = []
                for p in tc.iter(W_P):
                    found = pieces(p, self.notes)
                    broke = broke or any(x is PAGE_BREAK for x in found)
                    text = " ".join(text_of(found).split())
                    if text:
                        texts.append(text)
                cells.append(" ".join(texts))
            if broke:
                self.out.break_page()
            if any(cells):
                self.out.add(" | ".join(cells))
            self._flush_pending()
        self.out.add("")

    # -- sections, headers, footers ----------------------------------------------------
    def _header_footer(self, sectPr: Any, which: str) -> str | None:
        """The section's own default header or footer text; None when it has none of its
        own (Word then repeats the previous section's). Read from the part directly:
        python-docx's section.header would add a header from its template to a document
        that has none."""
        if self.drop_headers_footers:
            return ""
        tag = qn("w:headerReference" if which == "Header" else "w:footerReference")
        for ref in sectPr.findall(tag):
            if ref.get(W_TYPE, "default") != "default":
                continue  # first-page and even-page variants: the default one is enough
            part = self.document.part.related_parts.get(ref.get(qn("r:id")))
            if part is None:  # a reference to a missing part: nothing to show
                return ""
            element = getattr(part, "element", None)
            return plain(element if element is not None else etree.fromstring(part.blob))
        return None

    def start_section(self, sectPr: Any) -> None:
        header = self._header_footer(sectPr, "Header")
        if header is None:
            return  # the previous section's header continues
        if header and header != self.last_header:
            self.out.add(f"[Header: {header}]")
        self.last_header = header

    def end_section(self, sectPr: Any) -> None:
        self._footer(sectPr)
        following = self._next_section(sectPr)
        if following is not None:
            kind = following.find(qn("w:type"))
            if kind is None or kind.get(W_VAL) != "continuous":
                self.out.break_page()
            self.start_section(following)

    def _footer(self, sectPr: Any) -> None:
        footer = self._header_footer(sectPr, "Footer")
        if footer is None:
            return
        if footer and footer != self.last_footer:
            self.out.add(f"[Footer: {footer}]")
        self.last_footer = footer

    def _next_section(self, sectPr: Any) -> Any | None:
        sections = self.sections
        index = next(i for i, s in enumerate(sections) if s is sectPr)
        return sections[index + 1] if index + 1 < len(sections) else None

    # -- the body ---------------------------------------------------------------------
    def read(self) -> PageBuilder:
        body = self.document.element.body
        self.sections = list(self.document.element.xpath("./w:body/w:p/w:pPr/w:sectPr"))
        final = body.find(qn("w:sectPr"))
        if final is not None:
            self.sections.append(final)
        if self.sections:
            self.start_section(self.sections[0])
        self._blocks(body)
        if final is not None:
            self._footer(final)
        for line in self.notes.endnote_lines:
            self.out.add(line)
        return self.out

    def _blocks(self, parent: Any) -> None:
        for child in parent:
            if child.tag == W_P:
                self.paragraph(child)
            elif child.tag == _W_TBL:
                self.table(child)
            elif child.tag == _W_SDT:  # a content control: its content is ordinary body
                content = child.find(_W_SDT_CONTENT)
                if content is not None:
                    self._blocks(content)


def docx_document(
    path: str, sha256: str, title: str, data: bytes, *, drop_headers_footers: bool
) -> Document:
    name = os.path.basename(path)  # what messages call the file: the name the user sees
    try:
        document = docx.Document(io.BytesIO(data))
    # Besides its own errors (OpcError, zipfile.BadZipFile, lxml's), python-docx fails on
    # malformed packages with whatever its code meets (AttributeError on a bare <Types/>,
    # KeyError on a missing part): all of them mean the file, not this app, is broken.
    except Exception as error:
        raise DamagedFile(
            f"{name} is damaged: it is not a Word document python-docx can open ({error}).",
            hint="Open it in Word or LibreOffice and save it again as .docx, or as PDF.",
        ) from error
    try:
        builder = _Reader(document, drop_headers_footers).read()
    except (KeyError, ValueError, etree.XMLSyntaxError) as error:
        raise DamagedFile(
            f"{name} is damaged: part of the Word document cannot be read ({error}).",
            hint="Open it in Word or LibreOffice and save it again as .docx, or as PDF.",
        ) from error
    text, page_starts, spans = builder.build()
    if not text.strip():
        raise DocumentError(
            f"{name} has no text: the Word document is empty or holds only images.",
            hint="If it holds scanned pages, save it as PDF and turn on OCR in Settings.",
        )
    warnings = []
    if not builder.has_breaks:
        warnings.append(
            f"{name} has no page breaks Word recorded: its pages here are virtual, about "
            "3,000 characters each, and will not match Word's page numbers."
        )
    props = document.core_properties
    metadata = {
        k: v
        for k, v in {"title": props.title, "author": props.author, "subject": props.subject}.items()
        if v
    }
    metadata["pages"] = "Word page breaks" if builder.has_breaks else "virtual"
    return Document(
        path=path,
        sha256=sha256,
        kind="docx",
        title=props.title or title,
        text=text,
        page_starts=page_starts,
        spans=spans,
        warnings=warnings,
        metadata=metadata,
    )
