"""Plain-text logic behind the memory panel (no Qt): reading a step's output while it is
still being written, what changed between two memories and two plans, and what went
wrong with a malformed step, in words a reader understands."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from app.agent.events import Chunk, StepRecord
from app.documents.model import Document

_TAG = re.compile(r"<(/?)(memory|plan)>", re.IGNORECASE)
_LEAD = re.compile(r"^\s*Updated memory:\s*", re.IGNORECASE)
# What the model is writing right now, as the live view names it.
PHASES = {
    "thinking": "thinking",
    "memory": "writing the memory",
    "plan": "writing the plan",
    "before": "starting",
    "done": "finishing",
}


@dataclass(frozen=True)
class Partial:
    """A step's output so far: the memory and plan blocks as far as they are written."""

    thinking: str
    memory: str
    plan: str
    phase: str  # a key of PHASES


def parse_partial(content: str, thinking: str = "") -> Partial:
    """Read ``<memory>``/``<plan>`` from text that may stop anywhere, even inside a tag.

    ``content`` is the non-thinking text streamed so far (a ``</think>`` in it is honoured
    too: everything before the last one is thinking). The last block of each kind wins,
    as in the parser of finished steps (models sometimes restate the format first)."""
    if "</think>" in content:
        head, _, content = content.rpartition("</think>")
        thinking = thinking + head
    # A tag cut in half at the end ("<mem") is not shown as text.
    cut = content.rfind("<")
    if cut != -1 and ">" not in content[cut:] and len(content) - cut < 10:
        content = content[:cut]
    memory = plan = ""
    current: str | None = None
    pos = 0
    last_closed = ""
    for match in _TAG.finditer(content):
        if current is not None:
            text = content[pos : match.start()]
            if current == "memory":
                memory = text
            else:
                plan = text
        closing, name = match.group(1) == "/", match.group(2).lower()
        if closing:
            current, last_closed = None, name
        else:
            current = name
            if name == "memory":
                memory = ""
            else:
                plan = ""
        pos = match.end()
    if current is not None:
        tail = content[pos:]
        if current == "memory":
            memory = tail
        else:
            plan = tail
    if current is not None:
        phase = current
    elif last_closed == "plan":
        phase = "done"
    elif last_closed == "memory":
        phase = "plan"
    elif thinking and not content.strip():
        phase = "thinking"
    else:
        phase = "before"
    return Partial(thinking, memory.strip("\n"), plan.strip("\n"), phase)


def memory_lines(memory: str) -> list[str]:
    return [line.rstrip() for line in memory.splitlines() if line.strip()]


def churn(before: str, after: str) -> tuple[int, int]:
    """(lines added, lines removed) from one memory to the next."""
    added = removed = 0
    matcher = difflib.SequenceMatcher(a=memory_lines(before), b=memory_lines(after))
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            removed += i2 - i1
        if tag in ("replace", "insert"):
            added += j2 - j1
    return added, removed


def approx_tokens(text: str) -> int:
    """About four characters a token in English prose (the chart only needs the shape)."""
    return (len(text) + 3) // 4


def change_weight(before: str, after: str) -> float:
    """How much the memory changed in a step, 0 (not at all) to 1 (rewritten)."""
    added, removed = churn(before, after)
    size = max(len(memory_lines(before)), len(memory_lines(after)), 1)
    return min(1.0, (added + removed) / (2 * size) + (0.15 if added else 0.0))


def plan_items(plan: str) -> list[str]:
    """The plan's items: its lines, bullets stripped; a one-paragraph plan is split at
    sentence ends so each card line says one thing."""
    items = [line.strip(" -*•\t") for line in plan.splitlines()]
    items = [i for i in items if i]
    if len(items) == 1:
        items = [s.strip() for s in re.split(r"(?<=[.!?;])\s+", items[0]) if s.strip()]
    return items


def _key(item: str) -> str:
    return " ".join(re.findall(r"\w+", item.lower()))


def plan_changes(before: str, after: str) -> tuple[list[tuple[str, bool]], list[str]]:
    """The new plan's items, each with whether it is new since ``before``, and the
    previous plan's items that were dropped."""
    old = {_key(i) for i in plan_items(before)}
    new_items = plan_items(after)
    new_keys = {_key(i) for i in new_items}
    marked = [(item, bool(before.strip()) and _key(item) not in old) for item in new_items]
    dropped = [i for i in plan_items(before) if _key(i) not in new_keys]
    return marked, dropped


def problems_in_words(step: StepRecord, is_demo: bool = False) -> list[str]:
    """What went wrong with a step, said plainly; empty for a well-formed step."""
    said: list[str] = []
    notes = " ".join(step.stats.notes)
    if "memory taken from the whole answer" in notes or (
        step.malformed and "no closed <memory> block" in notes
    ):
        if "memory taken from the whole answer" in notes:
            said.append("The model did not write a <memory> block; its whole reply was kept.")
        else:
            said.append("The model did not close its <memory> block; what it wrote was kept.")
    if "previous plan kept" in notes:
        said.append("It wrote no <plan>, so the previous plan is kept.")
    if step.stats.stop_reason == "length":
        said.append("The reply was cut off at the output limit.")
    elif step.stats.stop_reason == "loop":
        said.append("The model started repeating itself and was stopped.")
    if "the step wrote no memory" in notes:
        said.append("The step wrote nothing, so the previous memory is kept.")
    if said and is_demo and step.malformed:
        said.append(
            "The bundled demo model (135M parameters) cannot follow the memory format; "
            "QwenLong-L1.5 was trained on it and can (Model > Get QwenLong-L1.5…)."
        )
    return said


def page_words(first: int, last: int) -> str:
    """ "page 3" or "pages 3–5"."""
    return f"page {first}" if first == last else f"pages {first}–{last}"


def where_read(chunk: Chunk, document: Document | None) -> str:
    """The pages a step read; in a collection, which documents and their own pages."""
    members = document.members_in(chunk.start, chunk.end) if document is not None else []
    if not members or document is None:
        return page_words(chunk.page_first, chunk.page_last)
    first, last = members[0], members[-1]
    a, b = first.local_page(chunk.page_first), last.local_page(chunk.page_last)
    if first is last:
        return f"{first.title}, {page_words(a, b)}"
    return f"{len(members)} documents: {first.title} p. {a} – {last.title} p. {b}"
