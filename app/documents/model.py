"""The Document: extracted text plus a map from every character back to its page.

This is the contract between ingestion (documents/), the engine (agent/) and evidence
(evidence/): offsets are indexes into ``Document.text``; pages are 1-based.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

from app.errors import DocumentError

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 in PDF points


class DamagedFile(DocumentError):
    """A damaged file (cut short, corrupted) of which nothing can be read: exit code 7,
    "damaged document", whatever its format, as for DocumentDamaged; 3 is for files that
    are no document at all (missing, empty, binary, of a kind the app does not read)."""

    exit_code = 7


class DocumentDamaged(DamagedFile):
    """A damaged file MuPDF could partly repair: say how much survived and let the user
    decide whether to read only that (CLI: --accept-damaged; window: a question)."""

    def __init__(self, message: str, *, hint: str = "", pages_read: int, pages_total: int):
        super().__init__(message, hint=hint)
        self.pages_read = pages_read
        self.pages_total = pages_total  # 0 when the file no longer says how many it had


@dataclass(frozen=True)
class TextSpan:
    """One line of extracted text: ``text[start:end]`` sits on ``page`` inside ``rect``."""

    start: int
    end: int
    page: int
    rect: Rect


class SpanTable(Sequence[TextSpan]):
    """Every line's span and rectangle in flat arrays. A 1,000-page PDF has ~25,000 lines:
    as objects they took 80 ms to unpickle from the cache, as arrays a few ms; ingestion
    appends numbers without building an object per line."""

    def __init__(self, spans: Iterable[TextSpan] = ()) -> None:
        self.starts = array("q")
        self.ends = array("q")
        self.pages = array("l")
        self.rects = array("d")  # x0, y0, x1, y1 per line
        for span in spans:
            self.add(span.start, span.end, span.page, *span.rect)

    def add(
        self, start: int, end: int, page: int, x0: float, y0: float, x1: float, y1: float
    ) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.pages.append(page)
        self.rects.extend((x0, y0, x1, y1))

    def __len__(self) -> int:
        return len(self.starts)

    @overload
    def __getitem__(self, index: int) -> TextSpan: ...
    @overload
    def __getitem__(self, index: slice) -> list[TextSpan]: ...
    def __getitem__(self, index: int | slice) -> TextSpan | list[TextSpan]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        r = self.rects
        rect = (r[4 * index], r[4 * index + 1], r[4 * index + 2], r[4 * index + 3])
        return TextSpan(self.starts[index], self.ends[index], self.pages[index], rect)

    def __iter__(self) -> Iterator[TextSpan]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SpanTable):
            return (self.starts, self.ends, self.pages, self.rects) == (
                other.starts,
                other.ends,
                other.pages,
                other.rects,
            )
        return isinstance(other, list) and list(self) == other


@dataclass(frozen=True)
class Member:
    """One document of a collection: its slice of the collection's text (``start`` is its
    header line, ``text_start`` its own text) and of the pages (numbered through the
    collection from ``first_page``)."""

    index: int  # 0-based reading order
    path: str
    sha256: str
    title: str
    kind: str
    start: int
    text_start: int
    end: int
    first_page: int
    page_count: int
    protected: bool = False

    @property
    def number(self) -> int:
        return self.index + 1

    def local_page(self, page: int) -> int:
        """This member's own page number for the collection's page ``page``."""
        return page - self.first_page + 1


@dataclass
class Document:
    path: str
    sha256: str
    kind: str  # "pdf", "text", or another PyMuPDF format name ("epub", ...)
    title: str
    text: str
    # page_starts[i] is the offset where page i+1 begins; len(page_starts) == page_count.
    page_starts: list[int] = field(default_factory=lambda: [0])
    spans: SpanTable = field(default_factory=SpanTable)  # sorted by start
    pages_without_text: list[int] = field(default_factory=list)  # 1-based
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    # Opened with a password: never cached, and its text is not kept in the database
    # (README, "Protected documents").
    protected: bool = False
    # Not empty when the file was damaged and the user chose to read what survived.
    damage: str = ""
    # A collection (kind "collection"): its documents in reading order; empty otherwise.
    members: list[Member] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.spans, SpanTable):  # a plain list of TextSpan is accepted
            self.spans = SpanTable(self.spans)

    @property
    def page_count(self) -> int:
        return len(self.page_starts)

    def page_of(self, offset: int) -> int:
        """1-based page that holds character ``offset``."""
        return max(1, bisect.bisect_right(self.page_starts, offset))

    def page_range(self, start: int, end: int) -> tuple[int, int]:
        """First and last page touched by ``text[start:end]``."""
        return self.page_of(start), self.page_of(max(start, end - 1))

    def member_at(self, offset: int) -> Member | None:
        """The collection member whose text holds ``offset`` (None: not a collection)."""
        if not self.members:
            return None
        starts = [m.start for m in self.members]
        return self.members[max(0, bisect.bisect_right(starts, offset) - 1)]

    def member_of_page(self, page: int) -> Member | None:
        for member in self.members:
            if member.first_page <= page < member.first_page + member.page_count:
                return member
        return None

    def cite(self, start: int, end: int) -> str:
        """Where ``text[start:end]`` is, as an analyst reads it: "p. 3-4", or in a
        collection "Lease agreement, p. 14"."""
        first, last = self.page_range(start, end)
        member = self.member_at(start)
        if member is not None:
            first, last = member.local_page(first), member.local_page(last)
        pages = f"p. {first}" if first == last else f"pp. {first}-{last}"
        return f"{member.title}, {pages}" if member is not None else pages

    def members_in(self, start: int, end: int) -> list[Member]:
        """The members whose text ``text[start:end]`` touches, in order."""
        return [m for m in self.members if m.start < end and m.end > start]

    def rects_for(self, start: int, end: int) -> list[tuple[int, Rect]]:
        """(page, rect) of every line that overlaps ``text[start:end]``."""
        i = max(0, bisect.bisect_right(self.spans.starts, start) - 1)
        found: list[tuple[int, Rect]] = []
        while i < len(self.spans) and self.spans[i].start < end:
            span = self.spans[i]
            if span.end > start:
                found.append((span.page, span.rect))
            i += 1
        return found
