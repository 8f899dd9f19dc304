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

from app.agent import prompts
from app.documents.model import Document
from app.records import Evidence, StepRecord

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
ECHO_SHARE = 0.75  # an answer sentence this much made of the prompt's words is an echo


_NUMBER = re.compile(r"\d[\d,.]*\d|\d")


def numbers(text: str) -> set[str]:
    """The numbers a text states, thousands separators dropped: "1,140" == "1140"."""
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def words(text: str) -> set[str]:
    return {w.lower().strip(".,") for w in _WORD.findall(text)} - _STOP


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


# The prompts' own sentences: an answer sentence made of these is the model echoing its
# instructions, not a claim about the document.
_PROMPT_WORDS = words(
    " ".join((prompts.MEMORY_UPDATE, prompts.FINAL_ANSWER, prompts.SINGLE_PASS))
    .replace("{question}", "")
    .replace("{memory}", "")
    .replace("{chunk}", "")
    .replace("{document}", "")
) | {"problem", "memory", "plan", "section", "answer", "previous", "no"}
_MARKUP = re.compile(r"</?(problem|memory|plan|section|previous_memory|text)>", re.IGNORECASE)


def is_prompt_echo(claim: str, question: str = "") -> bool:
    """True when ``claim`` only repeats the prompt (its template, or the question) and so
    says nothing about the document: such a sentence is not shown as a cited claim."""
    text = _MARKUP.sub(" ", claim)
    claim_words = {_stem(w) for w in words(text)}
    if not claim_words:
        return bool(_MARKUP.search(claim)) or not text.strip()
    echo = {_stem(w) for w in _PROMPT_WORDS | words(question)}
    return overlap(claim_words, echo) >= ECHO_SHARE


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def cite_answer(
    answer: str, evidence: list[Evidence], question: str = ""
) -> list[tuple[str, list[Evidence]]]:
    """Each sentence of the answer with the supported evidence that backs it (empty list:
    the claim has no located support and is shown as unsupported). Sentences that only
    echo the prompt are left out, and a page is cited once per claim (the best passage
    on it)."""
    cited = []
    for claim in split_facts(answer) or ([answer.strip()] if answer.strip() else []):
        if is_prompt_echo(claim, question):
            continue
        claim_words = words(claim)
        backing = [
            ev
            for ev in evidence
            if ev.supported and overlap(claim_words, words(ev.claim + " " + ev.quote)) >= 0.5
        ]
        backing.sort(key=lambda ev: -overlap(claim_words, words(ev.claim + " " + ev.quote)))
        pages: set[int] = set()
        unique = []
        for ev in backing:
            if ev.page not in pages:
                pages.add(ev.page)
                unique.append(ev)
        cited.append((claim, unique[:3]))
    return cited


@dataclass(frozen=True)
class LineTrace:
    """One line of a step's memory and the passage it came from (None: it traces to no
    passage the model had read by then, so it is the model's own inference)."""

    line: str
    evidence: Evidence | None
    traceable: bool = True  # False for lines with nothing to trace (a heading, "none yet")


def trace_lines(document: Document, steps: list[StepRecord], index: int) -> list[LineTrace]:
    """Every line of the memory written at ``steps[index]``, each traced to a passage in
    the text read up to that step: first in the chunk of the step that brought the line
    in (the earliest memory holding it), then in this step's own chunk. Cost stays at two
    chunks a line, whatever the number of steps."""
    if not 0 <= index < len(steps):
        return []
    seen = steps[: index + 1]
    memories = [words(s.memory) for s in seen]
    traced: list[LineTrace] = []
    for raw in steps[index].memory.splitlines():
        line = raw.strip()
        if not line:
            continue
        fact = line.strip(" -*•\t")
        fact_words = words(fact)
        if len(fact_words) < 2 or fact.lower().startswith(prompts.NO_PREVIOUS_MEMORY.lower()):
            traced.append(LineTrace(line, None, traceable=False))
            continue
        first = next((i for i, m in enumerate(memories) if overlap(fact_words, m) >= 0.6), index)
        best: tuple[int, int, float] = (0, 0, 0.0)
        for i in dict.fromkeys((first, index)):
            chunk = seen[i].chunk
            span = locate(fact, document, chunk.start, chunk.end)
            if span[2] > best[2]:
                best = span
        evidence = _evidence(document, fact, seen[first].chunk.index, -1, best)
        # A passage that matches the words but not the numbers does not back the line
        # ("treats 201 million litres" against "treats 41 million litres").
        backed = evidence.supported and numbers(fact) <= numbers(evidence.quote)
        traced.append(LineTrace(line, evidence if backed else None))
    return traced


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
