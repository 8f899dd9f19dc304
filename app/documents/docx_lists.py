"""What a Word paragraph's style and list numbering put before its text: "## " for
Heading 2 (or an outline level), "# " for Title, "- " for a bullet, "1. ", "a. " or
"iv. " for a numbered item, indented two spaces a list level. Numbers count per list
and level as Word does: a new item restarts its sub-lists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml.ns import qn

from app.documents.docx_text import W_VAL, part_xml

_HEADING = re.compile(r"heading\s*(\d)", re.IGNORECASE)
_ROMAN = [(1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l")]
_ROMAN += [(40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")]


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


class Prefixes:
    """The prefix of each paragraph, read in document order (list counters advance)."""

    def __init__(self, document: Any) -> None:
        self.styles: dict[str, Any] = {s.style_id: s for s in document.styles}
        self.numbering = part_xml(document, RT.NUMBERING)
        self.counters: dict[tuple[str, int], int] = {}
        self.formats: dict[tuple[str, int], str] = {}

    def _style_chain(self, style_id: str | None) -> Iterator[Any]:
        seen = set()
        style = self.styles.get(style_id) if style_id else self.styles.get("Normal")
        while style is not None and style.style_id not in seen:
            seen.add(style.style_id)
            yield style
            style = style.base_style

    def prefix(self, p: Any) -> tuple[str, bool]:
        """("## " or "  - " or "1. ", is_heading) for the paragraph's style and list."""
        ppr = p.find(qn("w:pPr"))
        style_el = ppr.find(qn("w:pStyle")) if ppr is not None else None
        style_id = style_el.get(W_VAL) if style_el is not None else None
        names = [s.name or "" for s in self._style_chain(style_id)]
        for name in names[:1]:
            match = _HEADING.fullmatch(name.strip())
            if match:
                return "#" * int(match.group(1)) + " ", True
            if name.strip().lower() == "title":
                return "# ", True
        outline = ppr.find(qn("w:outlineLvl")) if ppr is not None else None
        if outline is not None and outline.get(W_VAL, "9").isdigit():
            level = int(outline.get(W_VAL, "9"))
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
        num_id = num_el.get(W_VAL, "0") if num_el is not None else "0"
        level = int(lvl_el.get(W_VAL, "0")) if lvl_el is not None else 0
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
            abstract_id = abstract.get(W_VAL) if abstract is not None else None
            for definition in self.numbering.iter(qn("w:abstractNum")):
                if definition.get(qn("w:abstractNumId")) != abstract_id:
                    continue
                for lvl in definition.iter(qn("w:lvl")):
                    if lvl.get(qn("w:ilvl")) == str(level):
                        fmt = lvl.find(qn("w:numFmt"))
                        return fmt.get(W_VAL, "decimal") if fmt is not None else "decimal"
        return "decimal"
