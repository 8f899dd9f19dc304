"""The loop guard: a tail repeated back to back stops the output, ordinary text never."""

from __future__ import annotations

import random

from app.llm.loopguard import RepetitionGuard


def feed(text: str, piece: int = 7) -> bool:
    guard = RepetitionGuard()
    return any(guard.feed(text[i : i + piece]) for i in range(0, len(text), piece))


def test_a_repeating_tail_is_caught():
    assert feed("The memory so far. " + "Clause 4.2 applies to the lessee. " * 12)
    assert feed("x" * 400)  # a one-character period


def test_ordinary_and_short_repeats_are_not():
    rng = random.Random(7)
    words = ["lease", "clause", "tenant", "payment", "notice", "term", "rent", "the", "of"]
    prose = " ".join(rng.choice(words) for _ in range(3000))
    assert not feed(prose)
    assert not feed("ok ok ok ok ")  # four copies but far under 240 characters
    assert not feed("| 2021 | 2022 |\n" * 5)  # 80 characters of a table's rows
