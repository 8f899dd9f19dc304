"""Where each fact of the final memory came from.

For every fact (a line or sentence of the final memory) this finds the step that first
brought it in and the later steps that changed it, then locates the supporting passage
in the text that step read: a passage the model quoted verbatim when it did, otherwise
the sentence with the highest word overlap (the model paraphrased). The passage's
character span maps to pages and rectangles through the Document's page map, so the
viewer can highlight it. Confidence is 1.0 for a verbatim quote, the overlap otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.agent.events import StepRecord
from app.documents.model import Document, Rect

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'.,%-]*[A-Za-z0-9%]|[A-Za-z0-9]")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
# In the source, single newlines are wrapped lines inside a sentence, not boundaries.
_SOURCE_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n\s*\n")
_QUOTE = re.compile(r"[\"“]([^\"”]{12,300})[\"”]")
_STOP_WORDS = (
    "the a an and or of to in on at for by with is are was were be been it its this that "
    "as from which who what has have had not no but into than then there their they"
)
_STOP = frozenset(_STOP_WORDS.split(" "))
MIN_CONFIDENCE = 0.34  # below this overlap, the fact is reported as unsupported


def words(text: str) -> set[str]:
    return {w.lower().strip(".,") for w in _WORD.findall(text)} - _STOP


@dataclass(frozen=True)
class Evidence:
    claim: str
    quote: str
    step_first: int  # index of the step that first brought the fact in (-1: unknown)
    step_last_changed: int
    char_start: int
    char_end: int
    page: int
    rects: tuple[tuple[int, Rect], ...]
    confidence: float

    @property
    def supported(self) -> bool:
        return self.confidence >= MIN_CONFIDENCE and self.char_end > self.char_start


def split_facts(memory: str) -> list[str]:
    """A memory's facts (or an answer's claims): its sentences, line by line."""
    facts: list[str] = []
    for line in memory.splitlines():
        line = line.strip(" -*•\t")
        if not line:
            continue
        parts = _SENTENCE_END.split(line)
        facts.extend(p.strip() for p in parts if len(words(p)) >= 2)
    return facts


def overlap(claim_words: set[str], passage_words: set[str]) -> float:
    """Share of the claim's words found in the passage (numbers and names weigh most
    because stop words are dropped)."""
    if not claim_words:
        return 0.0
    return len(claim_words & passage_words) / len(claim_words)


def sentences(text: str, base: int) -> list[tuple[int, int]]:
    """Character spans (absolute) of the sentences in ``text``, which starts at ``base``."""
    spans, start = [], 0
    for match in _SOURCE_SENTENCE_END.finditer(text):
        if match.start() > start:
            spans.append((base + start, base + match.start()))
        start = match.end()
    if start < len(text):
        spans.append((base + start, base + len(text)))
    return spans


def history_of(fact: str, steps: list[StepRecord]) -> tuple[int, int]:
    """(first step whose memory holds the fact, last step that changed it)."""
    fact_words = words(fact)
    first = last = -1
    previous = 0.0
    for step in steps:
        score = overlap(fact_words, words(step.memory))
        if first == -1 and score >= 0.6:
            first = last = step.chunk.index
        elif first != -1 and abs(score - previous) > 0.05:
            last = step.chunk.index
        previous = score
    return first, last


def locate(claim: str, document: Document, start: int, end: int) -> tuple[int, int, float]:
    """Best supporting span for ``claim`` inside ``document.text[start:end]``."""
    text = document.text[start:end]
    for quoted in _QUOTE.findall(claim):
        at = text.find(quoted)
        if at != -1:
            return start + at, start + at + len(quoted), 1.0
    claim_words = words(claim)
    best = (start, start, 0.0)
    spans = sentences(text, start)
    for i, (s, e) in enumerate(spans):
        # a fact often spans two sentences of the source: score pairs too
        for s2, e2 in ((s, e), (s, spans[i + 1][1]) if i + 1 < len(spans) else (s, e)):
            score = overlap(claim_words, words(document.text[s2:e2]))
            if score > best[2] or (score == best[2] and e2 - s2 < best[1] - best[0]):
                best = (s2, e2, score)
    return best


def trace_memory(document: Document, steps: list[StepRecord]) -> list[Evidence]:
    """Evidence for every fact of the final memory."""
    if not steps:
        return []
    found: list[Evidence] = []
    for fact in split_facts(steps[-1].memory):
        first, last = history_of(fact, steps)
        candidates = [s for s in steps if s.chunk.index == first] if first >= 0 else steps
        best: tuple[int, int, float] = (0, 0, 0.0)
        for step in candidates:
            span = locate(fact, document, step.chunk.start, step.chunk.end)
            if span[2] > best[2]:
                best = span
        found.append(_evidence(document, fact, first, last, best))
    return found


def trace_text(
    document: Document, text: str, start: int = 0, end: int | None = None
) -> list[Evidence]:
    """Evidence for each sentence of an answer given straight from the document
    (single-pass mode): the whole text is the search space."""
    end = len(document.text) if end is None else end
    return [
        _evidence(document, claim, -1, -1, locate(claim, document, start, end))
        for claim in split_facts(text)
    ]


def _evidence(
    document: Document, claim: str, first: int, last: int, span: tuple[int, int, float]
) -> Evidence:
    s, e, confidence = span
    return Evidence(
        claim=claim,
        quote=document.text[s:e].strip(),
        step_first=first,
        step_last_changed=last,
        char_start=s,
        char_end=e,
        page=document.page_of(s),
        rects=tuple(document.rects_for(s, e)),
        confidence=round(confidence, 3),
    )


def cite_answer(answer: str, evidence: list[Evidence]) -> list[tuple[str, list[Evidence]]]:
    """Each sentence of the answer with the supported evidence that backs it (empty list:
    the claim has no located support and is shown as unsupported)."""
    cited = []
    for claim in split_facts(answer) or ([answer.strip()] if answer.strip() else []):
        claim_words = words(claim)
        backing = [
            ev
            for ev in evidence
            if ev.supported and overlap(claim_words, words(ev.claim + " " + ev.quote)) >= 0.5
        ]
        backing.sort(key=lambda ev: -overlap(claim_words, words(ev.claim + " " + ev.quote)))
        cited.append((claim, backing[:3]))
    return cited


def evidence_from_row(row: dict[str, Any]) -> Evidence:
    """An Evidence back from a stored row (Store.list_evidence)."""
    return Evidence(
        row["claim"],
        row["quote"],
        row["step_first"],
        row["step_last_changed"],
        row["char_start"],
        row["char_end"],
        row["page"],
        tuple(row["rects"]),
        row["confidence"],
    )
