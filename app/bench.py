"""``python -m app bench``: rerunnable measurements of the pipeline against its limits.

- pipeline: a memory-agent run's wall time over llama.cpp's own compute time (prompt
  evaluation + generation, from its performance counters) for the same run; 1.0 is the
  physical limit.
- ingestion: load_document on a generated 1,000-page PDF over raw PyMuPDF get_text() on
  the same file, and the cached re-open's speed-up.
- scale: a ~4M-token text (16 MB) read and chunked with the real tokenizer: time, peak
  memory, steps and the estimated run time shown to the user.
- follow-up: single-pass prompt time of a second question on the same document over the
  first (KV prefix reuse).
- launch: time from process start to a shown main window (no model load).

Results go to bench-results/<timestamp>.json; docs/benchmarks.md records figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def bench_pipeline(steps: int) -> dict[str, Any]:
    from app.agent.engine import MEMORY_AGENT, Engine
    from app.agent.events import RunFinished, StepFinished
    from app.documents.model import Document
    from app.llm.backend import CancelToken
    from app.llm.factory import open_backend
    from app.settings import Settings
    from app.store.database import open_database

    settings = Settings(n_ctx=2048, chunk_tokens=256, max_new_tokens=32)
    backend = open_backend(settings)
    text = synthetic_text(steps * 256 * 4)
    doc = Document(path="bench.txt", sha256="bench", kind="text", title="bench", text=text)
    store = open_database()
    engine = Engine(backend, store, settings)
    doc_id = store.add_document(doc)
    session = store.create_session(doc_id, "bench")
    started = time.perf_counter()
    plan = engine.plan(doc, "How many vessels were logged on pier 3?", "", MEMORY_AGENT)
    compute_ms = 0.0
    n_steps = 0
    for event in engine.ask(
        doc, doc_id, session, "q", "How many vessels on pier 3?", "", plan, CancelToken()
    ):
        if isinstance(event, StepFinished):
            compute_ms += event.step.prompt_ms + event.step.generation_ms
            n_steps += 1
        elif isinstance(event, RunFinished):
            compute_ms += event.answer.prompt_ms + event.answer.generation_ms
    wall_ms = (time.perf_counter() - started) * 1000
    backend.close()
    return {
        "steps": n_steps,
        "wall_s": round(wall_ms / 1000, 2),
        "llama_compute_s": round(compute_ms / 1000, 2),
        "overhead_ratio": round(wall_ms / compute_ms, 3),
    }


def bench_ingestion(pages: int) -> dict[str, Any]:
    import pymupdf

    from app.documents.ingest import load_document

    folder = Path(tempfile.mkdtemp())
    path = folder / "big.pdf"
    pdf = pymupdf.open()
    body = synthetic_text(2500)
    for i in range(pages):
        pdf.new_page().insert_textbox(
            pymupdf.Rect(50, 50, 550, 800), f"Page {i}. {body}", fontsize=9
        )
    pdf.save(path)
    pdf.close()
    started = time.perf_counter()
    with pymupdf.open(path) as raw:
        for page in raw:
            page.get_text()
    raw_s = time.perf_counter() - started
    started = time.perf_counter()
    load_document(path, use_cache=True)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    load_document(path, use_cache=True)
    cached_s = time.perf_counter() - started
    return {
        "pages": pages,
        "raw_get_text_s": round(raw_s, 3),
        "ingest_s": round(first_s, 3),
        "pages_per_s": round(pages / first_s),
        "ratio_to_raw": round(first_s / raw_s, 3),
        "cached_s": round(cached_s, 4),
        "cache_speedup": round(first_s / cached_s, 1),
    }


def bench_scale(megabytes: int) -> dict[str, Any]:
    from app.agent.engine import Engine, estimate_seconds
    from app.documents.ingest import load_document
    from app.llm.factory import open_backend
    from app.settings import Settings

    folder = Path(tempfile.mkdtemp())
    path = folder / "huge.txt"
    path.write_text(synthetic_text(megabytes * 1_000_000), encoding="utf-8")
    settings = Settings(n_ctx=131072)  # the paper's budgets: 32K chunks, 15K memory
    backend = open_backend(settings.with_changes(n_ctx=2048))  # only its tokenizer is used
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    doc = load_document(path, use_cache=False)
    read_s = time.perf_counter() - started
    plan = Engine(backend, None, settings).plan(
        doc, "How many vessels on pier 3?", "", "memory_agent"
    )
    total_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    backend.close()
    return {
        "megabytes": megabytes,
        "tokens": plan.document_tokens,
        "steps": len(plan.chunks),
        "read_s": round(read_s, 2),
        "read_and_chunk_s": round(total_s, 2),
        "peak_rss_mb": round(peak_mb),
        "rss_before_mb": round(before / 1024),
        "estimated_run_h_at_1000_tps": round(estimate_seconds(plan, 1000, 50) / 3600, 1),
    }


def bench_follow_up() -> dict[str, Any]:
    from app.agent import prompts
    from app.llm.backend import CancelToken, Sampling, complete
    from app.llm.factory import open_backend
    from app.settings import Settings

    backend = open_backend(Settings(n_ctx=4096))
    text = synthetic_text(9000)
    times = []
    for question in ("How many vessels on pier 3?", "How many inspections on pier 5?"):
        prompt = prompts.single_pass_prompt(text, question, "")
        c = complete(
            backend, [{"role": "user", "content": prompt}], Sampling(max_tokens=1), CancelToken()
        )
        times.append((c.prompt_ms, c.cached_tokens, c.prompt_tokens))
    backend.close()
    return {
        "first_prompt_ms": round(times[0][0], 1),
        "second_prompt_ms": round(times[1][0], 1),
        "second_cached_tokens": times[1][1],
        "prompt_tokens": times[1][2],
        "ratio": round(times[1][0] / times[0][0], 3),
    }


def bench_launch() -> dict[str, Any]:
    # The model loads on its own thread after the window shows, so it is not counted.
    code = (
        "import time; t = time.perf_counter()\n"
        "from app.gui.main import make_app\n"
        "from app.gui.window import MainWindow\n"
        "app = make_app(); window = MainWindow(); window.show(); app.processEvents()\n"
        "print(time.perf_counter() - t); window.model.stop()\n"
    )
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    total = time.perf_counter() - started
    inside = float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else -1
    return {"process_start_to_window_s": round(total, 2), "imports_to_window_s": round(inside, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app bench")
    parser.add_argument("--steps", type=int, default=20, help="memory steps in the pipeline run")
    parser.add_argument("--pages", type=int, default=1000, help="pages of the ingestion PDF")
    parser.add_argument("--megabytes", type=int, default=16, help="size of the scale text")
    parser.add_argument(
        "--only", nargs="*", default=[], help="pipeline ingestion scale follow_up launch"
    )
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args(argv)
    os.environ.setdefault("QWENLONG_READER_HOME", tempfile.mkdtemp(prefix="qwenlong-bench-"))
    benches = {
        "pipeline": lambda: bench_pipeline(args.steps),
        "ingestion": lambda: bench_ingestion(args.pages),
        "scale": lambda: bench_scale(args.megabytes),
        "follow_up": bench_follow_up,
        "launch": bench_launch,
    }
    results: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    for name, bench in benches.items():
        if args.only and name not in args.only:
            continue
        print(f"{name}…", file=sys.stderr, flush=True)
        results[name] = bench()
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"written {target}")
    return 0
