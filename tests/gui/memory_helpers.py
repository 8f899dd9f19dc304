"""Shared by the memory-panel tests: the timeline and viewer wired as the window wires
them, and the window's handling of engine events for the timeline."""

from __future__ import annotations

import re
from collections.abc import Iterable

from app.agent.events import (
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    TokenStreamed,
)
from app.gui.main import make_app
from app.gui.timeline import TimelinePanel
from app.gui.viewer import DocumentViewer
from tests.evidence.memory_run import (  # noqa: F401 - re-exported for the GUI tests
    FACTS,
    INVENTED,
    engine_events,
    facts_document,
)


def wired(qtbot, document):
    """Timeline and viewer connected as MainWindow connects them."""
    make_app()
    viewer = DocumentViewer()
    panel = TimelinePanel()
    for widget in (viewer, panel):
        qtbot.addWidget(widget)
    viewer.show_document(document)
    panel.set_document(document)
    panel.step_selected.connect(lambda step: viewer.mark_span(step.chunk.start, step.chunk.end))
    panel.passage_requested.connect(viewer.mark_span)
    panel.resize(420, 800)
    panel.show()
    return panel, viewer


def feed(panel: TimelinePanel, document, events: Iterable[object]) -> str:
    """What MainWindow._on_event does with each event for the timeline; the end status."""
    status = ""
    for event in events:
        if isinstance(event, RunStarted):
            panel.start(event.chunks, document.page_count, event.mode)
            panel.set_running(True)
        elif isinstance(event, StepStarted):
            panel.step_started(event.chunk)
        elif isinstance(event, TokenStreamed) and event.step >= 0:
            panel.token(event.text, event.thinking)
        elif isinstance(event, StepFinished):
            panel.add_step(event.step, event.memory_diff, event.eta_s)
        elif isinstance(event, RunFinished | RunCancelled | RunFailed):
            status = {RunFinished: "finished", RunCancelled: "cancelled"}.get(type(event), "failed")
            panel.finish(status)
    return status


def selected_text(viewer: DocumentViewer) -> str:
    """The text highlighted in the Text tab, without its page markers, spaces collapsed."""
    (selection,) = viewer.text.extraSelections()
    return " ".join(re.sub(r"--- page \d+ ---", " ", selection.cursor.selectedText()).split())
