"""Regenerate the memory panel's screenshots (issue 18): the real window on the bundled
sample with the demo model's first-run defaults (empty, streaming, finished, a memory
line's evidence opened), then a synthetic 300-page, 40-step run in the dark palette.

Run: xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/memory_panel.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from PySide6.QtWidgets import QApplication, QWidget

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QWENLONG_READER_HOME", tempfile.mkdtemp(prefix="qwenlong-shots-"))

from app.agent.events import Event  # noqa: E402
from app.gui.main import make_app  # noqa: E402
from app.gui.window import MainWindow  # noqa: E402
from app.records import Mode, Question  # noqa: E402
from app.resources import SAMPLE_QUESTION, sample_document  # noqa: E402
from app.settings import Settings  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def wait(app: QApplication, condition: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    return bool(condition())


def shot(app: QApplication, widget: QWidget, name: str) -> None:
    wait(app, lambda: False, 0.4)
    widget.grab().save(str(OUT / name))
    print("saved", name)


def synthetic_run(window: MainWindow, pages: int = 300, steps: int = 40) -> None:
    """A 300-page document read in 40 steps, fed to the window as engine events."""
    import random

    from app.agent.engine import memory_diff
    from app.agent.events import RunStarted, StepFinished, StepStarted
    from app.documents.model import Document
    from app.records import CallStats, Chunk, StepRecord

    rng = random.Random(7)
    facts = [
        f"Site {chr(65 + i % 26)}{i}: {rng.randint(1, 9)} incidents in {2000 + i % 24}."
        for i in range(400)
    ]
    text_pages = [" ".join(facts[(p * 3 + k) % 400] for k in range(6)) + "\n" for p in range(pages)]
    starts, pos = [], 0
    for t in text_pages:
        starts.append(pos)
        pos += len(t)
    document = Document(
        path="/synthetic/annual-safety-review.txt",
        sha256="0" * 64,
        kind="text",
        title="Annual safety review (synthetic, 300 pages)",
        text="".join(text_pages),
        page_starts=starts,
    )
    window.document = document
    window.viewer.show_document(document)
    window.timeline.set_document(document)
    per = pages / steps
    chunks = []
    for i in range(steps):
        first, last = int(i * per) + 1, int((i + 1) * per)
        chunks.append(
            Chunk(
                i,
                starts[first - 1],
                starts[last - 1] + len(text_pages[last - 1]),
                3000,
                first,
                last,
            )
        )
    window._on_event(
        RunStarted(99, Mode.MEMORY_AGENT, "synthetic", "incidents?", "", tuple(chunks))
    )
    memory, plan = "", ""
    lines: list[str] = []
    for i, c in enumerate(chunks[:-3]):
        window._on_event(StepStarted(99, c, steps))
        page_facts = [facts[(p * 3) % 400] for p in range(c.page_first - 1, c.page_last)]
        change = rng.random()
        if change > 0.7:
            lines = lines[-6:] + page_facts[:4]
        elif change > 0.3:
            lines = lines + page_facts[:2]
        lines = lines[-18:]
        new_memory = "\n".join(lines)
        plan = f"Look for more incident counts after page {c.page_last}; check totals."
        stats = CallStats(
            raw_output=new_memory,
            prompt_tokens=3400,
            completion_tokens=300,
            prompt_ms=2000,
            generation_ms=9000,
            wall_ms=11000 + rng.random() * 4000,
        )
        step = StepRecord(i, c, new_memory, plan, stats)
        window._on_event(
            StepFinished(99, step, steps, memory_diff(memory, new_memory), (steps - i) * 12.0)
        )
        memory = new_memory
    window._on_event(StepStarted(99, chunks[-3], steps))
    window.timeline.token("Updated memory:\n<memory>\n" + "\n".join(lines[:5]) + "\n")


def incident_reader(prompt: str) -> str:
    """A scripted stand-in for QwenLong on the sample: keeps each sentence that counts
    safety incidents, adds a running total of its own, and plans what to look for next."""
    import re

    from tests.fakes import memory_output

    old = re.search(r"<memory>\n(.*?)\n</memory>", prompt.split("<section>")[0], re.DOTALL)
    if "<section>" not in prompt:
        return "The auditors recorded 16 safety incidents in total (4 + 7 + 2 + 3)."
    section = " ".join(prompt.split("<section>")[1].split("</section>")[0].split())
    found = [s for s in re.split(r"(?<=\.)\s+", section) if re.search(r"\d+ safety incidents", s)]
    kept = [k for k in (old.group(1).splitlines() if old else []) if not k.startswith("Running")]
    lines = kept + [f"- {s}" for s in found]
    counts = [int(n) for n in re.findall(r"(?:recorded|There were) (\d+) safety", "\n".join(lines))]
    if counts:
        lines.append(
            f"Running total so far: {sum(counts)} incidents ({' + '.join(map(str, counts))})."
        )
    plan = (
        "Keep reading the remaining sections for incident counts.\n"
        "Add every site's count to the running total."
        if counts
        else "Look for sections that count safety incidents per site."
    )
    thinking = "The section lists sites; I should keep each incident count verbatim."
    return memory_output("\n".join(lines) or "No incident counts yet.", plan, thinking)


def scripted_events(window: MainWindow) -> Iterator[Event]:
    """A whole run of the scripted reader on the open document, through the real engine
    and the window's own database (so the answer's citations are real rows)."""
    from dataclasses import replace

    from app.agent.engine import Engine
    from app.agent.events import StepFinished
    from app.llm.backend import CancelToken
    from tests.fakes import FakeBackend

    doc, document_id = window.document, window.document_id
    assert doc is not None and document_id is not None
    engine = Engine(
        FakeBackend(incident_reader), window.store, Settings(n_ctx=4096, chunk_tokens=150)
    )
    q_core = "How many safety incidents did the auditors record in total?"
    question = Question(SAMPLE_QUESTION, q_core, "Answer with a number.", Mode.MEMORY_AGENT)
    plan = engine.plan(doc, question)
    session = window.store.create_session(document_id, q_core)
    for event in engine.ask(doc, document_id, session, plan, CancelToken()):
        if isinstance(event, StepFinished):  # a GPU's pace instead of the script's
            left = event.total - event.step.index - 1
            stats = replace(
                event.step.stats, wall_ms=18_000.0, prompt_ms=6_000.0, generation_ms=12_000.0
            )
            step = replace(event.step, stats=stats)
            event = replace(event, step=step, eta_s=left * 18.0 + 10)
        yield event


def main() -> None:
    app = make_app()
    window = MainWindow(Settings())
    window.resize(1440, 900)
    window.show()
    wait(app, lambda: window.model_loaded, 60)
    window.open_file(str(sample_document()))
    wait(app, lambda: window.document is not None, 30)
    window.ask_panel.set_question(SAMPLE_QUESTION)
    wait(app, lambda: window.plan is not None, 30)
    OUT.mkdir(parents=True, exist_ok=True)
    shot(app, window, "9-memory-empty.png")
    t = window.timeline
    # A scripted reader (QwenLong's output format) through the real engine and window.
    from app.agent.events import StepStarted, TokenStreamed

    steps_started = 0
    tokens_in_step = 0
    for event in scripted_events(window):
        window._on_event(event)
        app.processEvents()
        if isinstance(event, StepStarted):
            steps_started, tokens_in_step = steps_started + 1, 0
        if isinstance(event, TokenStreamed) and steps_started == 3:
            tokens_in_step += 1
            if tokens_in_step == 45:
                t.live._draw()
                shot(app, window, "10-memory-streaming.png")
    t.steps.setCurrentRow(len(t.records) - 1)
    shot(app, window, "11-memory-finished.png")
    linked = [n for n, tr in enumerate(t.details.traces) if tr.evidence is not None]
    t.details.open_line(linked[1] if len(linked) > 1 else linked[0])
    shot(app, window, "12-memory-evidence.png")
    t.tabs.setCurrentWidget(t.plans)
    shot(app, window, "14-plan-cards.png")
    t.tabs.setCurrentWidget(t.details)
    # The real demo model on the sample, with the first-run defaults.
    ended: list[str] = []
    window.run_ended.connect(ended.append)
    started = time.monotonic()
    window.ask_panel.ask_button.click()
    wait(app, lambda: len(t.records) >= 2 and t.live.chunk is not None, 600)
    wait(app, lambda: len(t.live._text) > 200, 60)
    window.cancel_run()
    wait(app, lambda: bool(ended), 120)
    print(f"demo run cancelled after {time.monotonic() - started:.1f} s: {ended}")
    shot(app, window, "15-cancelled-mid-step.png")
    ended.clear()
    started = time.monotonic()
    window.ask(SAMPLE_QUESTION)
    wait(app, lambda: bool(ended), 900)
    print(f"demo run: {ended} in {time.monotonic() - started:.1f} s, {len(t.records)} steps")
    t.steps.setCurrentRow(0)
    shot(app, window, "16-demo-model-run.png")
    from app.gui.theme import apply_theme

    apply_theme("dark")
    synthetic_run(window)
    t.steps.setCurrentRow(20)
    shot(app, window, "13-reading-map-300-pages-dark.png")
    apply_theme("system")
    window.close()


if __name__ == "__main__":
    main()
