"""Splitting a document into memory-step chunks by model tokens.

Counting every token of a 4M-token document one by one, and mapping each token back to
its characters, is slow in Python. Instead the text is cut into blocks of a few thousand
characters at natural boundaries (paragraph, line, sentence, word), each block is counted
with the model's tokenizer in one call, and blocks are packed greedily into chunks. The
sum of block counts is within a token or two per block of the joint count, which the
budgets' safety margin absorbs. Chunks keep exact character spans and page ranges.
"""

from __future__ import annotations

from collections.abc import Callable

from app.agent.events import Chunk
from app.errors import Cancelled

_BOUNDARIES = ("\n\n", "\n", ". ", " ")


def _cut(text: str, start: int, limit: int) -> int:
    """End of the block that starts at ``start``: the last natural boundary in the
    second half of the window, else a hard cut at ``limit``."""
    end = min(len(text), start + limit)
    if end == len(text):
        return end
    half = start + limit // 2
    for sep in _BOUNDARIES:
        at = text.rfind(sep, half, end)
        if at != -1:
            return at + len(sep)
    return end


def plan_chunks(
    text: str,
    count_tokens: Callable[[str], int],
    chunk_tokens: int,
    page_range: Callable[[int, int], tuple[int, int]] = lambda s, e: (1, 1),
    *,
    cancel: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Chunk]:
    """``progress(done, total)`` in characters, about every 1%: tokenizing a 50 MB text
    takes a minute, and the user must see it move."""
    if chunk_tokens < 16:
        raise ValueError("chunk_tokens must be at least 16")
    # ~4 chars per token in prose: a block is at most 1/8 of a chunk, so packing wastes
    # little room, yet a 16 MB text needs only a few thousand tokenizer calls.
    block_chars = max(64, min(4000, chunk_tokens // 2))
    chunks: list[Chunk] = []
    chunk_start, chunk_tokens_so_far = 0, 0
    pos = 0

    def close(end: int) -> None:
        nonlocal chunk_start, chunk_tokens_so_far
        first, last = page_range(chunk_start, end)
        chunks.append(Chunk(len(chunks), chunk_start, end, chunk_tokens_so_far, first, last))
        chunk_start, chunk_tokens_so_far = end, 0

    step = max(1, len(text) // 100)
    reported = 0
    while pos < len(text):
        if cancel is not None and cancel():
            raise Cancelled()
        if progress is not None and pos - reported >= step:
            reported = pos
            progress(pos, len(text))
        end = _cut(text, pos, block_chars)
        n = count_tokens(text[pos:end])
        while n > chunk_tokens and end - pos > 1:  # a dense block: halve until it fits
            end = pos + (end - pos) // 2
            n = count_tokens(text[pos:end])
        if chunk_tokens_so_far and chunk_tokens_so_far + n > chunk_tokens:
            close(pos)
        chunk_tokens_so_far += n
        pos = end
    if chunk_tokens_so_far or not chunks:
        close(len(text))
    if progress is not None:
        progress(len(text), len(text))
    return chunks
