"""A Word paragraph's visible text, in order, from its WordprocessingML elements: runs,
tabs and line breaks, with page breaks where they fall inside the paragraph; footnote,
endnote and comment references become numbered marks whose text the reader puts on
lines of their own (Notes). docx.py walks the body; this module reads what is inside
one paragraph.

Not visible text, so skipped: deleted revisions, field codes, and drawings' alternative
renderings (mc:Fallback repeats mc:Choice's text box).
"""

from __future__ import annotations

from typing import Any

from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml.ns import qn
from lxml import etree

_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
W_P, W_VAL, W_ID, W_TYPE = qn("w:p"), qn("w:val"), qn("w:id"), qn("w:type")
_SKIP = {qn("w:del"), qn("w:delText"), qn("w:instrText"), qn("w:rPr"), qn("w:pPr"), _MC_FALLBACK}


class _PageBreak:
    """Marker inside a paragraph's pieces: a page starts here."""


PAGE_BREAK = _PageBreak()
Piece = str | _PageBreak


def part_xml(document: Any, reltype: str) -> Any | None:
    """The root element of a related part (footnotes, comments...), or None."""
    for rel in document.part.rels.values():
        if rel.reltype == reltype and not rel.is_external:
            part = rel.target_part
            element = getattr(part, "element", None)
            return element if element is not None else etree.fromstring(part.blob)
    return None


def plain(element: Any) -> str:
    """Visible text of a note or comment: its paragraphs joined by spaces."""
    texts = []
    for p in element.iter(W_P):
        texts.append(text_of(pieces(p, notes=None)).strip())
    return " ".join(t for t in texts if t)


def text_of(paragraph_pieces: list[Piece]) -> str:
    """The text pieces joined, page breaks left out."""
    return "".join(x for x in paragraph_pieces if isinstance(x, str))


class Notes:
    """The document's footnotes, endnotes and comments, and the lines their references
    in the current paragraph call for."""

    def __init__(self, document: Any) -> None:
        self.document = document
        self.footnotes = self._notes(RT.FOOTNOTES, "w:footnote")
        self.endnotes = self._notes(RT.ENDNOTES, "w:endnote")
        self.comments: dict[str, tuple[str, str]] = {}
        comments = part_xml(document, RT.COMMENTS)
        if comments is not None:
            for c in comments.iter(qn("w:comment")):
                self.comments[c.get(W_ID)] = (c.get(qn("w:author")) or "", plain(c))
        self.note_count = 0
        self.pending: list[str] = []  # notes and comments of the current paragraph
        self.endnote_lines: list[str] = []

    def _notes(self, reltype: str, tag: str) -> dict[str, str]:
        root = part_xml(self.document, reltype)
        if root is None:
            return {}
        return {
            n.get(W_ID): plain(n)
            for n in root.iter(qn(tag))
            if n.get(W_TYPE) in (None, "normal")  # not the separator lines
        }

    def note(self, note_id: str, notes: dict[str, str], label: str, at_end: bool) -> str:
        text = notes.get(note_id)
        if not text:
            return ""
        self.note_count += 1
        line = f"[{label} {self.note_count}: {text}]"
        (self.endnote_lines if at_end else self.pending).append(line)
        return f"[{self.note_count}]"

    def comment(self, comment_id: str) -> None:
        author, text = self.comments.get(comment_id, ("", ""))
        if text:
            by = f" by {author}" if author else ""
            self.pending.append(f"[Comment{by}: {text}]")


def pieces(p: Any, notes: Notes | None) -> list[Piece]:
    """The paragraph's text pieces in order, with page breaks where they fall."""
    out: list[Piece] = []
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
            kind = element.get(W_TYPE)
            out.append(PAGE_BREAK if kind == "page" else "\n" if kind != "column" else " ")
        elif tag == qn("w:lastRenderedPageBreak"):
            out.append(PAGE_BREAK)
        elif tag == qn("w:noBreakHyphen"):
            out.append("-")
        elif notes is not None and tag == qn("w:footnoteReference"):
            out.append(notes.note(element.get(W_ID), notes.footnotes, "Footnote", False))
        elif notes is not None and tag == qn("w:endnoteReference"):
            out.append(notes.note(element.get(W_ID), notes.endnotes, "Endnote", True))
        elif notes is not None and tag == qn("w:commentReference"):
            notes.comment(element.get(W_ID))
        elif len(element):
            stack.append(iter(element))
    return out
