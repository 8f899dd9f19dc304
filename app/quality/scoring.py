"""Scoring short answers: SQuAD-style exact match, a contains-match, answer extraction.

``normalize`` is SQuAD v1.1's ``normalize_answer`` (lower case, drop punctuation, drop
the articles a/an/the, collapse white space) plus one addition for the counting
questions: the number words zero to twenty become digits, so "three" matches "3".
"""

from __future__ import annotations

import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation + "“”‘’«»–—…")
_NUMBER_WORDS = {
    word: str(i)
    for i, word in enumerate(
        str.split(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
}
# "Therefore, the answer is X" (the single-pass template), "Answer: X", "answer is: X".
_ANSWER_IS = re.compile(r"(?:the\s+)?answer\s*(?:is|:)\s*:?", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\(?insert answer here\)?", re.IGNORECASE)


def normalize(text: str) -> str:
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    words = [_NUMBER_WORDS.get(w, w) for w in text.split()]
    return " ".join(words)


def extract_answer(text: str) -> str:
    """The short answer inside a model's reply: what follows the last "answer is" (or
    "Answer:"), else the first non-empty line; cut at the end of its first sentence and
    stripped of quotes and Markdown emphasis."""
    text = _PLACEHOLDER.sub("", text or "").strip()
    matches = list(_ANSWER_IS.finditer(text))
    if matches and text[matches[-1].end() :].strip():
        text = text[matches[-1].end() :]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    answer = lines[0]
    cut = re.search(r"[.!?](\s|$)", answer)
    if cut:
        answer = answer[: cut.start()]
    answer = answer.strip().strip("*_`\"'“”‘’ ").rstrip(".,;:").strip()
    if answer.startswith("(") and answer.endswith(")"):  # "(Lisbon)", echoing the template
        answer = answer[1:-1].strip()
    return answer


def exact_match(predicted: str, gold: str) -> bool:
    return normalize(predicted) == normalize(gold)


def contains_match(reply: str, gold: str) -> bool:
    """The normalised gold answer appears as whole words anywhere in the reply."""
    target = normalize(gold)
    return bool(target) and f" {target} " in f" {normalize(reply)} "
