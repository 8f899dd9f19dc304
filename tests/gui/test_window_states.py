"""What the window offers in each state, and what it shows: a run is the window's from the
moment it is asked for (a Cancel or a close before the model thread takes it up reaches
it), another document opens on a clean timeline (and not under a run), a model load
forgets the plan made for the model as it was, a reopened run can be asked again, the
status bar's messages are readable, a run is exported from the window. Real window, real
llama.cpp on the tiny qwen3moe GGUF; modal boxes answered by replacing them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QMessageBox

from app.gui.window import MODEL_LABEL_MAX_WIDTH, MainWindow
from tests.conftest import make_pdf
from tests.gui.test_window import FAST, PAGES, open_pdf, started_window, wait_planned


class ModelThreadHold(QObject):
    """Keeps the model thread busy (as a model load or a plan does) until released, so
    what the window does before the thread takes up its next request can be tested."""

    hold = Signal()

    def __init__(self, win: MainWindow) -> None:
        super().__init__()
        self.release = threading.Event()
        self.holding = threading.Event()
        self.worker = _Holder(self)
        self.worker.moveToThread(win.model.thread)
        self.hold.connect(self.worker.wait, Qt.ConnectionType.QueuedConnection)

    def __enter__(self) -> ModelThreadHold:
        self.hold.emit()
        assert self.holding.wait(10), "the model thread did not take up the hold"
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()


class _Holder(QObject):
    def __init__(self, owner: ModelThreadHold) -> None:
        super().__init__()
        self.owner = owner

    @Slot()
    def wait(self) -> None:
        self.owner.holding.set()
        self.owner.release.wait(60)


class OnUiThread(QObject):
    """Calls ``function`` on the UI thread, where this object lives, for each queued
    signal: after the window's own handler of the same event."""

    def __init__(self, function: object) -> None:
        super().__init__()
        self.function = function

    @Slot(object)
    def call(self, event: object) -> None:
        self.function(event)  # type: ignore[operator]


@pytest.fixture
def tiny_window(qtbot, tiny_model) -> Iterator[MainWindow]:
    win = started_window(qtbot, FAST.with_changes(model_path=str(tiny_model)))
    yield win
    win.model.stop()


def ask_and_finish(qtbot, win: MainWindow, question: str) -> None:
    win.ask_panel.set_question(question)
    wait_planned(qtbot, win)
    with qtbot.waitSignal(win.run_ended, timeout=240_000) as ended:
        win.ask_panel.ask_button.click()
    assert ended.args == ["finished"]


def test_a_cancel_before_the_model_thread_starts_the_run_reaches_it(qtbot, tiny_window, tmp_path):
    win = tiny_window
    open_pdf(qtbot, win, make_pdf(tmp_path / "bank.pdf", PAGES))
    win.ask_panel.set_question("Who is the guard?")
    wait_planned(qtbot, win)
    with qtbot.waitSignal(win.run_ended, timeout=60_000) as ended, ModelThreadHold(win):
        win.ask_panel.ask_button.click()
        # Asked, not started: the run is already the window's to cancel or to ask about
        # on close.
        assert win.busy and win.timeline.cancel_button.isEnabled()
        assert not win.ask_panel.ask_button.isEnabled()
        win.timeline.cancel_button.click()
    assert ended.args == ["cancelled"]
    run = win.store.get_run(win.run_id)
    assert run.status == "cancelled" and run.steps == []
    assert not win.busy


def test_another_document_opens_on_a_clean_timeline(qtbot, tiny_window, tmp_path):
    win = tiny_window
    open_pdf(qtbot, win, make_pdf(tmp_path / "bank.pdf", PAGES))
    ask_and_finish(qtbot, win, "Who is the guard?")
    assert win.timeline.records and win.run_id is not None
    assert win.ask_panel.answer.toPlainText().strip()
    open_pdf(qtbot, win, make_pdf(tmp_path / "other.pdf", ["Another report. " * 40]))
    assert win.run_id is None and win.citations == []
    assert win.timeline.records == [] and win.timeline.steps.count() == 0
    assert win.timeline.progress.format() == "No run yet"
    assert not win.ask_panel.answer.toPlainText().strip()
    assert win.timeline.coverage.page_count == 1  # the new document's pages


def test_no_other_document_or_run_opens_during_a_run(qtbot, tiny_window, tmp_path):
    win = tiny_window
    bank = make_pdf(tmp_path / "bank.pdf", PAGES)
    open_pdf(qtbot, win, bank)
    ask_and_finish(qtbot, win, "Who is the guard?")
    first_run = win.run_id
    win.ask_panel.set_question("What is the vault code?")
    wait_planned(qtbot, win)
    other = make_pdf(tmp_path / "other.pdf", ["Another report. " * 40])
    with qtbot.waitSignal(win.run_ended, timeout=60_000), ModelThreadHold(win):
        win.ask_panel.ask_button.click()
        win.open_file(str(other))
        assert "A run is in progress" in win.statusBar().currentMessage()
        win.show_run(first_run)
        win.cancel_run()
    assert win.document is not None and win.document.path == str(bank)
    assert win.run_id != first_run  # the cancelled run is still the one shown


def test_a_model_load_forgets_the_plan_and_cancel_stops_it(qtbot, tiny_window, tmp_path):
    win = tiny_window
    open_pdf(qtbot, win, make_pdf(tmp_path / "bank.pdf", PAGES))
    win.ask_panel.set_question("Who is the guard?")
    wait_planned(qtbot, win)
    old_chunks = len(win.plan.chunks)
    with ModelThreadHold(win):
        # Smaller chunks: the plan made before would read the document wrongly.
        win.apply_settings(win.settings.with_changes(chunk_tokens=150))
        assert win.plan is None and not win.ask_panel.ask_button.isEnabled()
        assert "once the model is loaded" in win.ask_panel.plan_label.text()
        assert win.timeline.cancel_button.isEnabled()  # "Cancel stops it", and it does
    qtbot.waitUntil(lambda: win.plan is not None, timeout=60_000)
    assert len(win.plan.chunks) > old_chunks
    assert not win.timeline.cancel_button.isEnabled()  # loaded, nothing to cancel


def test_a_failed_load_leaves_nothing_to_ask(qtbot, tiny_window, tmp_path, monkeypatch):
    warned: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text, *a, **k: warned.append(text))
    win = tiny_window
    open_pdf(qtbot, win, make_pdf(tmp_path / "bank.pdf", PAGES))
    win.ask_panel.set_question("Who is the guard?")
    wait_planned(qtbot, win)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 8)
    win.apply_settings(win.settings.with_changes(model_path=str(broken)))
    qtbot.waitUntil(lambda: bool(warned), timeout=30_000)
    assert "broken.gguf" in warned[0]
    assert win.plan is None and not win.ask_panel.ask_button.isEnabled()
    assert "No model loaded" in win.ask_panel.plan_label.text()
    assert not win.timeline.cancel_button.isEnabled()


def test_a_run_reopened_from_history_can_be_asked_again(qtbot, tiny_window, tmp_path):
    win = tiny_window
    open_pdf(qtbot, win, make_pdf(tmp_path / "bank.pdf", PAGES))
    ask_and_finish(qtbot, win, "Who is the guard?")
    run_id = win.run_id
    open_pdf(qtbot, win, make_pdf(tmp_path / "other.pdf", ["Another report. " * 40]))
    with qtbot.waitSignal(win.document_opened, timeout=30_000):
        win.show_run(run_id)
    assert win.run_id == run_id and win.ask_panel.q_core.text() == "Who is the guard?"
    qtbot.waitUntil(lambda: win.ask_panel.ask_button.isEnabled(), timeout=30_000)
    assert win.plan is not None


def test_status_messages_have_room_beside_the_model_line(qtbot, tiny_window):
    win = tiny_window
    win.resize(1000, 700)
    win.model_label.setText("Model: " + "a very long model description " * 10)
    win.statusBar().showMessage("Reading page 3 of 120…")
    qtbot.wait(50)
    label = win.model_label
    assert label.width() <= MODEL_LABEL_MAX_WIDTH
    assert label.text().startswith("Model: a very long") and label.toolTip() == label.text()
    assert win.statusBar().toolTip() == "Reading page 3 of 120…"  # a long one is read whole
    room = label.geometry().left()  # the messages are drawn left of the permanent widgets
    assert room >= win.statusBar().fontMetrics().horizontalAdvance("Reading page 3 of 120…")


def test_a_run_is_exported_from_the_window(qtbot, tiny_window, tmp_path):
    win = tiny_window
    win.export_run(str(tmp_path / "nothing"))
    assert "Nothing to export" in win.statusBar().currentMessage()
    open_pdf(qtbot, win, make_pdf(tmp_path / "bank.pdf", PAGES))
    ask_and_finish(qtbot, win, "Who is the guard?")
    out = tmp_path / "report"
    win.export_run(str(out))
    stem = f"run-{win.run_id}"
    assert {p.name for p in out.iterdir()} == {f"{stem}.md", f"{stem}.pdf", f"{stem}.json"}
    data = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
    assert "Who is the guard?" in json.dumps(data)
    assert "Exported run" in win.statusBar().currentMessage()


def test_a_recent_file_that_is_gone_leaves_the_list(qtbot, tiny_window, tmp_path, monkeypatch):
    warned: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text, *a, **k: warned.append(text))
    win = tiny_window
    path = make_pdf(tmp_path / "moved.pdf", PAGES)
    open_pdf(qtbot, win, path)
    assert str(path) in win.settings.recent_files
    path.unlink()
    win.open_file(str(path))
    qtbot.waitUntil(lambda: bool(warned), timeout=30_000)
    assert "moved.pdf" in warned[0]
    assert str(path) not in win.settings.recent_files
    assert str(path) not in [a.text() for a in win.recent_menu.actions()]


def test_under_a_run_history_and_library_clicks_change_nothing(qtbot, tiny_window, tmp_path):
    """Clicking the running run keeps its Cancel; clicking another document is refused,
    the list showing the open one selected again; the refusal stays readable past the
    run's next step. The model thread waits at the first step until the clicks are done."""
    from app.agent.events import StepFinished
    from app.gui.library import ROLE

    win = tiny_window
    bank = make_pdf(tmp_path / "bank.pdf", PAGES)
    open_pdf(qtbot, win, make_pdf(tmp_path / "other.pdf", ["Another report. " * 40]))
    other_id = win.document_id
    open_pdf(qtbot, win, bank)
    win.ask_panel.set_question("Who is the guard?")
    wait_planned(qtbot, win)
    clicked = threading.Event()
    seen: dict[str, object] = {}

    def on_ui(event: object) -> None:  # after the window's own handler, on the UI thread
        if not isinstance(event, StepFinished):
            return
        if not clicked.is_set():
            other = next(
                win.library.documents.item(i)
                for i in range(win.library.documents.count())
                if win.library.documents.item(i).data(ROLE) == other_id
            )
            win.library._document(other)
            seen["shown"] = win.document.path
            seen["selected"] = win.library.documents.currentItem().data(ROLE)
            win.show_run(win.run_id)  # the running run, clicked in History
            seen["cancel"] = win.timeline.cancel_button.isEnabled()
            clicked.set()
        elif "after" not in seen:
            seen["after"] = win.statusBar().currentMessage()
            win.cancel_run()

    def hold(event: object) -> None:  # on the model thread
        if isinstance(event, StepFinished) and not clicked.is_set():
            clicked.wait(30)

    worker = win.model.worker
    probe = OnUiThread(on_ui)  # a plain function would be called on the model thread
    worker.engine_event.connect(probe.call, Qt.ConnectionType.QueuedConnection)
    worker.engine_event.connect(hold, Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(win.run_ended, timeout=240_000):
        win.ask_panel.ask_button.click()
    worker.engine_event.disconnect(probe.call)
    worker.engine_event.disconnect(hold)
    assert seen["shown"] == str(bank) and seen["selected"] == win.document_id != other_id
    assert seen["cancel"] is True
    assert "A run is in progress" in str(seen["after"])


def test_an_ask_waiting_for_its_plan_is_not_run_on_the_next_document(qtbot, tiny_window, tmp_path):
    win = tiny_window
    open_pdf(qtbot, win, make_pdf(tmp_path / "bank.pdf", PAGES))
    with ModelThreadHold(win):
        win.ask_panel.set_question("Who is the guard?")
        win.ask("Who is the guard?", "memory_agent")  # no plan yet: asked when it comes
        assert win._pending_ask is not None
        open_pdf(qtbot, win, make_pdf(tmp_path / "other.pdf", ["Another report. " * 40]))
    qtbot.waitUntil(lambda: win.plan is not None, timeout=60_000)
    qtbot.wait(300)
    assert not win.busy and win.run_id is None
    assert win.store.list_sessions() == [] or all(
        not win.store.list_runs(s["id"]) for s in win.store.list_sessions()
    )


def test_settings_that_runs_use_apply_without_loading_the_model_again(qtbot, tiny_window):
    win = tiny_window
    loaded = win.model.worker.backend
    with qtbot.waitSignal(win.model_ready, timeout=30_000):
        win.apply_settings(win.settings.with_changes(temperature=0.9, seed=7, mode="auto"))
    assert win.model.worker.backend is loaded  # the same model: nothing reloaded
    assert not win.model.worker.loading  # and no load left pending for a Cancel to hit
    assert win.model.worker.settings.temperature == 0.9 and win.model.worker.settings.seed == 7
    with qtbot.waitSignal(win.model_ready, timeout=60_000):
        win.apply_settings(win.settings.with_changes(n_ctx=4096))  # this one is the load's
    assert win.model.worker.backend is not loaded


def test_about_the_model_names_the_model_this_window_runs(qtbot, tiny_window):
    win = tiny_window
    win.about_model()
    text = win._about_model.text()
    assert "tiny-qwen3moe.gguf" in text and "Context: 2,048 tokens" in text
    assert "Demo model" not in text and "SmolLM2" not in text


def test_the_status_line_names_the_server_and_never_its_password(qtbot):
    """A team's server (here the remote tests' stub on loopback): the status line says
    the model is on it, by its URL without the password written into it."""
    from tests.llm.test_remote import Stub

    stub = Stub()
    serving = threading.Thread(target=stub.server.serve_forever, args=(0.05,), daemon=True)
    serving.start()
    try:
        url = stub.url.replace("http://", "http://alice:S3cret@")
        win = started_window(qtbot, FAST.with_changes(backend="remote", remote_url=url))
        text = win.model_label.text()
        assert f"on the server {stub.url}" in text and "S3cret" not in text
        win.about_model()
        assert f"Server: {stub.url}" in win._about_model.text()
        win.model.stop()
    finally:
        stub.server.shutdown()
        stub.server.server_close()
