"""HTML and XHTML files (web pages saved to disk, EDGAR filings): the visible text in
reading order, headings and tables kept, nothing fetched.

Parsed with selectolax's lexbor backend, a complete HTML5 parser in C: it builds the
same tree a browser does from broken markup (unclosed <p>, <td> without <tr>, inline
XBRL's namespaced tags), parses a 10 MB filing in a fraction of a second, and has no
loader at all, so no image, font, stylesheet or script named by the file is ever
requested. Regular expressions cannot do the first of those and would need to be
rewritten for every kind of nesting.

What the model gets: each block (paragraph, div, list item, heading) on its own line,
headings prefixed with "#" by level, list items with "- " or "1. ", tables row by row
with non-empty cells joined by " | " (the header row first, as in the file; EDGAR pads
its tables with empty spacer cells that would only add noise). Dropped: <head>,
scripts, styles, templates, forms' hidden inputs, elements hidden with the `hidden`
attribute or `display:none` / `visibility:hidden` in their style (inline XBRL hides
its ix:header of facts that way), and ix:header itself.

Pages: CSS page breaks (`page-break-before/after: always`, `break-before: page`), which
EDGAR filings use between printed pages; without them, virtual pages of ~3,000
characters as for plain text.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from app.documents.model import Document
from app.documents.reflow import PageBuilder
from app.documents.text import _BOMS
from app.errors import DocumentError

HTML_EXTENSIONS = {".html", ".htm", ".xhtml", ".xht"}
_SKIP_TAGS = {
    "head",
    "script",
    "style",
    "noscript",
    "template",
    "iframe",
    "object",
    "embed",
    "svg",
    "math",
    "select",
    "input",
    "button",
    "ix:header",  # inline XBRL's hidden facts, contexts and units
}
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "body", "center", "dd", "details",
    "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer",
    "form", "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "nav", "ol",
    "p", "pre", "section", "summary", "ul", "caption", "textarea",
}  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# The HTML spec's "prescan" of the first bytes for a declared encoding: it runs before
# the bytes can be decoded, so before there is anything to parse.
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._:-]+)""", re.I)
# Labels that browsers read as Windows-1252 (WHATWG Encoding): pages that say
# ISO-8859-1 routinely contain cp1252's curly quotes and dashes.
_AS_CP1252 = {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii", "l1"}


def decode_html(data: bytes, name: str) -> tuple[str, str, list[str]]:
    """(text, encoding, warnings): BOM, then the declared encoding, else UTF-8 with
    Windows-1252 as the fallback HTML itself prescribes for undeclared pages."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace"), f"{encoding} (BOM)", []
    head = data[:4096]
    match = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    if match:
        label = match.group(1).decode("ascii").strip().lower()
        try:
            encoding = codecs.lookup(label).name
        except LookupError:
            raise DocumentError(
                f"{name} says its text is in the encoding '{label}', which is not one this "
                "app knows.",
                hint="Open it in a browser or text editor and save it as UTF-8, or print it "
                "to PDF, then open that.",
            ) from None
        if label in _AS_CP1252 or encoding in ("latin-1", "ascii"):
            encoding = "cp1252"
        if encoding.startswith("utf-16") or encoding.startswith("utf-32"):
            encoding = "utf-8"  # without a BOM the bytes are ASCII-compatible (HTML spec)
        text = data.decode(encoding, errors="replace")
        bad = text.count("\ufffd")
        warnings = (
            [f"{bad:,} characters of {name} are not valid {label} and were replaced."]
            if bad
            else []
        )
        return text, encoding, warnings
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "cp1252", []


def _style_flags(style: str) -> tuple[bool, bool, bool]:
    """(hidden, page break before, page break after) from an inline style."""
    css = style.replace(" ", "").lower()
    hidden = "display:none" in css or "visibility:hidden" in css
    before = "page-break-before:always" in css or "break-before:page" in css
    after = "page-break-after:always" in css or "break-after:page" in css
    return hidden, before, after


class _Reader:
    def __init__(self) -> None:
        self.out = PageBuilder()
        self.line: list[str] = []
        self.prefix = ""
        self.pre = 0
        self.cells: list[list[str]] = []  # a stack: text of each open table cell
        self.tables: list[list[list[str]]] = []  # a stack: rows of each open table
        self.lists: list[list[int]] = []  # a stack: [counter] (ol) or [] (ul)

    # -- output -----------------------------------------------------------------------
    def text(self, value: str) -> None:
        (self.cells[-1] if self.cells else self.line).append(value)

    def flush(self) -> None:
        """End the current line (a block boundary)."""
        if self.cells:
            self.cells[-1].append(" ")
            return
        raw = "".join(self.line)
        self.line.clear()
        if self.pre:
            lines = raw.strip("\n").split("\n")
            if any(x.strip() for x in lines):
                for x in lines:
                    self.out.add(x.rstrip())
        else:
            text = " ".join(raw.split())
            if text:
                self.out.add(self.prefix + text)
                self.prefix = ""

    def emit_row(self, row: str) -> None:
        if self.cells:  # a table inside a cell: its rows become part of the cell's text
            self.cells[-1].append(f" {row};")
        else:
            self.out.add(row)

    # -- the walk ---------------------------------------------------------------------
    def read(self, root: LexborNode) -> PageBuilder:
        hidden: set[int] = set()
        breaks_before: set[int] = set()
        breaks_after: set[int] = set()
        # One CSS query for every styled element: the walk then checks ids in sets
        # instead of reading each element's attributes (most of the 10 MB time otherwise).
        for node in root.css("[style]"):
            is_hidden, before, after = _style_flags(node.attrs.get("style") or "")
            if is_hidden:
                hidden.add(node.mem_id)
            if before:
                breaks_before.add(node.mem_id)
            if after:
                breaks_after.add(node.mem_id)
        for node in root.css("[hidden], input[type=hidden]"):
            hidden.add(node.mem_id)

        # An explicit stack, not recursion: machine-made HTML nests deeper than Python's
        # recursion limit. Each entry: (children iterator, closing action or None).
        stack: list[tuple[Any, Any]] = [(root.iter(include_text=True), None)]
        while stack:
            children, _ = stack[-1]
            child: LexborNode | None = next(children, None)
            if child is None:
                _, close = stack.pop()
                if close is not None:
                    close()
                continue
            tag = child.tag or ""
            if tag == "-text":
                value = child.text_content or ""
                self.text(value)
                continue
            if not child.is_element_node or tag in _SKIP_TAGS or child.mem_id in hidden:
                continue
            if child.mem_id in breaks_before:
                self.flush()
                self.out.break_page()
            close = self.open(tag, child)
            if child.mem_id in breaks_after:
                close = self._then_break(close)
            stack.append((child.iter(include_text=True), close))
        self.flush()
        return self.out

    def _then_break(self, close: Any) -> Any:
        def run() -> None:
            if close is not None:
                close()
            self.flush()
            self.out.break_page()

        return run

    def open(self, tag: str, node: LexborNode) -> Any:
        """Start an element; returns what to do when it closes (or None)."""
        if tag == "br":
            if self.cells:
                self.cells[-1].append(" ")
            elif self.pre:
                self.line.append("\n")
            else:
                self.flush()
            return None
        if tag in ("td", "th"):
            self.cells.append([])
            return self._close_cell
        if tag == "tr":
            if self.tables:
                self.tables[-1].append([])
            return None
        if tag == "table":
            self.flush()
            self.tables.append([])
            return self._close_table
        level = _HEADINGS.get(tag)
        if level is not None:
            self.flush()
            if not self.cells:
                if self.out.has_lines:
                    self.out.add("")
                self.prefix = "#" * level + " "
            return self.flush
        if tag in ("ul", "ol", "dir", "menu"):
            self.flush()
            self.lists.append([0] if tag == "ol" else [])
            return self._close_list
        if tag == "li":
            self.flush()
            if not self.cells:
                depth = max(0, len(self.lists) - 1)
                counter = self.lists[-1] if self.lists else []
                if counter:  # inside <ol>
                    counter[0] += 1
                    self.prefix = "  " * depth + f"{counter[0]}. "
                else:
                    self.prefix = "  " * depth + "- "
            return self.flush
        if tag == "pre":
            self.flush()
            self.pre += 1
            return self._close_pre
        if tag in _BLOCK_TAGS:
            self.flush()
            return self.flush
        return None

    def _close_list(self) -> None:
        self.flush()
        self.lists.pop()

    def _close_pre(self) -> None:
        self.flush()
        self.pre -= 1

    def _close_cell(self) -> None:
        text = " ".join("".join(self.cells.pop()).split())
        if self.tables and self.tables[-1]:
            self.tables[-1][-1].append(text)
        elif self.tables:  # a cell without a row (the parser adds <tr>, but be safe)
            self.tables[-1].append([text])
        else:
            self.text(f" {text} ")

    def _close_table(self) -> None:
        rows = self.tables.pop()
        lines = [" | ".join(c for c in row if c) for row in rows]
        lines = [x for x in lines if x]
        if not lines:
            return
        if not self.cells and self.out.has_lines:
            self.out.add("")
        for line in lines:
            self.emit_row(line)
        if not self.cells:
            self.out.add("")


def html_document(path: str, sha256: str, title: str, data: bytes) -> Document:
    text, encoding, warnings = decode_html(data, title)
    tree = LexborHTMLParser(text)
    root = tree.root
    if root is None:
        raise DocumentError(f"{title} has no HTML content.", hint="The file may be truncated.")
    title_node = tree.css_first("title")
    page_title = " ".join((title_node.text() if title_node is not None else "").split())
    builder = _Reader().read(root)
    body, page_starts, spans = builder.build()
    if not body.strip():
        raise DocumentError(
            f"{title} has no visible text.",
            hint="If it is a page that builds its text with scripts, open it in a browser "
            "and print it to PDF, then open that.",
        )
    metadata = {
        "encoding": encoding,
        "pages": "CSS page breaks" if builder.has_breaks else "virtual",
    }
    if page_title:
        metadata["title"] = page_title
    return Document(
        path=path,
        sha256=sha256,
        kind="html",
        title=page_title or title,
        text=body,
        page_starts=page_starts,
        spans=spans,
        warnings=warnings,
        metadata=metadata,
    )
