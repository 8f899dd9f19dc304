"""The real window under pytest-qt: open, ask, watch steps, cancel, resume, reopen from
history, change settings; the event loop never stalls during a run. The runs' mechanics
run on the tiny random-weight qwen3moe GGUF (real llama.cpp, ~35x faster than the demo
model; its output only has to exist); what the window says of the demo model is checked
on the demo model."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QObject, Qt, QTimer, Slot

from app.agent.events import StepFinished, StepStarted
from app.gui.main import make_app
from app.gui.window import MainWindow
from app.settings import Settings, load_settings
from tests.conftest import make_pdf

FAST = Settings(n_ctx=2048, chunk_tokens=300, max_new_tokens=40, mode="memory_agent")
PAGES = [
    ("Page one. The vault code is 4417. The bank is on Elm Street. " * 16),
    ("Page two. The guard is named Otto. He works nights. " * 16),
    ("Page three. The alarm was installed in 1998 by Ferro Ltd. " * 16),
]


def started_window(qtbot, settings: Settings) -> MainWindow:
    make_app()
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    with qtbot.waitSignal(win.model_ready, timeout=60_000):
        pass
    return win


@pytest.fixture
def window(qtbot):
    """The window on the bundled demo model (FAST's empty model_path)."""
    win = started_window(qtbot, FAST)
    yield win
    win.model.stop()  # qtbot closes the window afterwards; a second stop must be harmless


@pytest.fixture
def tiny_window(qtbot, tiny_model):
    """The window on the tiny qwen3moe GGUF, for what a run does in the window."""
    win = started_window(qtbot, FAST.with_changes(model_path=str(tiny_model)))
    yield win
    win.model.stop()


def open_pdf(qtbot, win, path):
    with qtbot.waitSignal(win.document_opened, timeout=30_000):
        win.open_file(str(path))


def wait_planned(qtbot, win):
    qtbot.waitUntil(lambda: win.plan is not None, timeout=30_000)


class CancelAfterFirstStep(QObject):
    """Cancel is clicked on the UI thread, as a user clicks it, when the first step has
    finished, and the model thread waits at that step's event until it has been: the run
    stops right after its first step however fast the model is (no race with step 2)."""

    def __init__(self, win: MainWindow) -> None:
        super().__init__()  # lives on the UI thread: _click is queued to it
        self.win = win
        self.clicked = threading.Event()
        self.worker = win.model.worker
        # in this order: an emit posts its queued calls and runs its direct ones in the
        # order they were connected, so _click is posted before _hold waits for it
        self.worker.engine_event.connect(self._click, Qt.ConnectionType.QueuedConnection)
        self.worker.engine_event.connect(self._hold, Qt.ConnectionType.DirectConnection)

    def _hold(self, event: object) -> None:  # on the model thread
        if isinstance(event, StepFinished) and not self.clicked.wait(30):
            raise AssertionError("Cancel was not clicked on the UI thread within 30 s")

    @Slot(object)
    def _click(self, event: object) -> None:  # on the UI thread
        if isinstance(event, StepFinished) and not self.clicked.is_set():
            assert threading.current_thread() is threading.main_thread()
            self.win.cancel_run()
            self.clicked.set()

    def detach(self) -> None:
        self.worker.engine_event.disconnect(self._hold)
        self.worker.engine_event.disconnect(self._click)


class StallMeter:
    """Measures the longest gap between ticks of a 10 ms timer on the UI thread."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.worst = 0.0
        self.timer = QTimer(interval=10)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last)
        self.last = now


def test_the_demo_model_is_named_as_the_demo(qtbot, window):
    """The status bar says the bundled model is a demo with poor answers and where to get
    the real one; the timeline then explains the demo model's malformed steps."""
    assert "demo model" in window.model_label.text()
    assert "Get QwenLong-L1.5" in window.model_label.text()
    assert window.timeline.is_demo


def test_open_ask_watch_steps_and_reopen_from_history(qtbot, tiny_window, tmp_path):
    win = tiny_window
    pdf = make_pdf(tmp_path / "bank.pdf", PAGES)
    open_pdf(qtbot, win, pdf)
    assert win.viewer.pages.pdf is not None and win.viewer.pages.pdf.page_count == 3
    assert win.model_label.text().startswith("Model: ") and "demo" not in win.model_label.text()
    assert not win.timeline.is_demo  # any other model is named as itself, without the note
    # before a question, the plan line says what it waits for (not "open a document")
    assert win.ask_panel.plan_label.text().startswith("Type a question")
    win.ask_panel.set_question("What is the vault code? Answer with a number.")
    assert win.ask_panel.q_core.text() == "What is the vault code?"
    assert win.ask_panel.q_inst.text() == "Answer with a number."
    wait_planned(qtbot, win)
    assert "Memory agent" in win.ask_panel.plan_label.text()
    planned_steps = len(win.plan.chunks)
    meter = StallMeter()
    with qtbot.waitSignal(win.run_ended, timeout=240_000) as ended:
        win.ask_panel.ask_button.click()
    meter.timer.stop()
    assert ended.args == ["finished"]
    assert meter.worst < 0.1, f"the event loop stalled for {meter.worst * 1000:.0f} ms"
    steps = win.timeline.records
    assert len(steps) == planned_steps >= 2
    assert win.timeline.steps.count() == len(steps)
    assert win.ask_panel.answer.toPlainText().strip()
    assert "Sources" in win.ask_panel.answer.toPlainText()
    assert win.citations, "every fact of the final memory gets an evidence row"
    win.viewer.text.setExtraSelections([])
    win._open_citation(0)
    assert win.viewer.text.extraSelections()
    assert win.statusBar().currentMessage().startswith(f"Page {win.citations[0]['page']}:")
    assert "Read 3 of 3 pages" in win.timeline.coverage_label.text()
    # keyboard: Alt+Down/Alt+Up move through the steps from anywhere, clamped at the ends
    win.timeline.steps.setCurrentRow(0)
    win.step_by(1)
    assert win.timeline.steps.currentRow() == 1
    win.step_by(99)
    assert win.timeline.steps.currentRow() == win.timeline.steps.count() - 1
    win.step_by(-99)
    assert win.timeline.steps.currentRow() == 0
    # clicking a step marks its span in the viewer
    win.timeline.steps.setCurrentRow(1)
    assert win.viewer.text.extraSelections()
    assert "Memory" in win.timeline.details.toPlainText()
    # reopen from history shows the stored run exactly
    run_id = win.run_id
    win.timeline.steps.clear()
    win.ask_panel.clear_answer()
    win.show_run(run_id)
    assert win.timeline.steps.count() == len(steps)
    assert [s.memory for s in win.timeline.records] == [s.memory for s in steps]
    history = win.library.history
    assert history.topLevelItemCount() >= 1


def test_cancel_then_resume(qtbot, tiny_window, tmp_path):
    win = tiny_window
    open_pdf(qtbot, win, make_pdf(tmp_path / "bank.pdf", PAGES))
    win.ask_panel.set_question("Who is the guard?")
    wait_planned(qtbot, win)
    planned_steps = len(win.plan.chunks)
    assert planned_steps >= 2
    cancel = CancelAfterFirstStep(win)
    with qtbot.waitSignal(win.run_ended, timeout=240_000) as ended:
        win.ask_panel.ask_button.click()
    cancel.detach()
    assert ended.args == ["cancelled"]
    assert win.timeline.resume_button.isVisible()
    assert len(win.timeline.records) == 1  # the step finished before Cancel is kept
    run = win.store.get_run(win.run_id)
    assert run.status == "cancelled" and len(run.steps) == 1 < len(run.chunks) == planned_steps
    assert not win.busy  # so closing does not ask whether to stop a run
    win.close()  # quit the app; the run stays resumable in the database


def test_resume_after_restart_from_history(qtbot, tiny_window, tmp_path):
    """Cancel in one window, then a new window (the app restarted) reopens the run from
    history, opens its document and resumes at the next chunk."""
    test_cancel_then_resume(qtbot, tiny_window, tmp_path)
    kept = tiny_window.store.get_run(tiny_window.run_id).steps
    restarted = MainWindow(tiny_window.settings)
    qtbot.addWidget(restarted)
    with qtbot.waitSignal(restarted.model_ready, timeout=60_000):
        pass
    run_id = restarted.store.list_runs(restarted.store.list_sessions()[0]["id"])[-1]["id"]
    with qtbot.waitSignal(restarted.document_opened, timeout=30_000):
        restarted.show_run(run_id)
    done = len(restarted.timeline.records)
    total = restarted.timeline.total
    assert restarted.run_id == run_id and done == 1 < total
    assert not restarted.timeline.resume_button.isHidden()
    read: list[int] = []  # the chunks the resumed run reads, as the model thread starts them
    restarted.model.worker.engine_event.connect(
        lambda e: read.append(e.chunk.index) if isinstance(e, StepStarted) else None,
        Qt.ConnectionType.DirectConnection,
    )
    with qtbot.waitSignal(restarted.run_ended, timeout=240_000) as ended:
        restarted.timeline.resume_button.click()
    assert ended.args == ["finished"]
    assert len(restarted.timeline.records) == total
    # it went on at the next chunk: the kept step is the run's first, not read again
    assert read == list(range(1, total))
    run = restarted.store.get_run(run_id)
    assert [s.chunk.index for s in run.steps] == list(range(total))
    assert run.steps[0].memory == kept[0].memory
    restarted.model.stop()


def test_settings_are_validated_and_persist(qtbot, window):
    from app.gui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.kv.setCurrentText("q8_0")  # needs flash attention
    dialog.flash.setChecked(False)
    dialog._save()
    assert dialog.result_settings is None
    assert "flash attention" in dialog.error.text()
    dialog.flash.setChecked(True)
    dialog.kv.setCurrentText("f16")
    dialog.temperature.setValue(0.7)
    dialog._save()
    assert dialog.result_settings is not None
    with qtbot.waitSignal(window.model_ready, timeout=60_000):
        window.apply_settings(dialog.result_settings)
    assert load_settings().temperature == pytest.approx(0.7)


def test_bad_document_shows_a_clear_message(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: shown.append(a[2]))
    binary = tmp_path / "data.txt"
    binary.write_bytes(bytes(range(256)) * 10)
    window.open_file(str(binary))
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert "binary" in shown[0].lower()
    assert window.document is None


def test_unload_frees_the_model_and_asking_loads_it_again(qtbot, tiny_window, tmp_path):
    win = tiny_window
    win.unload_model()
    qtbot.waitUntil(lambda: not win.model_loaded, timeout=10_000)
    assert "unloaded" in win.model_label.text()
    assert win.model.worker.backend is None  # llama.cpp's memory is released
    notes = tmp_path / "notes.txt"
    notes.write_text("The ferry leaves at 7:15 from pier 4. " * 6, encoding="utf-8")
    with qtbot.waitSignal(win.document_opened, timeout=30_000):
        win.open_file(str(notes))
    with qtbot.waitSignal(win.run_ended, timeout=240_000) as ended:
        win.ask("When does the ferry leave?", mode="single_pass")
    assert ended.args == ["finished"]
    assert win.model_loaded and win.model_busy.isHidden()
    assert win.ask_panel.answer.toPlainText().strip()


def test_dark_and_light_palettes_apply_without_reloading_the_model(qtbot, window):
    from PySide6.QtWidgets import QApplication

    loads = []
    window.request_load.connect(loads.append)
    window.apply_settings(window.settings.with_changes(theme="dark"))
    QApplication.processEvents()
    assert window.palette().window().color().lightness() < 100
    assert window.palette().text().color().lightness() > 180  # readable text on it
    assert load_settings().theme == "dark"
    window.apply_settings(window.settings.with_changes(theme="light"))
    QApplication.processEvents()
    assert window.palette().window().color().lightness() > 180
    assert loads == []  # the model stayed loaded


def test_asking_in_another_mode_plans_again_first(qtbot, tiny_window, tmp_path):
    win = tiny_window
    notes = tmp_path / "ferry.txt"
    notes.write_text("The ferry leaves at 7:15 from pier 4. " * 6, encoding="utf-8")
    with qtbot.waitSignal(win.document_opened, timeout=30_000):
        win.open_file(str(notes))
    win.ask_panel.set_question("When does the ferry leave?")
    wait_planned(qtbot, win)
    with qtbot.waitSignal(win.run_ended, timeout=240_000):
        win.ask("When does the ferry leave?", mode="single_pass")
    assert win.store.get_run(win.run_id).mode == "single_pass"
    with qtbot.waitSignal(win.run_ended, timeout=240_000):
        win.ask("When does the ferry leave?", mode="memory_agent")
    assert win.store.get_run(win.run_id).mode == "memory_agent"
