import time

import pytest

from app.agent.budgets import PROMPT_OVERHEAD, budgets_for
from app.agent.chunking import plan_chunks
from app.settings import Settings


def words(text: str) -> int:
    return len(text.split())


def test_chunks_cover_text_exactly_and_respect_budget():
    text = "\n\n".join(f"Paragraph {i} " + "word " * (i % 37 + 5) for i in range(400))
    chunks = plan_chunks(text, words, 100)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.end == b.start  # no gap, no overlap
    assert all(c.tokens <= 100 for c in chunks)
    assert sum(c.tokens for c in chunks) == words(text)
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_chunks_end_at_paragraph_boundaries_when_possible():
    text = "\n\n".join("alpha beta gamma delta " * 10 for _ in range(30))
    chunks = plan_chunks(text, words, 120)
    for c in chunks[:-1]:
        assert text[c.start : c.end].endswith("\n\n")


def test_dense_text_without_boundaries_is_still_split():
    text = "x" * 10_000
    chunks = plan_chunks(text, lambda s: len(s) // 2, 500)
    assert all(c.tokens <= 500 for c in chunks)
    assert chunks[-1].end == len(text)


def test_page_ranges_come_from_the_document_map():
    text = "a " * 1000
    chunks = plan_chunks(text, words, 100, lambda s, e: (s // 500 + 1, (e - 1) // 500 + 1))
    assert chunks[0].page_first == 1
    assert chunks[-1].page_last == 4


def test_empty_document_gives_one_empty_chunk():
    chunks = plan_chunks("", words, 100)
    assert len(chunks) == 1 and chunks[0].tokens == 0


def test_four_million_tokens_chunk_in_seconds():
    # ~16 MB of text; a cheap counter stands in for the tokenizer (tokenizer speed is
    # measured in the benchmarks); this checks the chunker itself stays linear.
    text = ("The quarterly filing lists revenue and risks. " * 20 + "\n\n") * 18_000
    started = time.perf_counter()
    chunks = plan_chunks(text, lambda s: len(s) // 4, 32_768)
    assert time.perf_counter() - started < 20
    assert chunks[-1].end == len(text)
    assert len(chunks) == pytest.approx(len(text) / 4 / 32_768, rel=0.05)


def test_budgets_scale_with_context():
    big = budgets_for(Settings(n_ctx=131072))
    assert big.chunk_tokens == 32768 and big.memory_tokens == 15360  # the paper's sizes
    small = budgets_for(Settings(n_ctx=4096), question_tokens=20)
    assert small.chunk_tokens == 1024 and small.memory_tokens == 480
    # a step's prompt plus its output always fits the window
    for b in (big, small):
        assert PROMPT_OVERHEAD + 20 + b.memory_tokens + b.chunk_tokens + b.max_new_tokens <= b.n_ctx


def test_user_overrides_win():
    b = budgets_for(Settings(n_ctx=8192, chunk_tokens=1000, memory_tokens=300))
    assert (b.chunk_tokens, b.memory_tokens) == (1000, 300)


def test_planning_reports_progress_through_a_long_text():
    from app.agent.chunking import plan_chunks

    text = ("A sentence of some length about the harbour. " * 20 + "\n\n") * 1200  # ~1.1 MB
    seen: list[tuple[int, int]] = []
    chunks = plan_chunks(
        text, lambda s: len(s) // 4, 2000, progress=lambda d, t: seen.append((d, t))
    )
    assert chunks and seen[-1] == (len(text), len(text))
    done = [d for d, _ in seen]
    assert done == sorted(done) and 50 <= len(seen) <= 102  # about every 1%, not per block


def test_cli_shows_planning_progress_for_a_long_document(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    big = tmp_path / "big.txt"
    big.write_text(("The harbour logged vessels on pier three. " * 40 + "\n\n") * 1500)
    env = {**os.environ, "QWENLONG_READER_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "app", "ask", str(big), "How many?", "--mode", "single_pass"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert "Planning chunks: 100% of 2.5 M characters" in done.stderr
    assert "does not fit" in done.stdout + done.stderr and done.returncode == 2
