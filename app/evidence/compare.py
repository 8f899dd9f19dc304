"""Two runs of the same question side by side: what differed (model, settings, mode),
whether the answers agree, and the two memory timelines aligned by where in the document
each step read. Used by ``python -m app compare`` and the window's Compare dialog."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from app.errors import UserError
from app.evidence.report import coverage
from app.records import RunRecord, StepRecord


class RunReader(Protocol):
    """What a comparison reads of a store (app.store.database.Store has it)."""

    def get_run(self, run_id: int) -> RunRecord: ...

    def get_document_row(self, document_id: int) -> dict[str, Any]: ...


_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_ARTICLES = {"a", "an", "the"}


def normalised_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _ARTICLES]


def similarity(a: str, b: str) -> float:
    """Jaccard overlap of the two texts' words: 1.0 same words, 0.0 nothing shared."""
    left, right = set(normalised_words(a)), set(normalised_words(b))
    if not left and not right:
        return 1.0
    return len(left & right) / len(left | right)


@dataclass(frozen=True)
class Difference:
    label: str
    left: str
    right: str


@dataclass(frozen=True)
class StepRow:
    """One row of the aligned timelines; a side is None where that run had no step here."""

    left: StepRecord | None
    right: StepRecord | None

    @property
    def same_span(self) -> bool:
        return bool(
            self.left
            and self.right
            and (self.left.chunk.start, self.left.chunk.end)
            == (self.right.chunk.start, self.right.chunk.end)
        )

    @property
    def memory_similarity(self) -> float | None:
        if self.left is None or self.right is None:
            return None
        return similarity(self.left.memory, self.right.memory)


@dataclass(frozen=True)
class Comparison:
    left: RunRecord
    right: RunRecord
    document: dict[str, Any]
    differences: list[Difference]
    rows: list[StepRow]

    @property
    def answers(self) -> tuple[str, str]:
        return _answer_text(self.left), _answer_text(self.right)

    @property
    def answers_agree(self) -> bool:
        a, b = self.answers
        return bool(a and b) and normalised_words(a) == normalised_words(b)

    @property
    def answer_similarity(self) -> float:
        return similarity(*self.answers)

    def coverage(self, side: RunRecord) -> dict[str, Any]:
        return coverage(side, self.document)


def _answer_text(run: RunRecord) -> str:
    return run.answer.text if run.answer else ""


def _fmt(value: Any) -> str:
    return "-" if value in (None, "") else str(value)


def differences(left: RunRecord, right: RunRecord) -> list[Difference]:
    """Every recorded input that differs between the runs, model first."""
    pairs = [
        ("Question", left.question, right.question),
        ("Model", left.model_name, right.model_name),
        ("Model file SHA-256", left.model_sha256[:16], right.model_sha256[:16]),
        ("Backend", left.model_backend, right.model_backend),
        ("Mode", left.mode.replace("_", " "), right.mode.replace("_", " ")),
        ("Context window", left.n_ctx, right.n_ctx),
        ("Chunks", len(left.chunks), len(right.chunks)),
        ("Status", left.status, right.status),
    ]
    for key in sorted(set(left.settings) | set(right.settings)):
        pairs.append((f"Setting {key}", left.settings.get(key), right.settings.get(key)))
    return [Difference(label, _fmt(a), _fmt(b)) for label, a, b in pairs if _fmt(a) != _fmt(b)]


def align_steps(left: list[StepRecord], right: list[StepRecord]) -> list[StepRow]:
    """Pairs steps that read the same part of the document. With equal chunking that is
    index by index; with different chunk sizes each step is paired with the other run's
    step covering the most of its span, so a row always compares the same pages."""
    rows: list[StepRow] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            rows.append(StepRow(None, right[j]))
            j += 1
        elif j >= len(right):
            rows.append(StepRow(left[i], None))
            i += 1
        else:
            a, b = left[i], right[j]
            rows.append(StepRow(a, b))
            # Advance whichever step ends first; both when they end together.
            if a.chunk.end <= b.chunk.end:
                i += 1
            if b.chunk.end <= a.chunk.end:
                j += 1
    return rows


def compare_runs(store: RunReader, left_id: int, right_id: int) -> Comparison:
    if left_id == right_id:
        raise UserError(
            f"Run {left_id} compared with itself.", hint="Pick two different runs to compare."
        )
    left, right = store.get_run(left_id), store.get_run(right_id)
    if left.document_id != right.document_id:
        raise UserError(
            f"Runs {left_id} and {right_id} read different documents.",
            hint="Compare two runs of the same document (another model or other settings).",
        )
    document = store.get_document_row(left.document_id)
    return Comparison(
        left, right, document, differences(left, right), align_steps(left.steps, right.steps)
    )


def _pages(step: StepRecord | None) -> str:
    if step is None:
        return "-"
    first, last = step.chunk.page_first, step.chunk.page_last
    return f"p. {first}" if first == last else f"pp. {first}-{last}"


def _cell(text: str, limit: int = 300) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_markdown(comparison: Comparison) -> str:
    left, right = comparison.left, comparison.right
    answer_a, answer_b = comparison.answers
    verdict = (
        "The answers agree."
        if comparison.answers_agree
        else f"The answers differ (word overlap {comparison.answer_similarity:.0%})."
    )
    cov = [comparison.coverage(r) for r in (left, right)]
    lines = [
        f"# Run {left.id} vs run {right.id}",
        "",
        f"*Document:* {comparison.document['title']}  ",
        f"*Question:* {left.question}",
        "",
        "## What differed",
        "",
        f"| | Run {left.id} | Run {right.id} |",
        "|---|---|---|",
    ]
    lines += [f"| {d.label} | {_cell(d.left)} | {_cell(d.right)} |" for d in comparison.differences]
    if not comparison.differences:
        lines.append("| (nothing: same model, settings and mode) | | |")
    lines += [
        "",
        "## Answers",
        "",
        verdict,
        "",
        f"**Run {left.id}** ({left.model_name}, read {cov[0]['pages_read']} of "
        f"{cov[0]['pages_total']} pages):",
        "",
        answer_a or "_No answer: the run did not finish._",
        "",
        f"**Run {right.id}** ({right.model_name}, read {cov[1]['pages_read']} of "
        f"{cov[1]['pages_total']} pages):",
        "",
        answer_b or "_No answer: the run did not finish._",
        "",
        "## Timelines",
        "",
        f"| Pages | Run {left.id} memory | Pages | Run {right.id} memory | Memory overlap |",
        "|---|---|---|---|---|",
    ]
    for row in comparison.rows:
        sim = row.memory_similarity
        lines.append(
            f"| {_pages(row.left)} | {_cell(row.left.memory) if row.left else '-'} "
            f"| {_pages(row.right)} | {_cell(row.right.memory) if row.right else '-'} "
            f"| {'-' if sim is None else f'{sim:.0%}'} |"
        )
    return "\n".join(lines) + "\n"
