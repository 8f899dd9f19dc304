"""The memory panel driven like a user: a real engine run (scripted model, real SQLite,
real PDF) fed to the timeline wired to the viewer; click a memory line and see its
passage, see inferences marked, thinking collapsed, everything escaped, the live step
stream in, a cancel mid-step say what is kept, plans as cards, the chart select."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, QUrl

from app.gui.main import make_app
from app.gui.memory_text import parse_partial, plan_changes, problems_in_words
from app.records import CallStats, Chunk, StepRecord
from tests.gui.memory_helpers import (
    FACTS,
    INVENTED,
    engine_events,
    facts_document,
    feed,
    selected_text,
    wired,
)


def run_panel(qtbot, tmp_path, store):
    doc, plan, events, _ = engine_events(tmp_path, store)
    panel, viewer = wired(qtbot, doc)
    assert feed(panel, doc, events) == "finished"
    return doc, plan, panel, viewer


def test_clicking_a_memory_line_highlights_its_passage(qtbot, tmp_path, store):
    doc, plan, panel, viewer = run_panel(qtbot, tmp_path, store)
    assert len(panel.records) == len(plan.chunks) >= 4
    assert panel.steps.currentRow() == len(panel.records) - 1  # followed the run
    traces = panel.details.traces
    storm = next(n for n, t in enumerate(traces) if "bridges" in t.line)
    assert traces[storm].evidence is not None and traces[storm].evidence.page == 4
    with qtbot.waitSignal(panel.passage_requested) as clicked:
        panel.details.anchorClicked.emit(QUrl(f"ev:{storm}"))  # what a click on the link does
    start, end = clicked.args
    assert FACTS[4] in selected_text(viewer)
    assert viewer.pages.page == 4  # the page view went to the passage's page
    assert doc.page_of(start) == 4 and end > start


def test_lines_that_trace_to_nothing_are_marked_as_inference(qtbot, tmp_path, store):
    _, _, panel, _ = run_panel(qtbot, tmp_path, store)
    invented = [t for t in panel.details.traces if t.line == INVENTED]
    assert invented and invented[0].evidence is None and invented[0].traceable
    shown = panel.details.toPlainText()
    assert f"{INVENTED} — model's inference" in shown
    for fact in FACTS.values():
        assert f"{fact} p." in " ".join(shown.split())  # linked, with its page


def test_thinking_is_collapsed_and_never_in_the_memory(qtbot, tmp_path, store):
    _, _, panel, _ = run_panel(qtbot, tmp_path, store)
    shown = panel.details.toPlainText()
    assert "I read it." not in shown and "Show thinking (3 words)" in shown
    assert all("I read it" not in t.line for t in panel.details.traces)
    panel.details.anchorClicked.emit(QUrl("toggle:thinking"))
    assert "I read it." in panel.details.toPlainText()
    panel.details.anchorClicked.emit(QUrl("toggle:thinking"))
    assert "I read it." not in panel.details.toPlainText()


def test_model_and_document_text_is_escaped(qtbot, tmp_path, store):
    hostile = "<img src=x onerror=alert(1)> <b>bold</b> <a href='file:///etc'>x</a>"

    def script(prompt: str) -> str:
        from tests.fakes import memory_output

        return memory_output(f"{hostile}\n{FACTS[2]}", f"plan {hostile}", f"think {hostile}")

    doc, _, events, _ = engine_events(tmp_path, store, script)
    panel, _ = wired(qtbot, doc)
    feed(panel, doc, events)
    html = panel.details.toHtml()
    assert "<img" not in html and "<b>bold" not in html
    assert '<a href="file' not in html  # shown as text, not a link
    assert hostile in panel.details.toPlainText()
    panel.details.anchorClicked.emit(QUrl("toggle:thinking"))
    assert "<img" not in panel.details.toHtml()
    panel.tabs.setCurrentWidget(panel.plans)
    assert "<img" not in panel.plans.toHtml() and "<b>bold" not in panel.plans.toHtml()
    assert "<img" not in panel.live.text.toHtml()


def test_clicking_a_band_shows_its_pages_in_the_viewer(qtbot, tmp_path, store):
    doc, _, panel, viewer = run_panel(qtbot, tmp_path, store)
    target = next(r for r in panel.records if r.chunk.page_first <= 4 <= r.chunk.page_last)
    map_ = panel.coverage
    rect = map_.band_rect(target.chunk)
    with qtbot.waitSignal(panel.step_selected) as selected:
        qtbot.mouseClick(map_, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    assert selected.args[0] is target
    assert panel.steps.currentRow() == panel.records.index(target)
    assert selected_text(viewer) == " ".join(
        doc.text[target.chunk.start : target.chunk.end].split()
    )
    assert viewer.pages.page == target.chunk.page_first
    assert f"Step {target.chunk.index + 1} of" in panel.details.toPlainText()


def test_plan_cards_mark_changes_and_select_steps(qtbot, tmp_path, store):
    _, _, panel, _ = run_panel(qtbot, tmp_path, store)
    cards = panel.plans.toPlainText()
    assert "Look for costs. new" in " ".join(cards.split()) or "Look for costs new" in cards
    assert "same plan as before" in cards or "dropped" in cards or "Look for damage" in cards
    with qtbot.waitSignal(panel.step_selected) as selected:
        panel.plans.anchorClicked.emit(QUrl("step:1"))
    assert selected.args[0].chunk.index == 1
    marked, dropped = plan_changes("Look for damage.", "Look for costs.\nLook for damage.")
    assert marked == [("Look for costs.", True), ("Look for damage.", False)] and not dropped


def test_chart_click_selects_a_step(qtbot, tmp_path, store):
    _, _, panel, _ = run_panel(qtbot, tmp_path, store)
    chart = panel.chart
    assert len(chart.points) == len(panel.records)
    slot = chart._plot().width() / len(chart.points)
    x = int(chart._plot().left() + slot * 1.5)
    with qtbot.waitSignal(panel.step_selected) as selected:
        qtbot.mouseClick(chart, Qt.MouseButton.LeftButton, pos=QPoint(x, chart.height() // 2))
    assert selected.args[0].chunk.index == 1
    assert chart.points[0].added >= 0 and chart.points[-1].tokens > 0


def test_live_step_streams_memory_and_plan_with_eta(qtbot, tmp_path):
    doc = facts_document(tmp_path)
    panel, _ = wired(qtbot, doc)
    chunks = (Chunk(0, 0, 100, 50, 1, 2), Chunk(1, 100, 200, 50, 3, 4))
    panel.start(chunks, doc.page_count, "memory_agent")
    panel.set_running(True)
    panel.step_started(chunks[0])
    assert "Step 1 of 2 · pages 1–2 · reading the pages" in panel.live.header.text()
    assert panel.live.header.isVisibleTo(panel)
    panel.token("weighing the pages", thinking=True)
    for piece in ("Updated memory:\n<mem", "ory>\nThe storm damaged ", "3 bridges.\n</memory>\n"):
        with qtbot.waitSignal(panel.live_updated, timeout=2000):
            panel.token(piece)
    shown = panel.live.text.toPlainText()
    assert (
        "The storm damaged 3 bridges." in shown and "writing the plan" in panel.live.header.text()
    )
    assert "weighing" not in shown and "thinking: 3 words" in shown
    with qtbot.waitSignal(panel.live_updated, timeout=2000):
        panel.token("<plan>\nLook for costs")
    assert "Look for costs" in panel.live.text.toPlainText()
    stats = CallStats(
        prompt_tokens=10, completion_tokens=10, prompt_ms=1.0, generation_ms=1.0, wall_ms=2.0
    )
    step = StepRecord(0, chunks[0], "The storm damaged 3 bridges.", "Look for costs.", stats)
    panel.add_step(step, "+The storm damaged 3 bridges.", eta_s=42.0)
    panel.step_started(chunks[1])
    assert (
        "Step 2 of 2 · pages 3–4 · reading the pages… · about 42 s left" in panel.live.header.text()
    )
    assert "about 42 s left" in panel.progress.format()


def test_cancel_mid_step_says_which_steps_are_kept(qtbot, tmp_path, store):
    doc, plan, events, cancel = engine_events(tmp_path, store)
    panel, viewer = wired(qtbot, doc)
    seen = []

    def cancelling():
        started = 0
        for event in events:
            seen.append(event)
            if type(event).__name__ == "StepStarted":
                started += 1
            if started == 3 and type(event).__name__ == "TokenStreamed":
                cancel.cancel()  # the user clicks Cancel while step 3 is being written
            yield event

    assert feed(panel, doc, cancelling()) == "cancelled"
    kept = panel.records
    assert [r.chunk.index for r in kept] == [0, 1]
    stopped = plan.chunks[2]
    label = panel.coverage_label.text()
    assert f"Kept: steps 1–2 (pages 1–{kept[-1].chunk.page_last}), saved." in label
    assert f"Not kept: step 3 (pages {stopped.page_first}–{stopped.page_last})" in label
    assert "Resume reads on from step 3." in label
    assert panel.coverage.stopped == stopped and panel.coverage.current is None
    assert panel.resume_button.isVisibleTo(panel)
    assert panel.steps.count() == 2
    # what is kept is what the database kept
    run = store.get_run(next(e.run_id for e in seen if type(e).__name__ == "RunStarted"))
    assert [s.memory for s in run.steps] == [r.memory for r in kept]
    with qtbot.waitSignal(panel.step_selected):
        panel.steps.setCurrentRow(0)
    assert selected_text(viewer) == " ".join(
        doc.text[kept[0].chunk.start : kept[0].chunk.end].split()
    )


def test_single_pass_reads_in_words(qtbot, tmp_path):
    doc = facts_document(tmp_path)
    panel, _ = wired(qtbot, doc)
    panel.start((Chunk(0, 0, len(doc.text), 900, 1, 6),), doc.page_count, "single_pass")
    assert panel.coverage_label.text() == "Single pass: read all 6 pages in one prompt"
    panel.finish("finished")
    assert panel.progress.format() == "Done · Single pass: read all 6 pages in one prompt"
    assert "chunks" not in panel.progress.format()
    assert panel.coverage.pages_read() == 6


def test_a_malformed_step_says_what_went_wrong(qtbot, tmp_path, store):
    doc, _, events, _ = engine_events(tmp_path, store, lambda prompt: "I like bridges.")
    panel, _ = wired(qtbot, doc)
    panel.set_demo(True)
    feed(panel, doc, events)
    shown = panel.details.toPlainText()
    assert "the model did not write a <memory> block; its whole reply was kept" in shown.lower()
    assert "135M" in shown and "QwenLong" in shown
    assert "did not write a <memory> block" in panel.steps.item(0).text()
    step = panel.records[0]
    assert problems_in_words(step, is_demo=False)[-1].startswith("It wrote no <plan>")


def test_partial_output_parsing():
    p = parse_partial("Updated memory:\n<memory>\nA\nB\n</memory>\n<pl")
    assert (p.memory, p.plan, p.phase) == ("A\nB", "", "plan")
    p = parse_partial("<memory>x</memory><plan>y</plan>")
    assert (p.memory, p.plan, p.phase) == ("x", "y", "done")
    p = parse_partial("deep thought</think><memory>x")
    assert (p.thinking, p.memory, p.phase) == ("deep thought", "x", "memory")
    p = parse_partial("<memory>old</memory><memory>new")  # the last block wins
    assert p.memory == "new"
    assert parse_partial("", "hmm").phase == "thinking"


def test_first_run_reads_the_sample_in_a_few_memory_steps(qtbot, demo_backend):
    """The demo model on the bundled sample, default settings: a short memory-agent run
    (3-4 steps) instead of a single pass, so a new user sees the timeline fill."""
    from app.documents.ingest import load_document
    from app.gui.workers import ModelWorker
    from app.records import Mode, Question
    from app.resources import SAMPLE_QUESTION, sample_document
    from app.settings import Settings

    make_app()
    worker = ModelWorker()
    worker.backend, worker.settings = demo_backend, Settings(n_ctx=4096)
    sample = load_document(sample_document())
    q_core, q_inst = SAMPLE_QUESTION.rsplit(" Answer", 1)
    with qtbot.waitSignal(worker.planned) as planned:
        worker.plan(sample, Question(SAMPLE_QUESTION, q_core, "Answer" + q_inst))
    plan = planned.args[0]
    assert plan.mode == "memory_agent" and 3 <= len(plan.chunks) <= 4
    assert plan.chunks[-1].page_last == sample.page_count == 8
    assert plan.budgets.max_new_tokens <= 128
    assert "watch the memory agent" in plan.reason
    # Any other document, or a chosen mode, plans as before.
    with qtbot.waitSignal(worker.planned) as planned:
        worker.plan(sample, Question(q_core, q_core, "", Mode.SINGLE_PASS))
    assert planned.args[0].mode == "single_pass"
