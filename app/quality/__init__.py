"""Answer-quality harness: synthetic long documents with multi-hop questions whose
answers are known, answered by the memory agent, single pass and BM25 chunk retrieval,
scored by exact match. ``python -m app.quality --help``; see docs/quality.md."""

from __future__ import annotations

from collections.abc import Sequence

from app.llm.backend import Backend


def main(argv: Sequence[str] | None = None, backend: Backend | None = None) -> int:
    from app.quality.command import main as run

    return run(argv, backend)
