"""``python -m app quality``: its options, the settings they give, one run of the
harness and its results file, table and plot."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.llm.backend import Backend
from app.model_options import add_model_options
from app.quality.harness import (
    MEMORY_AGENT,
    METHODS,
    Q_INST,
    RETRIEVAL,
    SINGLE_PASS,
    Harness,
    Options,
)
from app.quality.report import plot_results, summarise, table, write_results
from app.quality.synth import generate
from app.settings import Settings

ALIASES = {
    "agent": MEMORY_AGENT,
    "memory": MEMORY_AGENT,
    "single": SINGLE_PASS,
    "rag": RETRIEVAL,
    "bm25": RETRIEVAL,
}


def resolve_methods(names: Sequence[str]) -> list[str]:
    methods = []
    for item in names:
        for name in item.replace(",", " ").split():
            method = ALIASES.get(name, name)
            if method not in METHODS:
                raise SystemExit(f"unknown method {name!r}: choose from {', '.join(METHODS)}")
            if method not in methods:
                methods.append(method)
    return methods or list(METHODS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app quality",
        description="Answer quality on a synthetic long document with known answers: memory "
        "agent vs single pass vs BM25 chunk retrieval (see docs/quality.md). Without --model "
        "or --server the demo model runs with a 4,096-token context, 512-token chunks and 96 "
        "new tokens per call; otherwise the context is 32,768 tokens.",
    )
    parser.add_argument("--doc-tokens", type=int, default=1200, help="document size (about)")
    parser.add_argument("--questions", type=int, default=5, help="number of questions")
    parser.add_argument("--seed", type=int, default=0, help="document and question seed")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["memory_agent,single_pass,retrieval"],
        help="memory_agent single_pass retrieval (or agent, single, rag)",
    )
    add_model_options(parser)  # the same model options as `ask`
    parser.add_argument(
        "--kv-cache", default="f16", choices=["f16", "q8_0", "q4_0"], help="KV cache type"
    )
    parser.add_argument("--top-k", type=int, default=4, help="retrieval: chunks per prompt")
    parser.add_argument(
        "--retrieval-chunk-tokens", type=int, default=128, help="retrieval: tokens per chunk"
    )
    parser.add_argument("--out", default="bench-results", help="folder for JSON and PNG")
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")
    parser.add_argument("--quiet", action="store_true", help="no per-question progress")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    demo = not args.model and not args.server
    settings = Settings(
        backend="remote" if args.server else "local",
        model_path=args.model or "",
        remote_url=args.server or "",
        remote_model=args.server_model or "",
        n_ctx=args.ctx or (4096 if demo else 32768),
        chunk_tokens=args.chunk_tokens if args.chunk_tokens is not None else (512 if demo else 0),
        memory_tokens=args.memory_tokens or 0,
        max_new_tokens=(
            args.max_new_tokens if args.max_new_tokens is not None else (96 if demo else 0)
        ),
        n_gpu_layers=args.gpu_layers if args.gpu_layers is not None else 0,
        flash_attn=bool(args.flash_attn),
        kv_cache_type=args.kv_type or args.kv_cache,
        n_cpu_moe=args.n_cpu_moe or 0,
        cpu_moe=bool(args.cpu_moe),
        max_ctx=args.max_ctx or Settings.max_ctx,
    )
    # As `ask`: a placement value given by hand is used as given, else the plan decides.
    placed = ("gpu_layers", "n_cpu_moe", "cpu_moe", "kv_type", "flash_attn")
    manual = any(getattr(args, name) not in (None, False) for name in placed)
    settings = settings.with_changes(placement=args.placement or ("manual" if manual else "auto"))
    return settings.checked()


def main(argv: Sequence[str] | None = None, backend: Backend | None = None) -> int:
    """``python -m app quality [options]``; ``backend`` replaces the model (tests)."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    methods = resolve_methods(args.methods)
    settings = settings_from(args)
    started = time.perf_counter()
    synth = generate(args.seed, args.doc_tokens, args.questions)
    own_backend = backend is None
    if backend is None:
        from app.llm.factory import open_backend

        backend = open_backend(settings)
    log = None if args.quiet else sys.stderr
    harness = Harness(
        backend, settings, synth, Options(args.top_k, args.retrieval_chunk_tokens), log
    )
    try:
        doc_tokens = backend.count_tokens(synth.text)
        if log:
            log.write(
                f"Model {backend.identity.name}; document {doc_tokens:,} tokens "
                f"({len(synth.text):,} chars, {len(synth.facts)} facts), "
                f"questions: {len(synth.questions)}, methods: {', '.join(methods)}\n"
            )
        outcomes = harness.run(methods)
    finally:
        harness.close()
        if own_backend:
            backend.close()
    summary = summarise(outcomes, methods)
    when = time.strftime("%Y-%m-%dT%H:%M:%S")
    results: dict[str, Any] = {
        "kind": "quality",
        "when": when,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "model": {
            "backend": backend.identity.backend,
            "name": backend.identity.name,
            "path": backend.identity.path,
            "n_ctx": backend.identity.n_ctx,
        },
        "settings": {
            k: v
            for k, v in settings.to_dict().items()
            if k not in ("recent_files", "remote_url", "model_path")
        },
        "config": {
            "doc_tokens": args.doc_tokens,
            "questions": args.questions,
            "seed": args.seed,
            "methods": methods,
            "top_k": args.top_k,
            "retrieval_chunk_tokens": args.retrieval_chunk_tokens,
            "q_inst": Q_INST,
        },
        "document": {
            "chars": len(synth.text),
            "tokens": doc_tokens,
            "facts": len(synth.facts),
        },
        "questions": [
            {
                "id": q.id,
                "kind": q.kind,
                "text": q.text,
                "answer": q.answer,
                "facts": [
                    {
                        "id": f,
                        "text": synth.facts[f].text,
                        "position": round(synth.facts[f].position, 3),
                    }
                    for f in q.fact_ids
                ],
            }
            for q in synth.questions
        ],
        "summary": summary,
        "results": [asdict(o) for o in outcomes],
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    target = write_results(results, out)
    print(table(summary, outcomes))
    print(f"written {target}")
    if not args.no_plot:
        png = plot_results(results, target.with_suffix(".png"), out)
        print(f"written {png}")
    return 0
