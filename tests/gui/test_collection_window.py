"""Collections in the real window: several files opened as one, the reading order set in
the collection dialog, a citation in a member opens that file at its own page, the
timeline names the documents a step read, reopening from history. The window runs the
tiny qwen3moe GGUF (real llama.cpp): the collection's boundaries are the subject, not
what the model writes."""

from __future__ import annotations

import pytest

from app.gui.main import make_app
from app.gui.window import MainWindow
from app.settings import Settings
from tests.conftest import make_pdf

FAST = Settings(n_ctx=2048, chunk_tokens=200, max_new_tokens=24, mode="memory_agent")


@pytest.fixture
def room(tmp_path):
    folder = tmp_path / "room"
    folder.mkdir()
    make_pdf(folder / "1-lease.pdf", ["The lease runs to 2031. " * 25, "Rent: 900 EUR a month."])
    (folder / "2-memo.txt").write_text("The tenant is Harbor Ltd.\n" * 30, encoding="utf-8")
    make_pdf(folder / "3-audit.pdf", ["Audit page one. " * 25, "The auditor is Ferro and Co."])
    return folder


@pytest.fixture
def window(qtbot, tiny_model):
    make_app()
    win = MainWindow(FAST.with_changes(model_path=str(tiny_model)))
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.model_ready, timeout=60_000):
        pass
    yield win
    win.model.stop()


def test_a_folder_opens_as_one_collection_and_a_passage_opens_its_file(qtbot, window, room):
    with qtbot.waitSignal(window.document_opened, timeout=30_000):
        window.open_files([str(room)])
    doc = window.document
    assert doc.kind == "collection" and [m.number for m in doc.members] == [1, 2, 3]
    at = doc.text.index("The auditor is Ferro")
    window.viewer.mark_span(at, at + 20)
    pages = window.viewer.pages
    assert pages.pdf is not None and pages.pdf.name.endswith("3-audit.pdf")
    assert pages.page == 2  # the audit's own page 2, not the collection's page 5
    assert set(pages.highlights) == {2}
    # a text member shows in the Text tab: no PDF for it
    memo = doc.text.index("Harbor Ltd")
    assert doc.cite(memo, memo + 5) == f"{doc.members[1].title}, p. 1"


def test_the_dialog_sets_the_reading_order(qtbot, window, room):
    from app.gui.collection_dialog import CollectionDialog

    dialog = CollectionDialog([str(room)], "Deal")
    qtbot.addWidget(dialog)
    assert [p.split("/")[-1] for p in dialog.paths()] == [
        "1-lease.pdf",
        "2-memo.txt",
        "3-audit.pdf",
    ]
    dialog.files.setCurrentRow(2)
    dialog.move_current(-2)  # the audit first
    dialog.files.setCurrentRow(2)
    dialog.files.takeItem(2)  # as Remove does: drop the memo
    assert [p.split("/")[-1] for p in dialog.paths()] == ["3-audit.pdf", "1-lease.pdf"]
    with qtbot.waitSignal(window.document_opened, timeout=30_000):
        window.open_files(dialog.paths(), dialog.name.text())
    assert window.document.title == "Deal"
    assert [m.title for m in window.document.members][0] == window.document.members[0].title
    assert window.document.members[0].path.endswith("3-audit.pdf")


def test_a_run_names_the_documents_its_steps_read(qtbot, window, room):
    from app.gui.memory_text import where_read

    with qtbot.waitSignal(window.document_opened, timeout=30_000):
        window.open_files([str(room)])
    window.ask_panel.set_question("Who is the tenant?")
    qtbot.waitUntil(lambda: window.plan is not None, timeout=30_000)
    chunks = window.plan.chunks
    described = [where_read(c, window.document) for c in chunks]
    assert described[0].startswith(window.document.members[0].title + ", page")
    assert any(d.startswith("2 documents:") for d in described)  # a step across a boundary
    with qtbot.waitSignal(window.run_ended, timeout=240_000) as ended:
        window.ask_panel.ask_button.click()
    assert ended.args == ["finished"]
    assert "of 3 documents" in window.timeline.coverage_label.text()
    assert window.timeline.coverage.members and len(window.timeline.coverage.members) == 3
