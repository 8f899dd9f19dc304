"""The UI-stall benchmark's child process (``python -m app.bench --only ui`` starts it):
Qt lives here, in the GUI package, so the bench itself stays Qt-free."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.bench.synthetic import synthetic_text


def ui_stall_child(steps: int, model: str = "") -> None:
    """Runs in a child process: the real window asks the demo model (or the GGUF
    ``model``) a memory-agent question while a 5 ms timer on the UI thread records the
    longest gap between ticks."""
    from PySide6.QtCore import QEventLoop, QTimer

    from app.gui.main import make_app
    from app.gui.window import MainWindow
    from app.records import Mode
    from app.settings import Settings

    make_app()
    settings = Settings(
        n_ctx=2048, chunk_tokens=256, max_new_tokens=32, mode=Mode.MEMORY_AGENT, model_path=model
    )
    win = MainWindow(settings)
    win.show()

    def wait(signal: Any = None, until: Any = None) -> None:
        loop = QEventLoop()
        if signal is not None:
            signal.connect(loop.quit)
        poll = QTimer(interval=20)
        poll.timeout.connect(lambda: loop.quit() if until and until() else None)
        poll.start()
        loop.exec()
        poll.stop()

    if not win.model_loaded:
        wait(win.model_ready)
    path = Path(tempfile.mkdtemp()) / "stall.txt"
    path.write_text(synthetic_text(steps * 256 * 4), encoding="utf-8")
    win.open_file(str(path))
    wait(until=lambda: win.document is not None)
    win.ask_panel.set_question("How many vessels were logged on pier 3?")
    wait(until=lambda: win.plan is not None)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    meter = QTimer(interval=5)
    meter.timeout.connect(tick)
    meter.start()
    status: list[str] = []
    win.run_ended.connect(status.append)
    win.ask_panel.ask_button.click()
    wait(until=lambda: bool(status))
    meter.stop()
    gaps.sort()
    backend = win.model.worker.backend
    assert backend is not None
    print(
        json.dumps(
            {
                "model": Path(backend.identity.path).name,
                "status": status[0],
                "steps": len(win.timeline.records),
                "ticks": len(gaps),
                "worst_stall_ms": round(gaps[-1] * 1000, 1),
                "p99_gap_ms": round(gaps[int(len(gaps) * 0.99)] * 1000, 1),
            }
        )
    )
    win.model.stop()


if __name__ == "__main__":
    ui_stall_child(
        int(sys.argv[1]) if len(sys.argv) > 1 else 5, sys.argv[2] if len(sys.argv) > 2 else ""
    )
