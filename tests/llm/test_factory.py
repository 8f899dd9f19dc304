"""Opening the backend the settings ask for: the local model records the SHA-256 of the
file that answers, read once per file (real llama.cpp on the tiny GGUF, real files)."""

from __future__ import annotations

import hashlib

from app.agent.engine import Engine
from app.agent.events import RunFinished
from app.documents.model import Document
from app.llm import model_hash
from app.llm.backend import CancelToken
from app.llm.factory import open_backend
from app.records import Mode, Question
from app.settings import Settings


def test_each_run_records_the_sha256_of_the_model_file(tiny_model, store):
    expected = hashlib.sha256(tiny_model.read_bytes()).hexdigest()
    settings = Settings(model_path=str(tiny_model), n_ctx=2048, max_new_tokens=16)
    seen: list[float] = []
    backend = open_backend(settings, progress=seen.append)
    try:
        assert backend.identity.sha256 == expected
        # the file's first load hashes it alongside llama.cpp's load: one bar for both
        assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 2
        doc = Document(path="/tmp/note.txt", sha256="n1", kind="text", title="note", text="A note.")
        doc_id = store.add_document(doc)
        session = store.create_session(doc_id, "What is it?")
        engine = Engine(backend, store, settings)
        plan = engine.plan(doc, Question("What is it?", "What is it?", "", Mode.SINGLE_PASS))
        finished = list(engine.ask(doc, doc_id, session, plan, CancelToken()))[-1]
        assert isinstance(finished, RunFinished)
        assert store.get_run(finished.run_id).model_sha256 == expected
    finally:
        backend.close()
    # the next load of the same file reads nothing to know its hash
    before = model_hash.hash_stats["bytes_hashed"]
    seen.clear()
    again = open_backend(settings, progress=seen.append)
    try:
        assert again.identity.sha256 == expected
        assert model_hash.hash_stats["bytes_hashed"] == before
        assert seen[0] < 0.5 and seen[-1] == 1.0  # the load's own progress, from the start
    finally:
        again.close()


def test_a_cancelled_load_stops_the_hash_too(tiny_model, tmp_path):
    """Cancel while the file is read for its hash: nothing is cached, nothing keeps
    reading, and the load raises Cancelled."""
    import pytest

    from app.errors import Cancelled
    from app.llm.model_hash import HashAlongside, cached_sha256

    cancel = CancelToken()
    cancel.cancel()
    hashing = HashAlongside(tiny_model, cancel)
    with pytest.raises(Cancelled):
        hashing.wait()
    assert hashing.thread is not None and not hashing.thread.is_alive()
    assert cached_sha256(tiny_model) is None
