"""A step's memory with its evidence: each line that traces to a passage of the document
is a link that highlights the passage in the viewer; lines that trace to nothing are
marked as the model's own inference. The plan, what changed and the notes follow;
thinking is collapsed behind a link and never mixed into the memory.

Everything the model or the document wrote goes through html.escape before it reaches
the rich-text widget: a memory line that says ``<img src=...>`` is shown as text."""

from __future__ import annotations

import html

from PySide6.QtCore import QUrl, Signal
from PySide6.QtWidgets import QTextBrowser, QWidget

from app.agent.events import StepRecord
from app.documents.model import Document
from app.evidence.provenance import LineTrace, trace_lines
from app.gui.memory_text import (
    Partial,
    memory_lines,
    plan_changes,
    problems_in_words,
    where_read,
)
from app.records import Evidence
from app.units import human_duration

INFERENCE = "#b0761a"
NEW = "#2e8b57"
GONE = "#c0392b"


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def memory_block(
    traces: list[LineTrace], previous: set[str], document: Document | None = None
) -> str:
    """Memory lines; a traced one links to its passage, labelled "p. 5" or, in a
    collection, by its document and that document's own page ("3-audit, p. 2")."""
    rows = []
    for n, trace in enumerate(traces):
        line = esc(trace.line)
        mark = (
            f"<span style='color:{NEW}' title='new in this step'>+</span> "
            if previous and trace.line.strip() not in previous
            else "&nbsp;&nbsp; "
        )
        if trace.evidence is not None:
            ev = trace.evidence
            body = (
                f"<a href='ev:{n}' title='{esc(ev.quote[:200])}'>{line}</a>"
                f" <span style='color:gray'>{esc(_where(ev, document))}</span>"
            )
        elif trace.traceable:
            body = f"{line} <i style='color:{INFERENCE}'>— model's inference (no passage found)</i>"
        else:
            body = line
        rows.append(f"<p style='margin:2px 0'>{mark}{body}</p>")
    return "".join(rows) or "<p style='color:gray'>(empty)</p>"


def _where(ev: Evidence, document: Document | None) -> str:
    if document is not None and document.members:
        return document.cite(ev.char_start, ev.char_end)
    return f"p. {ev.page}"


def plan_block(plan: str, previous_plan: str) -> str:
    marked, dropped = plan_changes(previous_plan, plan)
    rows = [
        f"<li>{esc(item)}" + (f" <b style='color:{NEW}'>new</b>" if new else "") + "</li>"
        for item, new in marked
    ]
    rows += [f"<li style='color:{GONE}'><s>{esc(item)}</s> dropped</li>" for item in dropped]
    return "<ul style='margin-top:0'>" + "".join(rows) + "</ul>" if rows else "<p>(no plan)</p>"


def diff_block(diff: str) -> str:
    lines = []
    for line in diff.splitlines():
        color = NEW if line.startswith("+") else GONE
        lines.append(f"<span style='color:{color}'>{esc(line)}</span>")
    return "<pre style='white-space:pre-wrap'>" + "\n".join(lines) + "</pre>"


def step_html(
    steps: list[StepRecord],
    index: int,
    total: int,
    diff: str,
    traces: list[LineTrace],
    is_demo: bool = False,
    show_thinking: bool = False,
    document: Document | None = None,
) -> str:
    step = steps[index]
    previous = steps[index - 1] if index > 0 else None
    c = step.chunk
    parts = [
        f"<p><b>Step {c.index + 1} of {total}</b> · {esc(where_read(c, document))} · "
        f"{step.stats.prompt_tokens:,} + {step.stats.completion_tokens:,} tokens · "
        f"{human_duration(step.stats.wall_ms / 1000)}</p>"
    ]
    problems = problems_in_words(step, is_demo)
    if problems:
        parts.append(
            "<table width='100%' cellpadding='6' style='background-color:rgba(224,165,38,60)'>"
            "<tr><td>⚠ " + "<br>".join(esc(p) for p in problems) + "</td></tr></table>"
        )
    linked = sum(1 for t in traces if t.evidence is not None)
    inferred = sum(1 for t in traces if t.evidence is None and t.traceable)
    parts.append(
        f"<h4 style='margin-bottom:2px'>Memory</h4><p style='color:gray;margin-top:0'>"
        f"{linked} lines traced to a passage (click one to see it), {inferred} the model's "
        "own inference</p>"
    )
    prev_lines = {line.strip() for line in memory_lines(previous.memory)} if previous else set()
    parts.append(memory_block(traces, prev_lines, document))
    parts.append("<h4 style='margin-bottom:2px'>Plan</h4>")
    parts.append(plan_block(step.plan, previous.plan if previous else ""))
    if diff:
        parts.append("<h4>What changed</h4>" + diff_block(diff))
    other_notes = [n for n in step.stats.notes if not n.startswith("malformed:")]
    for note in other_notes:
        parts.append(f"<p><b>Note:</b> {esc(note)}</p>")
    if step.stats.thinking:
        n_words = len(step.stats.thinking.split())
        if show_thinking:
            parts.append(
                f"<p><a href='toggle:thinking'>▾ Hide thinking</a></p><pre "
                f"style='white-space:pre-wrap;color:gray'>{esc(step.stats.thinking)}</pre>"
            )
        else:
            parts.append(
                f"<p><a href='toggle:thinking'>▸ Show thinking ({n_words:,} words)</a></p>"
            )
    stats = step.stats
    parts.append(
        f"<p style='color:gray'>Read characters {c.start:,}–{c.end:,} ({c.tokens:,} tokens). "
        f"Prompt {stats.prompt_tokens:,} tokens in {stats.prompt_ms / 1000:.1f} s, generated "
        f"{stats.completion_tokens:,} in {stats.generation_ms / 1000:.1f} s; "
        f"stop: {esc(stats.stop_reason)}.</p>"
    )
    return "".join(parts)


def live_html(header: str, partial: Partial, thinking_words: int, raw: str = "") -> str:
    parts = [f"<p><b>{esc(header)}</b></p>"] if header else []
    if thinking_words:
        parts.append(f"<p style='color:gray'>thinking: {thinking_words:,} words (hidden)</p>")
    if partial.memory:
        parts.append(
            "<p style='margin-bottom:0'><b>Memory</b></p><pre style='white-space:pre-wrap;"
            f"margin-top:0'>{esc(partial.memory)}</pre>"
        )
    if not partial.memory and not partial.plan and partial.phase == "before" and raw.strip():
        # No <memory> tag yet (or never, from a model that cannot follow the format):
        # the reply so far, as text.
        parts.append(
            "<p style='margin-bottom:0'><b>Reply so far</b> <span style='color:gray'>(no "
            "&lt;memory&gt; block yet)</span></p><pre style='white-space:pre-wrap;"
            f"margin-top:0'>{esc(raw[-1500:])}</pre>"
        )
    if partial.plan:
        parts.append(
            "<p style='margin-bottom:0'><b>Plan</b></p><pre style='white-space:pre-wrap;"
            f"margin-top:0'>{esc(partial.plan)}</pre>"
        )
    return "".join(parts)


class MemoryView(QTextBrowser):
    """The selected step: memory lines as evidence links, plan, changes, notes."""

    passage_clicked = Signal(int, int)  # char start, end in Document.text
    line_clicked = Signal(object)  # the LineTrace clicked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Step details")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self._anchor)
        self.traces: list[LineTrace] = []
        self.show_thinking = False
        self._args: tuple[list[StepRecord], int, int, str, bool] | None = None
        self._document: Document | None = None  # the step's document, for labels
        self._cache: dict[tuple[int, int], list[LineTrace]] = {}

    def forget(self) -> None:
        self._cache.clear()
        self._args = None
        self.traces = []

    def show_step(
        self,
        steps: list[StepRecord],
        index: int,
        total: int,
        diff: str,
        document: Document | None,
        is_demo: bool = False,
    ) -> None:
        key = (index, hash(steps[index].memory))
        if key not in self._cache:
            if document is not None:
                traces = trace_lines(document, steps, index)
            else:
                lines = memory_lines(steps[index].memory)
                traces = [LineTrace(line, None, traceable=False) for line in lines]
            self._cache[key] = traces
        self.traces = self._cache[key]
        self._args = (steps, index, total, diff, is_demo)
        self._document = document
        self._render()

    def _render(self) -> None:
        if self._args is None:
            return
        steps, index, total, diff, is_demo = self._args
        bar = self.verticalScrollBar().value()
        self.setHtml(
            step_html(
                steps,
                index,
                total,
                diff,
                self.traces,
                is_demo,
                self.show_thinking,
                self._document,
            )
        )
        self.verticalScrollBar().setValue(bar)

    def open_line(self, n: int) -> None:
        """What clicking the n-th memory line does (also for keyboard and tests)."""
        if 0 <= n < len(self.traces):
            trace = self.traces[n]
            self.line_clicked.emit(trace)
            if trace.evidence is not None:
                self.passage_clicked.emit(trace.evidence.char_start, trace.evidence.char_end)

    def _anchor(self, url: QUrl) -> None:
        target = url.toString()
        if target.startswith("ev:"):
            self.open_line(int(target[3:]))
        elif target == "toggle:thinking":
            self.show_thinking = not self.show_thinking
            self._render()
