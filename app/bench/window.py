"""The benchmarks of the window, each in a fresh process (Qt's start and the first window
are what they measure, and the bench itself stays Qt-free): launch (process start to a
shown window) and ui (the event loop's stalls during a run, app/gui/bench_ui.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# The checkout's root (app/bench/window.py is three levels down): the child processes
# import app from there.
ROOT = Path(__file__).resolve().parents[2]


def bench_ui(steps: int, model: str | None = None) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "app.gui.bench_ui", str(steps), *([model] if model else [])],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")},
        timeout=900,
        cwd=ROOT,
    )
    if out.returncode != 0:
        raise RuntimeError(f"UI bench failed: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def bench_launch() -> dict[str, Any]:
    # The model loads on its own thread after the window shows, so it is not counted.
    code = (
        "import time; t = time.perf_counter()\n"
        "from app.gui.main import make_app\n"
        "from app.gui.window import MainWindow\n"
        "app = make_app(); window = MainWindow(); window.show(); app.processEvents()\n"
        "print(time.perf_counter() - t); window.model.stop()\n"
    )
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=120,
        cwd=ROOT,
    )
    total = time.perf_counter() - started
    inside = float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else -1
    return {"process_start_to_window_s": round(total, 2), "imports_to_window_s": round(inside, 2)}
