"""The text every benchmark reads: numbered harbour-log sentences, as long as asked,
the same on every run so that figures compare."""

from __future__ import annotations

SENTENCE = "The harbour authority logged {n} vessels and {m} inspections on pier {p}. "


def synthetic_text(chars: int) -> str:
    parts, i, size = [], 0, 0
    while size < chars:
        paragraph = (
            "".join(SENTENCE.format(n=i + k, m=(i * 7 + k) % 13, p=k % 9) for k in range(6))
            + "\n\n"
        )
        parts.append(paragraph)
        size += len(paragraph)
        i += 1
    return "".join(parts)[:chars]
