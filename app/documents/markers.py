"""The document's text as the model gets it, with a "--- page N ---" line at each page
start, so a reader can check what was read and where each page begins. Used by the
``text`` command and the window's Text tab; offsets into Document.text are mapped to
offsets in the marked text so highlights still land on the right characters."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from app.documents.model import Document


def page_marker(page: int) -> str:
    return f"--- page {page} ---\n"


@dataclass
class MarkedText:
    text: str
    first_page: int
    # starts[i]: offset in Document.text where page first_page + i begins;
    # shifts[i]: what to add to an offset on that page to find it in ``text``.
    starts: list[int] = field(default_factory=list)
    shifts: list[int] = field(default_factory=list)

    def display_offset(self, offset: int) -> int:
        """Where Document.text[offset] is in ``text`` (clamped to the pages shown)."""
        if not self.starts:
            return 0
        i = max(0, bisect.bisect_right(self.starts, offset) - 1)
        return min(len(self.text), max(0, offset + self.shifts[i]))


def mark_pages(document: Document, first: int = 1, last: int | None = None) -> MarkedText:
    """Pages ``first``..``last`` (1-based, inclusive) with a marker line before each."""
    last = document.page_count if last is None else min(last, document.page_count)
    first = max(1, first)
    parts: list[str] = []
    marked = MarkedText("", first)
    length = 0
    for page in range(first, last + 1):
        start = document.page_starts[page - 1]
        end = document.page_starts[page] if page < document.page_count else len(document.text)
        body = document.text[start:end]
        if parts and not parts[-1].endswith("\n"):
            parts.append("\n")  # a marker always starts a line of its own
            length += 1
        marker = page_marker(page)
        parts.append(marker)
        length += len(marker)
        marked.starts.append(start)
        marked.shifts.append(length - start)
        parts.append(body)
        length += len(body)
    marked.text = "".join(parts)
    return marked
