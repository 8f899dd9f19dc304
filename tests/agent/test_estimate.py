"""The run-time estimate shown before a run: a guess until the model has been measured,
then this model's own speed and step size, also after a restart (real SQLite)."""

from __future__ import annotations

from app.agent.planning import Planner, Speed, estimate_seconds
from app.documents.model import Document
from app.records import Mode, Question
from app.settings import Settings
from tests.fakes import FakeBackend

TEXT = " ".join(f"word{i}" for i in range(6000))
DOC = Document(path="/tmp/long.txt", sha256="l1", kind="text", title="long", text=TEXT)


def memory_plan(max_new_tokens: int = 0):
    settings = Settings(n_ctx=4096, chunk_tokens=1000, max_new_tokens=max_new_tokens)
    planner = Planner(FakeBackend(lambda _: "x"), settings)
    return planner.plan(DOC, Question("q", "q", "", Mode.MEMORY_AGENT))


def test_measured_speed_is_the_steps_own():
    steps = [(1000, 2000.0, 300, 6000.0), (1000, 2000.0, 500, 10000.0)]
    speed = Speed.measured(steps)
    assert speed == Speed(prompt_tps=500.0, gen_tps=50.0, step_output=400.0)
    assert Speed.measured([]) is None and Speed.measured([(10, 0.0, 5, 0.0)]) is None


def test_a_step_never_counts_more_output_than_its_cap():
    plan = memory_plan(max_new_tokens=128)
    steps = len(plan.chunks)
    assert steps >= 5
    guess = estimate_seconds(plan, Speed(prompt_tps=1e9, gen_tps=1.0))
    # per step at most 128 generated tokens at 1 token/s, plus the final answer's share
    assert guess <= steps * 128 + plan.budgets.answer_room / 2 + 1
    measured = estimate_seconds(plan, Speed(prompt_tps=1e9, gen_tps=1.0, step_output=40))
    assert abs(measured - (steps * 40 + plan.budgets.answer_room / 2)) < 1


def test_the_store_remembers_a_models_speed(store):
    from app.llm.backend import ModelIdentity
    from app.records import CallStats, StepRecord

    doc_id = store.add_document(DOC)
    session = store.create_session(doc_id, "q")
    plan = memory_plan()
    model = ModelIdentity(backend="local", name="m", path="/models/m.gguf", n_ctx=4096)
    question = Question("q", "q", "", Mode.MEMORY_AGENT)
    run_id = store.create_run(session, doc_id, question, plan.mode, "", model, {}, plan.chunks)
    measured = [(1000, 2000.0, 300, 6000.0), (900, 1800.0, 500, 10000.0)]
    for index, (prompt, prompt_ms, generated, generation_ms) in enumerate(measured):
        stats = CallStats(
            raw_output="",
            thinking="",
            prompt_tokens=prompt,
            completion_tokens=generated,
            prompt_ms=prompt_ms,
            generation_ms=generation_ms,
            wall_ms=prompt_ms + generation_ms,
        )
        store.save_step(run_id, StepRecord(index, plan.chunks[index], "memory", "plan", stats))
    rows = store.recent_step_speeds("local", "/models/m.gguf")
    assert rows == measured[::-1]  # newest first
    assert store.recent_step_speeds("local", "/models/other.gguf") == []
    assert Speed.measured(rows) == Speed(prompt_tps=500.0, gen_tps=50.0, step_output=400.0)
