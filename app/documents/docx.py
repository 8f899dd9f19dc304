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
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import docx
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml.ns import qn
from lxml import etree

from app.documents.model import Document
from app.documents.reflow import PageBuilder
from app.errors import DocumentError

_HEADING = re.compile(r"heading\s*(\d)", re.IGNORECASE)
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_W_P, _W_TBL, _W_SDT, _W_SDT_CONTENT = qn("w:p"), qn("w:tbl"), qn("w:sdt"), qn("w:sdtContent")
_W_VAL, _W_ID, _W_TYPE = qn("w:val"), qn("w:id"), qn("w:type")
# Run content that is not visible text: deleted revisions, field codes, drawings'
# alternative renderings (mc:Fallback repeats mc:Choice's text box).
_SKIP = {qn("w:del"), qn("w:delText"), qn("w:instrText"), qn("w:rPr"), qn("w:pPr"), _MC_FALLBACK}
_ROMAN = [(1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l")]
_ROMAN += [(40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")]


class _PageBreak:
    """Marker inside a paragraph's pieces: a page starts here."""


PAGE_BREAK = _PageBreak()


def _roman(n: int) -> str:
    out = ""
    for value, letters in _ROMAN:
        while n >= value:
            out, n = out + letters, n - value
    return out


def _number(n: int, fmt: str) -> str:
    if fmt == "lowerLetter":
        return chr(ord("a") + (n - 1) % 26)
    if fmt == "upperLetter":
        return chr(ord("A") + (n - 1) % 26)
    if fmt == "lowerRoman":
        return _roman(n)
    if fmt == "upperRoman":
        return _roman(n).upper()
    return str(n)


def _part_xml(document: Any, reltype: str) -> Any | None:
    """The root element of a related part (footnotes, comments...), or None."""
    for rel in document.part.rels.values():
        if rel.reltype == reltype and not rel.is_external:
            part = rel.target_part
            element = getattr(part, "element", None)
            return element if element is not None else etree.fromstring(part.blob)
    return None


def _plain(element: Any) -> str:
    """Visible text of a note or comment: its paragraphs joined by spaces."""
    texts = []
    for p in element.iter(_W_P):
        pieces = _Reader.pieces(p, notes=None)
        texts.append("".join(x for x in pieces if isinstance(x, str)).strip())
    return " ".join(t for t in texts if t)


class _Reader:
    def __init__(self, document: Any, drop_headers_footers: bool) -> None:
        self.document = document
        self.drop_headers_footers = drop_headers_footers
        self.out = PageBuilder()
        self.styles: dict[str, Any] = {s.style_id: s for s in document.styles}
        self.footnotes = self._notes(RT.FOOTNOTES, "w:footnote")
        self.endnotes = self._notes(RT.ENDNOTES, "w:endnote")
        self.comments: dict[str, tuple[str, str]] = {}
        comments = _part_xml(document, RT.COMMENTS)
        if comments is not None:
            for c in comments.iter(qn("w:comment")):
                self.comments[c.get(_W_ID)] = (c.get(qn("w:author")) or "", _plain(c))
        self.numbering = _part_xml(document, RT.NUMBERING)
        self.counters: dict[tuple[str, int], int] = {}
        self.formats: dict[tuple[str, int], str] = {}
        self.note_count = 0
        self.pending: list[str] = []  # notes and comments of the current paragraph
        self.endnote_lines: list[str] = []
        self.last_header = ""
        self.last_footer = ""

    def _notes(self, reltype: str, tag: str) -> dict[str, str]:
        root = _part_xml(self.document, reltype)
        if root is None:
            return {}
        return {
            n.get(_W_ID): _plain(n)
            for n in root.iter(qn(tag))
            if n.get(_W_TYPE) in (None, "normal")  # not the separator lines
        }

    # -- paragraphs -------------------------------------------------------------------
    @staticmethod
    def pieces(p: Any, notes: _Reader | None) -> list[str | _PageBreak]:
        """The paragraph's text pieces in order, with page breaks where they fall."""
        out: list[str | _PageBreak] = []
        stack = [iter(p)]
        while stack:
            element = next(stack[-1], None)
            if element is None:
                stack.pop()
                continue
            tag = element.tag
            if not isinstance(tag, str) or tag in _SKIP:
                continue
            if tag == qn("w:t"):
                out.append(element.text or "")
            elif tag == qn("w:tab"):
                out.append("\t")
            elif tag in (qn("w:cr"),):
                out.append("\n")
            elif tag == qn("w:br"):
                kind = element.get(_W_TYPE)
                out.append(PAGE_BREAK if kind == "page" else "\n" if kind != "column" else " ")
            elif tag == qn("w:lastRenderedPageBreak"):
                out.append(PAGE_BREAK)
            elif tag == qn("w:noBreakHyphen"):
                out.append("-")
            elif notes is not None and tag == qn("w:footnoteReference"):
                out.append(notes.note(element.get(_W_ID), notes.footnotes, "Footnote", False))
            elif notes is not None and tag == qn("w:endnoteReference"):
                out.append(notes.note(element.get(_W_ID), notes.endnotes, "Endnote", True))
            elif notes is not None and tag == qn("w:commentReference"):
                author, text = notes.comments.get(element.get(_W_ID), ("", ""))
                if text:
                    by = f" by {author}" if author else ""
                    notes.pending.append(f"[Comment{by}: {text}]")
            elif len(element):
                stack.append(iter(element))
        return out

    def note(self, note_id: str, notes: dict[str, str], label: str, at_end: bool) -> str:
        text = notes.get(note_id)
        if not text:
            return ""
        self.note_count += 1
        line = f"[{label} {self.note_count}: {text}]"
        (self.endnote_lines if at_end else self.pending).append(line)
        return f"[{self.note_count}]"

    def _style_chain(self, style_id: str | None) -> Iterator[Any]:
        seen = set()
        style = self.styles.get(style_id) if style_id else self.styles.get("Normal")
        while style is not None and style.style_id not in seen:
            seen.add(style.style_id)
            yield style
            style = style.base_style

    def _prefix(self, p: Any) -> tuple[str, bool]:
        """("## " or "  - " or "1. ", is_heading) for the paragraph's style and list."""
        ppr = p.find(qn("w:pPr"))
        style_el = ppr.find(qn("w:pStyle")) if ppr is not None else None
        style_id = style_el.get(_W_VAL) if style_el is not None else None
        names = [s.name or "" for s in self._style_chain(style_id)]
        for name in names[:1]:
            match = _HEADING.fullmatch(name.strip())
            if match:
                return "#" * int(match.group(1)) + " ", True
            if name.strip().lower() == "title":
                return "# ", True
        outline = ppr.find(qn("w:outlineLvl")) if ppr is not None else None
        if outline is not None and outline.get(_W_VAL, "9").isdigit():
            level = int(outline.get(_W_VAL, "9"))
            if level < 9:
                return "#" * (level + 1) + " ", True
        num_pr = ppr.find(qn("w:numPr")) if ppr is not None else None
        if num_pr is None:
            for style in self._style_chain(style_id):
                num_pr = style.element.find(f"{qn('w:pPr')}/{qn('w:numPr')}")
                if num_pr is not None:
                    break
        if num_pr is None:
            joined = " ".join(names).lower()
            if "list bullet" in joined:
                return "- ", False
            return "", False
        num_el, lvl_el = num_pr.find(qn("w:numId")), num_pr.find(qn("w:ilvl"))
        num_id = num_el.get(_W_VAL, "0") if num_el is not None else "0"
        level = int(lvl_el.get(_W_VAL, "0")) if lvl_el is not None else 0
        if num_id == "0":  # numbering explicitly removed
            return "", False
        fmt = self._num_format(num_id, level)
        indent = "  " * level
        if fmt in ("bullet", "none"):
            return indent + "- ", False
        n = self.counters.get((num_id, level), 0) + 1
        self.counters[(num_id, level)] = n
        for key in [k for k in self.counters if k[0] == num_id and k[1] > level]:
            del self.counters[key]  # a new item restarts its sub-list
        return f"{indent}{_number(n, fmt)}. ", False

    def _num_format(self, num_id: str, level: int) -> str:
        key = (num_id, level)
        if key not in self.formats:  # looked up once per list level, not per item
            self.formats[key] = self._find_num_format(num_id, level)
        return self.formats[key]

    def _find_num_format(self, num_id: str, level: int) -> str:
        if self.numbering is None:
            return "decimal"
        for num in self.numbering.iter(qn("w:num")):
            if num.get(qn("w:numId")) != num_id:
                continue
            abstract = num.find(qn("w:abstractNumId"))
            abstract_id = abstract.get(_W_VAL) if abstract is not None else None
            for definition in self.numbering.iter(qn("w:abstractNum")):
                if definition.get(qn("w:abstractNumId")) != abstract_id:
                    continue
                for lvl in definition.iter(qn("w:lvl")):
                    if lvl.get(qn("w:ilvl")) == str(level):
                        fmt = lvl.find(qn("w:numFmt"))
                        return fmt.get(_W_VAL, "decimal") if fmt is not None else "decimal"
        return "decimal"

    def paragraph(self, p: Any) -> None:
        ppr = p.find(qn("w:pPr"))
        if ppr is not None:
            before = ppr.find(qn("w:pageBreakBefore"))
            if before is not None and before.get(_W_VAL, "true") not in ("0", "false"):
                self.out.break_page()
        prefix, heading = self._prefix(p)
        line = ""
        first = True
        # None ends the paragraph; a page break inside it ends a line and the page.
        for piece in [*self.pieces(p, self), None]:
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
        for pending in self.pending:
            self.out.add(pending)
        self.pending.clear()

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
                for p in tc.iter(_W_P):
                    pieces = self.pieces(p, self)
                    broke = broke or any(x is PAGE_BREAK for x in pieces)
                    text = " ".join("".join(x for x in pieces if isinstance(x, str)).split())
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
            if ref.get(_W_TYPE, "default") != "default":
                continue  # first-page and even-page variants: the default one is enough
            part = self.document.part.related_parts.get(ref.get(qn("r:id")))
            if part is None:  # a reference to a missing part: nothing to show
                return ""
            element = getattr(part, "element", None)
            return _plain(element if element is not None else etree.fromstring(part.blob))
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
            if kind is None or kind.get(_W_VAL) != "continuous":
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
        for line in self.endnote_lines:
            self.out.add(line)
        return self.out

    def _blocks(self, parent: Any) -> None:
        for child in parent:
            if child.tag == _W_P:
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
    try:
        document = docx.Document(io.BytesIO(data))
    # Besides its own errors (OpcError, zipfile.BadZipFile, lxml's), python-docx fails on
    # malformed packages with whatever its code meets (AttributeError on a bare <Types/>,
    # KeyError on a missing part): all of them mean the file, not this app, is broken.
    except Exception as error:
        raise DocumentError(
            f"{title} is damaged: it is not a Word document python-docx can open ({error}).",
            hint="Open it in Word or LibreOffice and save it again as .docx, or as PDF.",
        ) from error
    try:
        builder = _Reader(document, drop_headers_footers).read()
    except (KeyError, ValueError, etree.XMLSyntaxError) as error:
        raise DocumentError(
            f"{title} is damaged: part of the Word document cannot be read ({error}).",
            hint="Open it in Word or LibreOffice and save it again as .docx, or as PDF.",
        ) from error
    text, page_starts, spans = builder.build()
    if not text.strip():
        raise DocumentError(
            f"{title} has no text: the Word document is empty or holds only images.",
            hint="If it holds scanned pages, save it as PDF and turn on OCR in Settings.",
        )
    warnings = []
    if not builder.has_breaks:
        warnings.append(
            f"{title} has no page breaks Word recorded: its pages here are virtual, about "
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
