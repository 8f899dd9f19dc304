"""Pages for documents that have no fixed layout (Word, HTML): the page map is built from
the lines the reader emits, cut at the file's own page breaks when it has any, otherwise
into virtual pages of about a printed page, the way text.py does for plain text.

A span's rect is (0, line, 0, line + 1): the line number within its page, as for text.
"""

from __future__ import annotations

from app.documents.model import SpanTable
from app.documents.text import VIRTUAL_PAGE_CHARS


class PageBuilder:
    """Collects lines and page breaks; ``build`` returns (text, page_starts, spans).

    ``break_page`` marks where the file itself starts a new page (Word's page and section
    breaks, CSS ``page-break-*`` in HTML). When the file has none, pages are cut at the
    first line end past VIRTUAL_PAGE_CHARS, so a citation still names a small region.
    """

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._breaks: set[int] = set()  # index of the first line of a new page

    def add(self, line: str) -> None:
        # One entry per displayed line: a line with "\n" inside would get one span.
        self._lines.extend(line.split("\n"))

    def break_page(self) -> None:
        self._breaks.add(len(self._lines))

    @property
    def has_lines(self) -> bool:
        return bool(self._lines)

    @property
    def has_breaks(self) -> bool:
        return any(0 < b < len(self._lines) for b in self._breaks)

    def build(self) -> tuple[str, list[int], SpanTable]:
        explicit = self.has_breaks
        page_starts = [0]
        spans = SpanTable()
        line_in_page = 0
        pos = 0
        for index, line in enumerate(self._lines):
            if explicit:
                new_page = index in self._breaks
            else:
                new_page = pos - page_starts[-1] >= VIRTUAL_PAGE_CHARS
            # Never an empty page: two breaks in a row (Word writes a rendered break
            # right after an explicit one) make one.
            if new_page and pos > page_starts[-1]:
                page_starts.append(pos)
                line_in_page = 0
            spans.add(
                pos, pos + len(line), len(page_starts), 0.0, line_in_page, 0.0, line_in_page + 1
            )
            line_in_page += 1
            pos += len(line) + 1
        return "\n".join(self._lines), page_starts, spans
