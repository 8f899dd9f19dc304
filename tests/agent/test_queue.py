"""Several questions on one document: a queue, and parallel runs on a server."""

from __future__ import annotations

import threading
import time

from app.agent.engine import Engine
from app.agent.events import RunFinished, RunStarted
from app.agent.queue import Question, ask_many
from app.llm.backend import CancelToken
from app.settings import Settings
from app.store.database import open_database
from tests.agent.test_engine import SETTINGS, counting_script, document
from tests.fakes import FakeBackend


def questions(n: int) -> list[Question]:
    return [
        Question(f"Which items? ({i})", f"Which items? ({i})", "", "memory_agent") for i in range(n)
    ]


def test_questions_run_one_after_another_on_one_engine(store):
    doc = document()
    doc_id = store.add_document(doc)
    session = store.create_session(doc_id, "queue")
    backend = FakeBackend(counting_script)
    events = list(
        ask_many(
            lambda: Engine(backend, store, SETTINGS),
            doc,
            doc_id,
            session,
            questions(3),
            CancelToken(),
        )
    )
    finished = [e for e in events if isinstance(e, RunFinished)]
    started = [e.run_id for e in events if isinstance(e, RunStarted)]
    assert len(finished) == 3 and [e.run_id for e in finished] == started
    assert len(store.list_runs(session)) == 3


class SlowBackend(FakeBackend):
    """Counts how many calls are in flight at once, as a server with slots would see."""

    def __init__(self) -> None:
        super().__init__(counting_script)
        self.active = self.peak = 0
        self.lock = threading.Lock()

    def stream(self, messages, sampling, cancel):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(0.05)
            yield from super().stream(messages, sampling, cancel)
        finally:
            with self.lock:
                self.active -= 1


def test_parallel_slots_run_questions_concurrently(tmp_path):
    path = tmp_path / "shared.sqlite3"
    store = open_database(path)
    doc = document()
    doc_id = store.add_document(doc)
    session = store.create_session(doc_id, "parallel")
    backend = SlowBackend()
    settings = Settings(n_ctx=2048, chunk_tokens=120, memory_tokens=100)
    events = list(
        ask_many(
            lambda: Engine(backend, open_database(path), settings),
            doc,
            doc_id,
            session,
            questions(4),
            CancelToken(),
            parallel=2,
        )
    )
    assert len([e for e in events if isinstance(e, RunFinished)]) == 4
    assert backend.peak == 2
    for run in store.list_runs(session):
        assert run["status"] == "finished" and run["steps_done"] == run["chunk_count"]
