"""``python -m app bench``: rerunnable measurements of the pipeline against its limits.

- pipeline: a memory-agent run's wall time over llama.cpp's own compute time (prompt
  evaluation + generation, from its performance counters) for the same run; 1.0 is the
  physical limit.
- ingestion: load_document on a generated 1,000-page PDF over raw PyMuPDF get_text() on
  the same file, and the cached re-open's speed-up.
- scale: a ~4M-token text (16 MB) read and chunked with the real tokenizer: time, peak
  memory, steps and the estimated run time shown to the user.
- follow-up: single-pass prompt time of a second question on the same document over the
  first (KV prefix reuse), on a document of --follow-up-tokens.
- launch: time from process start to a shown main window (no model load).
- ui: the event loop's longest stall while the real window runs the memory agent.
- throughput, placement, ttft: the app's tokens/s and time to first token against
  llama.cpp driven directly (placement and ttft only when named in --only).

The model benches run the demo model, or the GGUF given with --model (figures at another
model's shape).

Results go to bench-results/<timestamp>.json; docs/benchmarks.md records figures.
This module is the command (its options, which benchmarks run, the results file);
the benchmarks live beside it by what they exercise: documents.py, model.py, window.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.bench.documents import bench_html, bench_ingestion, bench_scale
from app.bench.model import (
    bench_follow_up,
    bench_gguf_header,
    bench_pipeline,
    bench_placement,
    bench_throughput,
    bench_ttft,
)
from app.bench.window import bench_launch, bench_ui


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app bench")
    parser.add_argument("--steps", type=int, default=20, help="memory steps in the pipeline run")
    parser.add_argument("--pages", type=int, default=1000, help="pages of the ingestion PDF")
    parser.add_argument("--megabytes", type=int, default=16, help="size of the scale text")
    parser.add_argument(
        "--only",
        nargs="*",
        default=[],
        help="pipeline ingestion scale follow_up launch ui throughput html gguf_header",
    )
    parser.add_argument(
        "--model",
        help="GGUF for every model bench: pipeline follow_up ui throughput placement ttft "
        "(default: the demo model)",
    )
    parser.add_argument(
        "--gpu-layers", type=int, default=0, help="throughput, pipeline, follow_up, ttft: on GPU"
    )
    parser.add_argument("--prompt-tokens", type=int, default=512, help="throughput prompt")
    parser.add_argument("--gen-tokens", type=int, default=32, help="throughput generation")
    parser.add_argument(
        "--flash-attn", action="store_true", help="throughput, pipeline, follow_up: use FA"
    )
    parser.add_argument(
        "--n-cpu-moe",
        type=int,
        default=0,
        help="throughput, pipeline, follow_up, ttft: experts of N layers in RAM",
    )
    parser.add_argument("--ctx", type=int, default=8192, help="pipeline: context size")
    parser.add_argument(
        "--placement-prompts",
        type=int,
        nargs="*",
        default=[512],
        help="placement: prompt lengths (e.g. 4096 32768 131072)",
    )
    parser.add_argument(
        "--cards-gb", type=float, nargs="*", default=[12, 24], help="placement: simulated cards"
    )
    parser.add_argument("--ttft-tokens", type=int, default=2048, help="ttft: prompt length")
    parser.add_argument(
        "--follow-up-tokens", type=int, default=2250, help="follow_up: document length"
    )
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args(argv)
    os.environ.setdefault("QWENLONG_READER_HOME", tempfile.mkdtemp(prefix="qwenlong-bench-"))
    benches = {
        "pipeline": lambda: bench_pipeline(
            args.steps, args.model, args.gpu_layers, args.flash_attn, args.n_cpu_moe, args.ctx
        ),
        "ingestion": lambda: bench_ingestion(args.pages),
        "scale": lambda: bench_scale(args.megabytes),
        "follow_up": lambda: bench_follow_up(
            args.follow_up_tokens, args.model, args.gpu_layers, args.flash_attn, args.n_cpu_moe
        ),
        "launch": bench_launch,
        "ui": lambda: bench_ui(min(args.steps, 5), args.model),
        "throughput": lambda: bench_throughput(
            args.model,
            args.gpu_layers,
            args.prompt_tokens,
            args.gen_tokens,
            args.flash_attn,
            args.n_cpu_moe,
        ),
        "placement": lambda: bench_placement(
            args.model, args.placement_prompts, args.gen_tokens, args.cards_gb
        ),
        "ttft": lambda: bench_ttft(args.model, args.ttft_tokens, args.gpu_layers, args.n_cpu_moe),
        # 10 MB by default (the size); --megabytes lowers it for quick runs.
        "html": lambda: bench_html(min(args.megabytes, 10)),
        # GGUFReader takes seconds: compared only when this bench is named in --only.
        "gguf_header": lambda: bench_gguf_header(args.model, with_gguf_py=bool(args.only)),
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
        if not args.only and name in ("placement", "ttft"):
            continue  # long at real sizes: run them by name
        print(f"{name}…", file=sys.stderr, flush=True)
        results[name] = bench()
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"written {target}")
    return 0
