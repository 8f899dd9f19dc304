"""A bad cache entry is a cache miss: deleted, logged, and the document read again from
the file, whatever the entry's bytes make pickle raise."""

from __future__ import annotations

import logging
import pickle

import pytest

from app.documents import cache
from app.documents.ingest import load_document
from app.documents.model import Document
from tests.conftest import make_pdf

# What a disk error or another program can leave in an entry: pickle raises a different
# error for each (ValueError, UnpicklingError, KeyError, ...), or loads something else.
BAD_ENTRIES = [
    b"garbage\n",
    b"\x80\x05\x95\x00\x00\x00\x00\x00\x00\x00\x00K",
    b"\x80\x04}q\x00X\x01\x00\x00\x00aq\x01h\x05s.",
    pickle.dumps({"not": "a document"}),
    b"\x00" * 64,
]


@pytest.mark.parametrize("bad", BAD_ENTRIES, ids=range(len(BAD_ENTRIES)))
def test_a_corrupted_entry_is_read_again_not_an_error(tmp_path, caplog, bad):
    pdf = tmp_path / "report.pdf"
    make_pdf(pdf, ["Incidents: 14 reported.", "Closed: 9."])
    first = load_document(pdf)
    (entry,) = cache.folder().glob(f"{first.sha256}-*")
    entry.write_bytes(bad)
    with caplog.at_level(logging.WARNING, logger="app"):
        again = load_document(pdf)
    assert again.text == first.text and again.page_count == 2
    assert any(entry.name in r.getMessage() and "deleted" in r.getMessage() for r in caplog.records)
    assert isinstance(pickle.loads(entry.read_bytes()), Document)  # stored afresh
