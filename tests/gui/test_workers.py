"""The model thread's database connection and the question boxes' plan requests."""

from __future__ import annotations

from app.documents.model import Document
from app.gui.main import make_app
from app.records import Mode, Question
from app.settings import Settings
from tests.fakes import FakeBackend, memory_output

TEXT = "\n\n".join(f"Section {i}. Item {i} costs {i * 7} euros. " * 6 for i in range(8))
DOC = Document(path="/tmp/items.txt", sha256="i1", kind="text", title="items", text=TEXT)


def test_typing_ten_characters_asks_for_one_plan(qtbot):
    from app.gui.ask_panel import PLAN_DELAY_MS, AskPanel

    make_app()
    panel = AskPanel()
    qtbot.addWidget(panel)
    wanted: list[tuple[str, str, str]] = []
    panel.plan_wanted.connect(lambda *args: wanted.append(args))
    qtbot.keyClicks(panel.q_core, "What costs")  # ten characters, one textEdited each
    assert wanted == []  # nothing while typing
    with qtbot.waitSignal(panel.plan_wanted, timeout=PLAN_DELAY_MS * 10):
        pass
    qtbot.wait(PLAN_DELAY_MS + 100)  # and nothing more after the pause
    assert wanted == [("What costs", "", "auto")]


def test_the_model_thread_keeps_one_database_connection_and_closes_it(app_home, qtbot):
    from app.gui.workers import ModelWorker

    worker = ModelWorker()
    script = lambda p: memory_output("Item 1 costs 7 euros.", "p") if "<section>" in p else "7"  # noqa: E731
    worker.backend = FakeBackend(script)
    worker.settings = Settings(n_ctx=2048, chunk_tokens=120, memory_tokens=100)
    events: list[object] = []
    worker.engine_event.connect(events.append)
    plans: list[object] = []
    worker.planned.connect(lambda plan, _s: plans.append(plan))
    question = Question("What does item 1 cost?", "What does item 1 cost?", "", Mode.MEMORY_AGENT)
    for _ in range(3):
        worker.plan(DOC, question)  # planning reads no database
    assert worker.connections_opened == 0 and len(plans) == 3
    store = worker._store()
    doc_id = store.add_document(DOC)
    for _ in range(3):
        session = store.create_session(doc_id, "q")
        worker.ask(DOC, doc_id, session, plans[-1])
        worker.resume(int(getattr(events[-1], "run_id", 0)), DOC)  # finished: answered again
    finished = [e for e in events if type(e).__name__ == "RunFinished"]
    assert len(finished) == 6
    assert worker.connections_opened == 1
    conn = store.conn
    worker.shutdown()
    assert worker.store is None
    try:
        conn.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 - sqlite3.ProgrammingError: closed
        assert "closed" in str(error)
    else:
        raise AssertionError("the connection is still open")


def test_a_new_model_thread_estimates_with_the_models_measured_speed(app_home, qtbot):
    """After a restart, the first estimate is this model's measured one, not the guess."""
    from app.gui.workers import ModelWorker

    first = ModelWorker()
    step = memory_output("Item 1 costs 7.", "p")
    first.backend = FakeBackend(lambda prompt: step if "<" in prompt else "7")
    settings = Settings(n_ctx=2048, chunk_tokens=120, memory_tokens=100)
    first.settings = settings
    plans: list[tuple[object, float]] = []
    first.planned.connect(lambda plan, seconds: plans.append((plan, seconds)))
    question = Question("What does item 1 cost?", "What does item 1 cost?", "", Mode.MEMORY_AGENT)
    first.plan(DOC, question)
    guessed = plans[-1][1]
    store = first._store()
    doc_id = store.add_document(DOC)
    first.ask(DOC, doc_id, store.create_session(doc_id, "q"), plans[-1][0])
    first.shutdown()

    second = ModelWorker()  # a new process's model thread: nothing learnt in memory
    second.backend = FakeBackend(lambda p: "7")
    second.settings = settings
    second.planned.connect(lambda plan, seconds: plans.append((plan, seconds)))
    second._recall_speed()
    # the fake's steps take 1 ms each: what the store measured, not 200 tokens/s
    assert second.speed.prompt_tps > 10_000 and second.speed.step_output > 0
    second.plan(DOC, question)
    assert plans[-1][1] < guessed / 50
    second.shutdown()
