"""Regenerate docs/screenshots/: the real window on the sample document in each main
state (ready, reading, finished, a citation opened, two runs compared, settings, getting
the model, dark palette), with the demo model.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/screenshots.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QWENLONG_READER_HOME", tempfile.mkdtemp(prefix="qwenlong-shots-"))

from app.gui.main import make_app  # noqa: E402
from app.gui.window import MainWindow  # noqa: E402
from app.resources import SAMPLE_QUESTION, sample_document  # noqa: E402
from app.settings import Settings  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def wait(app, condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    app = make_app()
    window = MainWindow(
        Settings(n_ctx=4096, chunk_tokens=600, max_new_tokens=160, mode="memory_agent")
    )
    window.resize(1280, 800)
    window.show()
    wait(app, lambda: window.model_loaded, 60)
    window.open_file(str(sample_document()))
    wait(app, lambda: window.document is not None, 30)
    window.ask_panel.set_question(SAMPLE_QUESTION)
    wait(app, lambda: window.plan is not None, 30)
    OUT.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(OUT / "1-ready-to-ask.png"))
    ended: list[str] = []
    window.run_ended.connect(ended.append)
    window.ask_panel.ask_button.click()
    wait(app, lambda: len(window.timeline.records) >= 2, 300)
    window.grab().save(str(OUT / "2-reading.png"))
    wait(app, lambda: bool(ended), 600)
    window.timeline.steps.setCurrentRow(1)
    wait(app, lambda: False, 0.5)
    window.grab().save(str(OUT / "3-finished-run.png"))
    first_run = window.run_id
    if window.citations:
        window._open_citation(0)
        wait(app, lambda: False, 0.5)
        window.grab().save(str(OUT / "4-citation-opened.png"))
    # A second run of the same question in single pass, then both side by side.
    ended.clear()
    window.ask(SAMPLE_QUESTION, mode="single_pass")
    wait(app, lambda: bool(ended), 600)
    if first_run is not None and window.run_id not in (None, first_run):
        window.compare_runs(first_run, window.run_id)
        dialog = window.compare_dialog
        dialog.resize(1200, 760)
        wait(app, lambda: False, 0.5)
        dialog.grab().save(str(OUT / "5-compare-runs.png"))
        dialog.close()
    from app.gui.models_dialog import ModelsDialog
    from app.gui.settings_dialog import SettingsDialog
    from app.llm.hardware import detect_hardware

    settings = SettingsDialog(window.settings, window)
    settings.show()
    wait(app, lambda: False, 0.3)
    settings.grab().save(str(OUT / "6-settings.png"))
    settings.close()
    models = ModelsDialog(detect_hardware(), window)
    models.show()
    wait(app, lambda: False, 0.3)
    models.grab().save(str(OUT / "7-get-the-model.png"))
    models.done(0)
    from app.gui.theme import apply_theme

    apply_theme("dark")
    window.show_run(first_run)
    wait(app, lambda: False, 1.0)
    window.grab().save(str(OUT / "8-dark-palette.png"))
    apply_theme("system")
    window.close()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
