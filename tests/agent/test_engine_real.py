"""The engine on the real demo model through llama.cpp (slow-ish: small documents), and
its cancel on the tiny qwen3moe (real llama.cpp too, ~35x faster: what is checked there
is the loop's, not the model's)."""

from __future__ import annotations

import threading
import time

import pytest

from app.agent.engine import Engine
from app.agent.events import RunCancelled, RunFinished, StepFinished, TokenStreamed
from app.documents.model import Document
from app.llm.backend import CancelToken, Sampling, complete
from app.records import Mode, Question
from app.settings import Settings

TEXT = "\n\n".join(
    f"Paragraph {i}. The harbour master logged {i * 3} ships on day {i}. " * 3 for i in range(12)
)
DOC = Document(path="/tmp/harbour.txt", sha256="h1", kind="text", title="harbour", text=TEXT)
# Paragraphs 0-5 (~320 demo-model tokens): two memory steps at 200-token chunks.
SHORT = Document(
    path="/tmp/harbour-short.txt",
    sha256="h2",
    kind="text",
    title="harbour",
    text="\n\n".join(TEXT.split("\n\n")[:6]),
)


def ask(engine, store, mode, cancel=None, question="How many ships on day 5?", doc=DOC):
    doc_id = store.add_document(doc)
    session = store.create_session(doc_id, question)
    plan = engine.plan(doc, Question(question, question, "", mode))
    return plan, engine.ask(doc, doc_id, session, plan, cancel or CancelToken())


def test_memory_agent_on_the_demo_model(demo_backend, store):
    # The smallest run that shows it: two steps (the second reads the first's memory),
    # 32 new tokens each (the budgets' minimum).
    settings = Settings(n_ctx=4096, chunk_tokens=200, max_new_tokens=32)
    engine = Engine(demo_backend, store, settings)
    plan, events = ask(engine, store, Mode.MEMORY_AGENT, doc=SHORT)
    events = list(events)
    steps = [e.step for e in events if isinstance(e, StepFinished)]
    assert len(steps) == len(plan.chunks) >= 2
    assert all(s.stats.prompt_tokens > s.chunk.tokens for s in steps)
    assert all(s.stats.completion_tokens > 0 and s.stats.prompt_ms > 0 for s in steps)
    assert any(isinstance(e, TokenStreamed) for e in events)
    assert isinstance(events[-1], RunFinished) and events[-1].answer.stats.completion_tokens > 0
    # a 135M model rarely keeps the tags: whatever it wrote is kept, and flagged
    for s in steps:
        assert s.memory.strip()
        assert s.malformed == any("malformed" in n for n in s.stats.notes)


def test_single_pass_follow_up_reuses_the_documents_kv_prefix(demo_backend, store):
    engine = Engine(demo_backend, store, Settings(n_ctx=4096, max_new_tokens=24))
    _, first = ask(engine, store, Mode.SINGLE_PASS)
    first_answer = list(first)[-1].answer
    _, second = ask(engine, store, Mode.SINGLE_PASS, question="Which day had 9 ships?")
    second_answer = list(second)[-1].answer
    assert second_answer.stats.cached_tokens > 0.9 * first_answer.stats.prompt_tokens - 40
    # Only the question is evaluated again (counted in tokens: timings vary with load).
    evaluated = second_answer.stats.prompt_tokens - second_answer.stats.cached_tokens
    assert evaluated < first_answer.stats.prompt_tokens / 3


def test_cancel_during_prompt_processing_takes_effect_quickly(demo_model):
    from app.llm.local import LocalBackend

    # A big batch so one llama_decode call takes seconds: only the abort callback can stop it.
    backend = LocalBackend(demo_model, n_ctx=4096, n_batch=2048)
    try:
        cancel = CancelToken()
        prompt = "Summarise: " + TEXT * 2
        cancelled_at: list[float] = []

        def press_cancel() -> None:
            cancelled_at.append(time.perf_counter())
            cancel.cancel()

        timer = threading.Timer(0.3, press_cancel)
        timer.start()
        try:
            complete(backend, [{"role": "user", "content": prompt}], Sampling(max_tokens=8), cancel)
            raise AssertionError("the call was not cancelled")
        except Exception as error:  # Cancelled
            assert type(error).__name__ == "Cancelled"
        # Measured from the cancel, not from the start: tokenizing the prompt on a loaded
        # machine must not count against the abort callback's promptness.
        assert time.perf_counter() - cancelled_at[0] < 1.0
        # the backend stays usable after an aborted decode
        ok = complete(
            backend, [{"role": "user", "content": "Say hi."}], Sampling(max_tokens=4), CancelToken()
        )
        assert ok.stats.completion_tokens > 0
    finally:
        backend.close()


@pytest.fixture
def tiny_backend(tiny_model):
    from app.llm.local import LocalBackend

    backend = LocalBackend(tiny_model, n_ctx=4096)
    yield backend
    backend.close()


def test_cancelled_run_leaves_only_finished_steps(tiny_backend, store):
    settings = Settings(n_ctx=4096, chunk_tokens=400, max_new_tokens=48)
    cancel = CancelToken()
    plan, events = ask(Engine(tiny_backend, store, settings), store, Mode.MEMORY_AGENT, cancel)
    assert len(plan.chunks) >= 2  # a step is left to cancel
    seen = []
    for event in events:
        seen.append(event)
        if isinstance(event, StepFinished):
            cancel.cancel()
    assert isinstance(seen[-1], RunCancelled) and seen[-1].steps_done == 1
    run = store.get_run(seen[-1].run_id)
    assert run.status == "cancelled" and len(run.steps) == 1 and run.answer is None
