"""Resuming in the window goes on with the run's own context (issue #13, item 6): a run
read with a larger context than the model is loaded with now loads the model again with
the run's, as the command line's resume does; a machine that cannot load it is told what
to do, and the model is loaded again as it was. Real window, real llama.cpp on the tiny
qwen3moe GGUF (the reloads and the run's steps are the subject, not what the model
writes), SQLite."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from app.errors import ModelError
from app.gui import workers
from app.gui.main import make_app
from app.gui.window import MainWindow
from app.settings import Settings, load_settings
from tests.conftest import make_pdf
from tests.gui.test_window import PAGES, CancelAfterFirstStep, open_pdf, wait_planned

LARGE = Settings(n_ctx=4096, chunk_tokens=300, max_new_tokens=40, mode="memory_agent")


@pytest.fixture
def warnings(monkeypatch) -> list[str]:
    """The texts of the warning boxes shown (a modal box would block the test)."""
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: shown.append(a[2]))
    return shown


@pytest.fixture
def cancelled(qtbot, tmp_path, warnings, tiny_model):
    """A window whose run, read with a 4,096-token context, was cancelled after its first
    step; the settings then changed to 2,048 tokens, so the model is loaded with 2,048."""
    make_app()
    large = LARGE.with_changes(model_path=str(tiny_model))
    win = MainWindow(large)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.model_ready, timeout=60_000):
        pass
    open_pdf(qtbot, win, make_pdf(tmp_path / "bank.pdf", PAGES))
    win.ask_panel.set_question("Who is the guard?")
    wait_planned(qtbot, win)
    cancel = CancelAfterFirstStep(win)
    with qtbot.waitSignal(win.run_ended, timeout=240_000) as ended:
        win.ask_panel.ask_button.click()
    cancel.detach()
    assert ended.args == ["cancelled"]
    run = win.store.get_run(win.run_id)
    assert run.n_ctx == 4096 and len(run.steps) == 1 < len(run.chunks)
    with qtbot.waitSignal(win.model_ready, timeout=60_000):
        win.apply_settings(large.with_changes(n_ctx=2048))
    assert win.model.worker.backend.n_ctx == 2048
    yield win
    win.model.stop()


def test_resume_loads_the_model_again_with_the_runs_larger_context(qtbot, cancelled, warnings):
    win = cancelled
    run_id = win.run_id
    said: list[str] = []
    win.model.worker.model_reloading.connect(said.append)
    assert win.timeline.resume_button.isVisible()
    with qtbot.waitSignal(win.run_ended, timeout=240_000) as ended:
        win.timeline.resume_button.click()
    assert (ended.args, warnings) == (["finished"], [])
    assert said and "4,096-token context" in said[0] and "2,048" in said[0]
    assert win.model.worker.backend.n_ctx == 4096
    run = win.store.get_run(run_id)
    assert run.status == "finished" and len(run.steps) == len(run.chunks)
    # the run went on with its own settings: none of them changed for the resume
    assert not any("changed settings" in note for s in run.steps for note in s.stats.notes)
    assert run.settings["n_ctx"] == 4096 and run.settings["budgets"]["n_ctx"] == 4096
    # the user's settings are still theirs: new questions are planned with them
    assert win.settings.n_ctx == 2048 and load_settings().n_ctx == 2048
    assert win.model_loaded and win.model_busy.isHidden()


def test_resume_says_what_to_do_when_the_runs_context_cannot_be_loaded(
    qtbot, cancelled, warnings, monkeypatch
):
    win = cancelled
    run_id = win.run_id
    status = win.store.get_run(run_id).status
    real_open = workers.open_backend

    def small_machine(settings: Settings, **kwargs: object) -> object:
        if settings.n_ctx > 2048:
            raise ModelError("Not enough memory for a 4,096-token context on this machine.")
        return real_open(settings, **kwargs)

    monkeypatch.setattr(workers, "open_backend", small_machine)
    with qtbot.waitSignal(win.run_ended, timeout=120_000) as ended:
        win.timeline.resume_button.click()
    assert ended.args == ["failed"]
    [message] = warnings
    assert "4,096-token context" in message and "Not enough memory" in message
    assert "loaded again with 2,048 tokens" in message and "press Resume again" in message
    assert win.model_loaded and win.model.worker.backend.n_ctx == 2048  # as it was
    assert win.store.get_run(run_id).status == status  # nothing was read: still resumable
    assert win.timeline.resume_button.isVisible()
