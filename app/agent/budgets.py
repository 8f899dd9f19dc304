"""How a context window is shared between chunk, memory, thinking and answer.

The paper reads 32K-token chunks with a 15K-token memory on a 128K window; on smaller
windows every part scales down in the same proportions, unless the user overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.settings import Settings

# The memory-update template itself is about 560 tokens in Qwen's tokenizer; round up.
PROMPT_OVERHEAD = 700


@dataclass(frozen=True)
class Budgets:
    n_ctx: int
    chunk_tokens: int
    memory_tokens: int
    max_new_tokens: int  # whole output of a memory step: thinking + memory + plan
    thinking_cap: int
    answer_room: int  # output room reserved by single-pass mode
    prompt_overhead: int = PROMPT_OVERHEAD  # the template's own tokens, this tokenizer


def budgets_for(
    settings: Settings, question_tokens: int = 64, prompt_overhead: int = PROMPT_OVERHEAD
) -> Budgets:
    n_ctx = settings.n_ctx
    memory = settings.memory_tokens or max(96, n_ctx * 15 // 128)
    chunk = settings.chunk_tokens or max(128, n_ctx // 4)
    room = n_ctx - prompt_overhead - question_tokens - memory - chunk
    if room < memory + 64:
        chunk = max(64, chunk - (memory + 64 - room))
        room = n_ctx - prompt_overhead - question_tokens - memory - chunk
    max_new = min(room, settings.max_new_tokens) if settings.max_new_tokens else room
    thinking = settings.thinking_cap or max(0, max_new - memory - memory // 4)
    answer_room = max(256, min(16384, n_ctx // 4))
    if settings.max_new_tokens:
        answer_room = min(answer_room, settings.max_new_tokens)
    return Budgets(n_ctx, chunk, memory, max(32, max_new), thinking, answer_room, prompt_overhead)
