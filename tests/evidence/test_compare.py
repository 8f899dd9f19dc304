"""Comparing two runs of one question: differences, answer agreement, aligned timelines,
in the engine's real store, the `compare` command and the window's dialog."""

from __future__ import annotations

import pytest

from app.__main__ import main
from app.agent.engine import Engine
from app.agent.events import RunFinished
from app.documents.ingest import load_document
from app.errors import UserError
from app.evidence.compare import align_steps, compare_runs, similarity, to_markdown
from app.llm.backend import CancelToken
from app.records import CallStats, Chunk, Mode, Question, StepRecord
from app.settings import Settings
from app.store.database import open_database
from tests.evidence.test_evidence import extractive_script, facts_pdf
from tests.fakes import FakeBackend


def step(index: int, start: int, end: int, memory: str = "m") -> StepRecord:
    chunk = Chunk(index, start, end, end - start, 1 + start // 100, 1 + (end - 1) // 100)
    return StepRecord(
        index=index,
        chunk=chunk,
        memory=memory,
        plan="p",
        stats=CallStats(),
        malformed=False,
    )


def test_equal_chunking_pairs_index_by_index():
    left = [step(i, i * 100, (i + 1) * 100) for i in range(3)]
    right = [step(i, i * 100, (i + 1) * 100) for i in range(3)]
    rows = align_steps(left, right)
    assert [(r.left.index, r.right.index) for r in rows] == [(0, 0), (1, 1), (2, 2)]
    assert all(r.same_span for r in rows)


def test_different_chunking_pairs_steps_over_the_same_pages():
    # Run A read in chunks of 100 characters, run B in chunks of 200.
    left = [step(i, i * 100, (i + 1) * 100) for i in range(4)]
    right = [step(i, i * 200, (i + 1) * 200) for i in range(2)]
    rows = align_steps(left, right)
    assert [(r.left.index, r.right.index) for r in rows] == [(0, 0), (1, 0), (2, 1), (3, 1)]
    for row in rows:  # every row's two steps overlap in the document
        assert row.left.chunk.start < row.right.chunk.end
        assert row.right.chunk.start < row.left.chunk.end
    assert not rows[0].same_span


def test_a_run_that_stopped_early_leaves_its_side_empty():
    rows = align_steps([step(0, 0, 100)], [step(0, 0, 100), step(1, 100, 200)])
    assert rows[-1].left is None and rows[-1].right.index == 1
    assert rows[-1].memory_similarity is None


def test_similarity_ignores_case_punctuation_and_articles():
    assert similarity("The answer is 14.", "answer is 14") == 1.0
    assert similarity("3 bridges", "four tunnels") == 0.0


def ask(store, doc, doc_id, chunk_tokens: int, script=extractive_script) -> int:
    engine = Engine(
        FakeBackend(script),
        store,
        Settings(n_ctx=2048, chunk_tokens=chunk_tokens, memory_tokens=400),
    )
    session = store.create_session(doc_id, "q")
    question = "What was damaged?"
    plan = engine.plan(doc, Question(question, question, "", Mode.MEMORY_AGENT))
    events = list(engine.ask(doc, doc_id, session, plan, CancelToken()))
    assert isinstance(events[-1], RunFinished)
    return events[-1].run_id


@pytest.fixture
def two_runs(tmp_path):
    store = open_database()
    doc = load_document(facts_pdf(tmp_path))
    doc_id = store.add_document(doc)
    a = ask(store, doc, doc_id, chunk_tokens=160)
    b = ask(store, doc, doc_id, chunk_tokens=320)
    return store, a, b


def test_compare_two_stored_runs_with_other_chunk_sizes(two_runs):
    store, a, b = two_runs
    comparison = compare_runs(store, a, b)
    labels = {d.label: (d.left, d.right) for d in comparison.differences}
    assert labels["Setting chunk_tokens"] == ("160", "320")
    assert "Model" not in labels  # same model: not listed as a difference
    run_a, run_b = store.get_run(a), store.get_run(b)
    assert len(run_a.steps) > len(run_b.steps)
    assert comparison.answers_agree  # the scripted answer is the same
    assert len(run_a.steps) <= len(comparison.rows) < len(run_a.steps) + len(run_b.steps)
    for row in comparison.rows:  # each row pairs steps that read overlapping text
        assert row.left.chunk.start < row.right.chunk.end
        assert row.right.chunk.start < row.left.chunk.end
    markdown = to_markdown(comparison)
    assert f"# Run {a} vs run {b}" in markdown
    assert "| Setting chunk_tokens | 160 | 320 |" in markdown
    assert "The answers agree." in markdown


def test_compare_refuses_runs_of_different_documents(tmp_path, two_runs):
    store, a, _ = two_runs
    (tmp_path / "notes.txt").write_text("A different document about ships.", encoding="utf-8")
    other = load_document(tmp_path / "notes.txt")
    other_id = store.add_document(other)
    c = ask(store, other, other_id, chunk_tokens=160)
    with pytest.raises(UserError, match="different documents"):
        compare_runs(store, a, c)
    with pytest.raises(UserError, match="itself"):
        compare_runs(store, a, a)


def test_compare_command_writes_markdown(two_runs, tmp_path, capsys):
    _, a, b = two_runs
    assert main(["compare", str(a), str(b)]) == 0
    assert f"# Run {a} vs run {b}" in capsys.readouterr().out
    out = tmp_path / "cmp.md"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0
    assert "## Timelines" in out.read_text(encoding="utf-8")
    assert main(["compare", str(a), "9999"]) != 0


def test_compare_dialog_keeps_both_timelines_on_the_same_pages(qtbot, two_runs):
    from app.gui.compare_dialog import CompareDialog

    store, a, b = two_runs
    dialog = CompareDialog(compare_runs(store, a, b))
    qtbot.addWidget(dialog)
    dialog.show()
    left, right = dialog.columns
    assert left.steps.count() == right.steps.count() == len(dialog.comparison.rows)
    left.steps.setCurrentRow(2)
    assert right.steps.currentRow() == 2
    row = dialog.comparison.rows[2]
    assert row.left.memory in left.detail.toPlainText()
    assert row.right.memory in right.detail.toPlainText()
    assert "agree" in dialog.verdict.text()
    assert dialog.differences.rowCount() == len(dialog.comparison.differences) > 0


def test_history_compares_the_two_selected_runs(qtbot):
    from PySide6.QtCore import Qt

    from app.gui.library import LibraryPanel

    panel = LibraryPanel()
    qtbot.addWidget(panel)
    runs = [
        {"id": i, "status": "finished", "mode": "memory_agent", "question": "q"} for i in (7, 4)
    ]
    panel.set_history([({"id": 1, "title": "q"}, runs)])
    session = panel.history.topLevelItem(0)
    assert not panel.compare_button.isEnabled()
    session.child(0).setSelected(True)
    assert not panel.compare_button.isEnabled()  # one run is not a comparison
    session.child(1).setSelected(True)
    assert panel.compare_button.isEnabled()
    with qtbot.waitSignal(panel.compare_requested) as signal:
        qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    assert signal.args == [4, 7]
