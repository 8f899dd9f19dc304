"""What a headless run prints: the transcript of its events (each chunk's memory and
plan, then the answer), its exit code, and the one-line progress of planning and of
loading the model on stderr."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TextIO

from app.agent.events import (
    AnswerStarted,
    DatabaseWaiting,
    Event,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    TokenStreamed,
)

EXIT_CANCELLED = 130


class Printer:
    """Prints events as a readable transcript: each chunk's memory and plan, the answer."""

    def __init__(
        self, out: TextIO, stream_tokens: bool, several: bool = False, kept: bool = True
    ) -> None:
        self.out = out
        self.stream_tokens = stream_tokens
        self.several = several  # several runs interleave: tag lines with the run id
        self.kept = kept  # False: an unsaved run (protected document), nothing to resume

    def __call__(self, event: Event) -> None:
        tag = f"[run {getattr(event, 'run_id', '?')}] " if self.several else ""

        def w(text: str) -> None:
            self.out.write(text.replace("== ", f"== {tag}", 1) if tag else text)

        if isinstance(event, RunStarted):
            w(f"Run {event.run_id}: {event.mode.value.replace('_', ' ')} ({event.mode_reason}).\n")
            w(f"Question: {event.q_core}\n")
            if event.q_inst:
                w(f"Format: {event.q_inst}\n")
            if event.resumed_from:
                w(f"Resuming after step {event.resumed_from} of {len(event.chunks)}.\n")
        elif isinstance(event, StepStarted):
            c = event.chunk
            w(
                f"\n== Step {c.index + 1}/{event.total}: pages {c.page_first}-{c.page_last}, "
                f"{c.tokens:,} tokens ==\n"
            )
        elif isinstance(event, TokenStreamed) and self.stream_tokens:
            w(event.text)
        elif isinstance(event, StepFinished):
            step, s = event.step, event.step.stats
            if self.stream_tokens:
                w("\n")
            w(f"Memory:\n{step.memory}\nPlan:\n{step.plan}\n")
            eta = f", about {event.eta_s:.0f} s left" if event.eta_s is not None else ""
            w(
                f"({s.prompt_tokens:,} prompt + {s.completion_tokens:,} generated tokens, "
                f"{s.wall_ms / 1000:.1f} s{eta})\n"
            )
            for note in s.notes:
                w(f"Note: {note}\n")
        elif isinstance(event, AnswerStarted):
            w("\n== Answer ==\n")
        elif isinstance(event, RunFinished):
            if not self.stream_tokens:
                w(event.answer.text + "\n")
            else:
                w("\n")
        elif isinstance(event, DatabaseWaiting):
            w(
                f"Waiting for the database: {event.reason} {event.what.capitalize()} is kept "
                f"in memory; retrying ({event.waited_s:.0f} s of up to "
                f"{event.limit_s:.0f} s)...\n"
            )
        elif isinstance(event, RunCancelled) and not event.run_id:
            w("\nCancelled before the run started; nothing was stored.\n")
        elif isinstance(event, RunCancelled) and not self.kept:
            w(f"\nCancelled after {event.steps_done} finished steps (not saved).\n")
        elif isinstance(event, RunCancelled):
            w(
                f"\nCancelled after {event.steps_done} finished steps; they are saved. "
                f"Resume with: python -m app resume {event.run_id}\n"
            )
        elif isinstance(event, RunFailed) and not event.run_id:
            w(f"\nFailed: {event.message}\n")
        elif isinstance(event, RunFailed):
            w(f"\nRun {event.run_id} failed: {event.message}\n")
        self.out.flush()


def drive(events: Iterator[Event], printer: Printer) -> int:
    """Print every event; the exit code: 130 after a cancel, else the first failure's own
    code (database 5, server 6... see app/errors.py; 1 for a bug), else 0."""
    code = 0
    for event in events:
        printer(event)
        if isinstance(event, RunCancelled):
            code = EXIT_CANCELLED
        elif isinstance(event, RunFailed) and code == 0:
            code = event.exit_code or 1
    return code


# Below this, cutting a document into chunks takes under a second: nothing to show.
PLANNING_PROGRESS_CHARS = 2_000_000


class PlanningProgress:
    """Tokenizing a long document into chunks (a 50 MB text takes a minute): one stderr
    line, rewritten in place."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = done * 100 // max(total, 1)
        if percent != self.shown:
            self.shown = percent
            end = "\n" if done >= total else ""
            self.out.write(f"\rPlanning chunks: {percent}% of {total / 1e6:.1f} M characters{end}")
            self.out.flush()


class LoadProgress:
    """llama.cpp's load progress as one stderr line, rewritten in place."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.shown = -1

    def __call__(self, fraction: float) -> None:
        percent = int(fraction * 100)
        if percent != self.shown and (percent - self.shown >= 5 or percent == 100):
            self.shown = percent
            self.out.write(f"\rLoading the model: {percent}%" + ("\n" if percent == 100 else ""))
            self.out.flush()
