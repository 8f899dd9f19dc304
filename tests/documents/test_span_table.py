"""The page map's compact line table: same answers as a list of spans, small and fast to
cache."""

from __future__ import annotations

import pickle

from app.documents.model import Document, SpanTable, TextSpan

SPANS = [
    TextSpan(i * 10, i * 10 + 8, 1 + i // 3, (1.0, i * 2.0, 9.0, i * 2.0 + 1.5)) for i in range(9)
]


def test_table_reads_back_every_span():
    table = SpanTable(SPANS)
    assert len(table) == 9 and list(table) == SPANS
    assert table[4] == SPANS[4] and table[-1] == SPANS[-1] and table[2:4] == SPANS[2:4]
    assert table == SpanTable(SPANS) and table == SPANS and table != SpanTable(SPANS[:-1])


def test_a_document_built_from_a_list_answers_rect_queries_the_same():
    doc = Document(path="x", sha256="s", kind="pdf", title="t", text="x" * 90, spans=SPANS)
    assert isinstance(doc.spans, SpanTable)
    # characters 25-42 touch lines 2, 3 and 4 (line 2 ends at 28, line 4 starts at 40)
    assert doc.rects_for(25, 42) == [(s.page, s.rect) for s in SPANS[2:5]]
    assert doc.rects_for(8, 10) == []  # the gap between two lines


def test_pickles_compactly_and_round_trips():
    many = SpanTable(TextSpan(i, i + 1, 1, (0.0, float(i), 1.0, i + 1.0)) for i in range(20_000))
    data = pickle.dumps(many, protocol=pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(data) == many
    assert len(data) < 20_000 * 60  # ~56 bytes a line as numbers; objects took several times
