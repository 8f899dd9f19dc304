"""The Document: extracted text plus a map from every character back to its page.

This is the contract between ingestion (documents/), the engine (agent/) and evidence
(evidence/): offsets are indexes into ``Document.text``; pages are 1-based.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 in PDF points


@dataclass(frozen=True)
class TextSpan:
    """One line of extracted text: ``text[start:end]`` sits on ``page`` inside ``rect``."""

    start: int
    end: int
    page: int
    rect: Rect


@dataclass
class Document:
    path: str
    sha256: str
    kind: str  # "pdf", "text", or another PyMuPDF format name ("epub", ...)
    title: str
    text: str
    # page_starts[i] is the offset where page i+1 begins; len(page_starts) == page_count.
    page_starts: list[int] = field(default_factory=lambda: [0])
    spans: list[TextSpan] = field(default_factory=list)  # sorted by start
    pages_without_text: list[int] = field(default_factory=list)  # 1-based
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def page_count(self) -> int:
        return len(self.page_starts)

    def page_of(self, offset: int) -> int:
        """1-based page that holds character ``offset``."""
        return max(1, bisect.bisect_right(self.page_starts, offset))

    def page_range(self, start: int, end: int) -> tuple[int, int]:
        """First and last page touched by ``text[start:end]``."""
        return self.page_of(start), self.page_of(max(start, end - 1))

    def rects_for(self, start: int, end: int) -> list[tuple[int, Rect]]:
        """(page, rect) of every line that overlaps ``text[start:end]``."""
        starts = [s.start for s in self.spans]
        i = max(0, bisect.bisect_right(starts, start) - 1)
        found: list[tuple[int, Rect]] = []
        while i < len(self.spans) and self.spans[i].start < end:
            span = self.spans[i]
            if span.end > start:
                found.append((span.page, span.rect))
            i += 1
        return found
