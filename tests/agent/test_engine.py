"""The loop's logic with a scripted model and a real SQLite store."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from app.agent import prompts
from app.agent.engine import Engine
from app.agent.events import (
    RunCancelled,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from app.documents.model import Document
from app.errors import UserError
from app.llm.backend import CancelToken
from app.records import Mode, Question
from app.settings import Settings
from tests.fakes import FakeBackend, memory_output

SETTINGS = Settings(n_ctx=2048, chunk_tokens=120, memory_tokens=100)


def document(paragraphs: int = 12) -> Document:
    text = "\n\n".join(
        f"Section {i}. The value of item {i} is {i * 7}. " + "filler words here " * 8
        for i in range(paragraphs)
    )
    return Document(
        path="/tmp/doc.txt",
        sha256="abc",
        kind="text",
        title="doc",
        text=text,
        page_starts=[0, len(text) // 2],
    )


def counting_script(prompt: str) -> str:
    """Remembers every 'item N' it has seen: memory grows step by step."""
    if "<section>" not in prompt:
        memory = re.search(r"<memory>\n(.*)\n</memory>", prompt, re.DOTALL)
        return f"thinking</think>The answer from: {memory.group(1) if memory else ''}"
    previous = re.search(r"<previous_memory>\n<memory>\n(.*?)\n</memory>", prompt, re.DOTALL)
    section = prompt.split("<section>")[1].split("</section>")[0]
    seen = (previous.group(1).split(", ") if previous else []) + re.findall(r"item \d+", section)
    return memory_output(", ".join(dict.fromkeys(seen)), "keep counting items", "hmm")


def start(
    engine: Engine, store, doc: Document, question="Which items exist?", mode="auto", cancel=None
):
    doc_id = store.add_document(doc)
    session = store.create_session(doc_id, question)
    plan = engine.plan(doc, Question(question, question, "Answer briefly.", mode))
    return plan, engine.ask(doc, doc_id, session, plan, cancel or CancelToken())


def test_memory_agent_reads_every_chunk_in_order_and_answers(store):
    backend = FakeBackend(counting_script)
    engine = Engine(backend, store, SETTINGS)
    doc = document()
    plan, events = start(engine, store, doc, mode=Mode.MEMORY_AGENT)
    events = list(events)
    assert isinstance(events[0], RunStarted) and events[0].mode == Mode.MEMORY_AGENT
    finished = [e for e in events if isinstance(e, StepFinished)]
    assert [e.step.index for e in finished] == list(range(len(plan.chunks)))
    assert len(plan.chunks) > 2
    # the final memory holds every item of the document, gathered across chunks
    assert finished[-1].step.memory.count("item") == 12
    assert finished[1].memory_diff.startswith("-") or "+" in finished[1].memory_diff
    answer = events[-1]
    assert isinstance(answer, RunFinished)
    assert "item 11" in answer.answer.text and answer.answer.stats.thinking == "thinking"
    # q_inst reaches only the final prompt; q_core drives every step
    assert all("Answer briefly." not in p for p in backend.prompts[:-1])
    assert "Answer briefly." in backend.prompts[-1]
    # the first step uses the paper's explicit placeholder
    assert "<previous_memory>\nNo previous memory\n</previous_memory>" in backend.prompts[0]
    run = store.get_run(answer.run_id)
    assert run.status == "finished" and len(run.steps) == len(plan.chunks)
    assert run.steps == [e.step for e in finished]
    # what answered is recorded with the run: the app's version, how the model was loaded
    from app.version import app_version

    assert run.settings["software"]["app"] == app_version() != ""
    assert run.settings["model_details"] == backend.identity.details


def test_auto_mode_chooses_single_pass_when_the_document_fits(store):
    backend = FakeBackend(lambda p: "Therefore, the answer is 42")
    engine = Engine(backend, store, Settings(n_ctx=8192))
    plan, events = start(engine, store, document(3))
    assert plan.mode == Mode.SINGLE_PASS and "fits" in plan.reason
    events = list(events)
    assert not [e for e in events if isinstance(e, StepStarted)]
    assert events[-1].answer.text == "Therefore, the answer is 42"
    assert backend.prompts[0].startswith("Please read the following text")


def test_single_pass_refused_when_the_document_does_not_fit(store):
    engine = Engine(FakeBackend(counting_script), store, SETTINGS)
    with pytest.raises(UserError, match="does not fit"):
        engine.plan(document(80), Question("q", "q", "", Mode.SINGLE_PASS))


def test_malformed_step_is_marked_and_the_run_goes_on(store):
    calls = iter(["no tags at all, just prose", memory_output("m2", "p2")] + ["answer"] * 50)
    engine = Engine(
        FakeBackend(lambda p: next(calls)), store, SETTINGS.with_changes(chunk_tokens=200)
    )
    _, events = start(engine, store, document(), mode=Mode.MEMORY_AGENT)
    steps = [e.step for e in events if isinstance(e, StepFinished)]
    assert steps[0].malformed and steps[0].memory == "no tags at all, just prose"
    assert any("malformed" in n for n in steps[0].stats.notes)
    assert not steps[1].malformed and steps[1].memory == "m2"


def test_memory_over_budget_is_trimmed_with_a_note(store):
    big = "\n".join(f"fact {i} " * 5 for i in range(200))  # ~1,200 'tokens'
    engine = Engine(FakeBackend(lambda p: memory_output(big, "plan")), store, SETTINGS)
    _, events = start(engine, store, document(), mode=Mode.MEMORY_AGENT)
    step = next(e.step for e in events if isinstance(e, StepFinished))
    assert len(step.memory.split()) <= SETTINGS.memory_tokens
    assert any("trimmed" in n for n in step.stats.notes)


def test_cancel_then_resume_continues_at_the_next_chunk_with_the_same_memory(store):
    cancel = CancelToken()
    backend = FakeBackend(counting_script)
    engine = Engine(backend, store, SETTINGS)
    doc = document()
    backend.on_call = lambda n: cancel.cancel() if n == 3 else None
    plan, events = start(engine, store, doc, mode=Mode.MEMORY_AGENT, cancel=cancel)
    events = list(events)
    assert isinstance(events[-1], RunCancelled) and events[-1].steps_done == 2
    run_id = events[-1].run_id
    run = store.get_run(run_id)
    assert run.status == "cancelled" and len(run.steps) == 2
    backend.on_call = None
    backend.prompts.clear()
    resumed = list(engine.resume(run_id, doc, CancelToken()))
    assert resumed[0].resumed_from == 2
    first_step = next(e for e in resumed if isinstance(e, StepStarted))
    assert first_step.chunk.index == 2
    # the resumed prompt carries exactly the stored memory of step 2
    assert run.steps[-1].memory in backend.prompts[0]
    assert isinstance(resumed[-1], RunFinished)
    assert len(store.get_run(run_id).steps) == len(plan.chunks)


def test_questions_never_lose_a_step_when_the_store_fails(store, monkeypatch):
    from app.errors import StoreError

    engine = Engine(FakeBackend(counting_script), store, SETTINGS)
    doc = document()
    original = store.save_step
    calls = {"n": 0}

    def flaky(run_id, step):
        calls["n"] += 1
        if calls["n"] == 2:
            raise StoreError("database or disk is full")
        return original(run_id, step)

    monkeypatch.setattr(store, "save_step", flaky)
    _, events = start(engine, store, doc, mode=Mode.MEMORY_AGENT)
    events = list(events)
    assert "disk is full" in events[-1].message
    run_id = events[-1].run_id
    assert len(engine.checkpoints.unsaved_steps[run_id]) == 1  # kept in memory, not recomputed
    prompts_before = len(engine.backend.prompts)
    resumed = list(engine.resume(run_id, doc, CancelToken()))
    assert isinstance(resumed[-1], RunFinished)
    run = store.get_run(run_id)
    assert [s.index for s in run.steps] == list(range(len(run.chunks)))
    # the unsaved step was written, not asked of the model again
    assert len(engine.backend.prompts) - prompts_before == len(run.chunks) - 2 + 1


class CharTokenBackend(FakeBackend):
    """A small vocabulary: one token per character, so the prompt template alone takes
    several times the ~700 tokens a fixed guess would allow for."""

    def count_tokens(self, text: str) -> int:
        return len(text)


def test_prompt_overhead_is_measured_with_the_models_own_tokenizer(store):
    backend = CharTokenBackend(lambda prompt: memory_output("m", "p"))
    small = Engine(backend, store, Settings(n_ctx=2048, chunk_tokens=120, memory_tokens=100))
    with pytest.raises(UserError, match="too small for this model"):
        small.plan(document(), Question("q", "What is item 3?", "", Mode.MEMORY_AGENT))
    engine = Engine(backend, store, Settings(n_ctx=8192, chunk_tokens=400, memory_tokens=200))
    plan = engine.plan(document(), Question("q", "What is item 3?", "", Mode.MEMORY_AGENT))
    overhead = plan.budgets.prompt_overhead
    assert overhead >= len(prompts.memory_update_prompt("", "", "", "")) > 700
    # every memory-update prompt the engine will send fits the window, with output room
    question = len("What is item 3?\n")
    longest = overhead + plan.budgets.chunk_tokens + plan.budgets.memory_tokens + question
    assert longest + plan.budgets.max_new_tokens <= 8192


def test_a_run_records_no_recent_files_and_no_server_password(store):
    """The run's settings travel in its exported evidence bundle: other documents' paths
    and a password written into the server URL stay out of it."""
    backend = FakeBackend(lambda p: "Therefore, the answer is 42")
    settings = replace(
        SETTINGS,
        recent_files=("/home/me/private/other.pdf",),
        remote_url="http://alice:S3cret@gpu:8080",
    )
    engine = Engine(backend, store, settings)
    doc = Document(path="/d.txt", sha256="d", kind="text", title="d", text="Some text.")
    doc_id = store.add_document(doc)
    plan = engine.plan(doc, Question("q?", "q?", "", Mode.SINGLE_PASS))
    events = list(engine.ask(doc, doc_id, store.create_session(doc_id, "q"), plan, CancelToken()))
    recorded = store.get_run(events[-1].run_id).settings
    assert "recent_files" not in recorded and recorded["remote_url"] == "http://gpu:8080"
    assert "S3cret" not in json.dumps(recorded)
