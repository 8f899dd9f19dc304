"""The memory timeline's words (no Qt): a step's line in the list, what a collection's
run has read, a run's status, and after a stop which steps are kept."""

from __future__ import annotations

from app.agent.events import Chunk, StepRecord
from app.documents.model import Document
from app.gui.memory_text import page_words, problems_in_words, where_read
from app.records import RunStatus
from app.units import human_duration

STATUS_LABELS: dict[str, str] = {
    RunStatus.FINISHED: "Done",
    RunStatus.CANCELLED: "Cancelled",
    RunStatus.FAILED: "Failed",
    RunStatus.INTERRUPTED: "Interrupted",
    RunStatus.RUNNING: "Running",
}
# Stopped before its answer: what was read is kept, and a resume reads on.
STOPPED = (RunStatus.CANCELLED, RunStatus.FAILED, RunStatus.INTERRUPTED)


def documents_read(document: Document, pages_read: set[int]) -> str:
    """Coverage of a collection: "read 2 of 3 documents, 14 of 20 pages"."""
    done = sum(
        1
        for m in document.members
        if all(p in pages_read for p in range(m.first_page, m.first_page + m.page_count))
    )
    return (
        f"Read {done} of {len(document.members)} documents, "
        f"{len(pages_read):,} of {document.page_count:,} pages"
    )


def step_summary(
    step: StepRecord,
    total: int,
    is_demo: bool = False,
    diff: str = "",
    document: Document | None = None,
) -> str:
    """The step's line in the list: pages, tokens, time, then what it added to the memory
    (its first new line) or, when it went wrong, what went wrong."""
    c, stats = step.chunk, step.stats
    trouble = problems_in_words(step, is_demo)
    flags = " ⚠" if trouble else ""
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+")]
    added = [line for line in added if line]
    if added:
        first_line = "+ " + added[0][:80]
    elif diff:
        first_line = "(lines removed only)"
    elif step.index > 0:
        first_line = "(memory unchanged)"
    else:
        first_line = (step.memory.strip().splitlines() or [""])[0][:80]
    return (
        f"Step {c.index + 1}/{total} · {where_read(c, document)} · "
        f"{stats.prompt_tokens:,}+{stats.completion_tokens:,} tok · "
        f"{human_duration(stats.wall_ms / 1000)}{flags}\n" + (trouble[0] if trouble else first_line)
    )


def single_pass_words(pages: int) -> str:
    return f"Single pass: read all {pages} page{'s' if pages != 1 else ''} in one prompt"


def _step_range(steps: list[int]) -> str:
    if not steps:
        return "none"
    if len(steps) == 1:
        return f"step {steps[0]}"
    if steps == list(range(steps[0], steps[-1] + 1)):
        return f"steps {steps[0]}–{steps[-1]}"
    return "steps " + ", ".join(map(str, steps))


def kept_words(label: str, records: list[StepRecord], total: int, stopped: Chunk | None) -> str:
    """After a stop: the steps kept, the one stopped mid-way, and where a resume reads on."""
    kept = [r.chunk.index + 1 for r in records]
    if kept:
        first = records[0].chunk.page_first
        last = records[-1].chunk.page_last
        said = f"{label}. Kept: {_step_range(kept)} ({page_words(first, last)}), saved."
    else:
        said = f"{label} before any step finished: nothing to keep."
    if stopped is not None:
        said += (
            f" Not kept: step {stopped.index + 1} "
            f"({page_words(stopped.page_first, stopped.page_last)}) was stopped mid-way; "
            "what it had written is discarded."
        )
    if len(kept) < total:
        nxt = stopped.index + 1 if stopped is not None else len(kept) + 1
        said += f" Resume reads on from step {nxt}."
    return said
