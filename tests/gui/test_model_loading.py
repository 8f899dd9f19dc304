"""Loading the model in the real window: llama.cpp's own progress drives the bar, Cancel
stops a load, and Settings shows the automatic placement plan before anything loads."""

from __future__ import annotations

import pytest

from app.gui.main import make_app
from app.gui.window import MainWindow
from app.settings import Settings
from tests.fixtures.tiny_qwen3moe import write_tiny_qwen3moe

FAST = Settings(n_ctx=2048, chunk_tokens=300, max_new_tokens=40)


@pytest.fixture
def window(qtbot):
    make_app()
    win = MainWindow(FAST)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.model_ready, timeout=60_000):
        pass
    yield win
    win.model.stop()


def test_load_progress_fills_the_bar(qtbot, window, tmp_path):
    model = write_tiny_qwen3moe(tmp_path / "tiny-qwen3moe.gguf")
    seen: list[float] = []
    window.model.worker.model_load_progress.connect(seen.append)
    with qtbot.waitSignal(window.model_ready, timeout=60_000):
        window.apply_settings(window.settings.with_changes(model_path=str(model)))
    qtbot.waitUntil(lambda: bool(seen) and seen[-1] == 1.0, timeout=10_000)
    assert seen == sorted(seen) and len(seen) >= 3
    assert window.model_busy.maximum() == 100  # a percentage, not a busy bar
    assert window.model_busy.isHidden()
    # the automatic placement is shown with the model
    assert "context 2,048" in window.model_label.text()
    assert "CPU only" in window.model_label.text()


def test_cancel_stops_a_load(qtbot, window, tmp_path):
    model = write_tiny_qwen3moe(tmp_path / "tiny-qwen3moe.gguf")
    worker = window.model.worker
    # Cancel is clicked at the first progress report (the UI thread, as a user would)
    worker.model_load_progress.connect(lambda _f: window.cancel_run())
    with qtbot.waitSignal(worker.model_load_cancelled, timeout=60_000):
        window.apply_settings(window.settings.with_changes(model_path=str(model)))
    qtbot.waitUntil(lambda: "cancelled" in window.model_label.text(), timeout=5_000)
    assert not window.model_loaded and window.model.worker.backend is None
    assert window.model_busy.isHidden()


def test_settings_show_the_plan_and_manual_placement(qtbot, window, tmp_path):
    from app.gui.settings_dialog import SettingsDialog

    model = write_tiny_qwen3moe(tmp_path / "tiny-qwen3moe.gguf")
    settings = window.settings.with_changes(model_path=str(model), n_ctx=0)
    dialog = SettingsDialog(settings, window)
    qtbot.addWidget(dialog)
    assert dialog.plan_label.text().startswith("Plan: context 4,096")
    assert not dialog.n_cpu_moe.isEnabled()
    dialog.placement.setCurrentIndex(dialog.placement.findData("manual"))
    assert dialog.n_cpu_moe.isEnabled() and dialog.gpu_layers.isEnabled()
    dialog.n_cpu_moe.setValue(1)
    dialog._save()
    chosen = dialog.result_settings
    assert chosen is not None
    assert (chosen.placement, chosen.n_cpu_moe, chosen.experts_in_ram) == ("manual", 1, 1)
    with qtbot.waitSignal(window.model_ready, timeout=60_000):
        window.apply_settings(chosen)
    backend = window.model.worker.backend
    assert set(backend.load_params.overridden()) == {
        f"blk.0.ffn_{kind}_exps.weight" for kind in ("gate", "up", "down")
    }


def test_first_run_with_default_settings_plans_the_sample(qtbot):
    """Default settings (an automatic context, 0) must plan with the loaded model's real
    context: the first run of `bootstrap.sh open` once said "A 0-token context window is
    too small"."""
    from app.resources import SAMPLE_QUESTION, sample_document

    make_app()
    win = MainWindow(Settings())
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.model_ready, timeout=60_000):
        pass
    with qtbot.waitSignal(win.document_opened, timeout=30_000):
        win.open_file(str(sample_document()))
    win.ask_panel.set_question(SAMPLE_QUESTION)
    qtbot.waitUntil(lambda: win.plan is not None, timeout=30_000)
    assert win.plan.budgets.n_ctx == 4096  # the demo model's automatic context
    assert win.plan.mode == "memory_agent" and 3 <= len(win.plan.chunks) <= 4
    assert "too small" not in win.ask_panel.plan_label.text()
    win.model.stop()
