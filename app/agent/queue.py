"""Several questions on one document: a queue, run one at a time on a local model and
up to ``parallel`` at once on a server with parallel slots.

Each run gets its own Engine (and so its own database connection) on its own thread;
their events are merged into one stream in arrival order, each carrying its run id. A
local llama.cpp model is never shared between threads: with ``parallel`` 1 the runs go
one after another on the calling thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from app.agent.engine import Engine
from app.agent.events import Event, RunCancelled, RunFailed
from app.documents.model import Document
from app.errors import Cancelled, UserError, describe_error
from app.llm.backend import CancelToken
from app.records import Question

__all__ = ["Question", "ask_many"]

log = logging.getLogger("app.agent")


def _run_one(
    engine: Engine,
    document: Document,
    document_id: int,
    session_id: int,
    question: Question,
    cancel: CancelToken,
) -> Iterator[Event]:
    try:
        plan = engine.plan(document, question, cancel)
    except Cancelled:  # Ctrl-C while the chunks were being planned: a cancel, not a failure
        yield RunCancelled(0, 0)
        return
    except Exception as error:  # noqa: BLE001 - one bad question must not stop the queue
        yield _failed(question, error, "planning")
        return
    yield from engine.ask(document, document_id, session_id, plan, cancel)


def _failed(question: Question, error: Exception, what: str) -> RunFailed:
    """The user's problem as it is; a bug logged with its traceback and an error id."""
    message = describe_error(error, f"{what} {question.text!r}", log)
    code = error.exit_code if isinstance(error, UserError) else 1
    return RunFailed(0, f"{question.text}: {message}", 0, exit_code=code)


def ask_many(
    make_engine: Callable[[], Engine],
    document: Document,
    document_id: int,
    session_id: int,
    questions: list[Question],
    cancel: CancelToken,
    parallel: int = 1,
) -> Iterator[Event]:
    if parallel <= 1:
        engine = make_engine()
        for question in questions:
            if cancel.cancelled:
                return
            yield from _run_one(engine, document, document_id, session_id, question, cancel)
        return
    events: queue.Queue[Event | None] = queue.Queue()
    local = threading.local()

    def work(question: Question) -> None:
        try:
            if not hasattr(local, "engine"):  # one engine (one db connection) per thread
                local.engine = make_engine()
            for event in _run_one(
                local.engine, document, document_id, session_id, question, cancel
            ):
                events.put(event)
        except Exception as error:  # noqa: BLE001 - e.g. this thread's database would not open
            # (the pool drops a worker's exception unseen: it must become an event)
            events.put(_failed(question, error, "question"))
        finally:
            events.put(None)

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="question") as pool:
        for question in questions:
            pool.submit(work, question)
        remaining = len(questions)
        while remaining:
            event = events.get()
            if event is None:
                remaining -= 1
            else:
                yield event
