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


def bench_pipeline(
    steps: int,
    model: str | None = None,
    gpu_layers: int = 0,
    flash_attn: bool = False,
    n_cpu_moe: int = 0,
    n_ctx: int = 8192,
) -> dict[str, Any]:
    from app.agent.engine import Engine
    from app.agent.events import RunFinished, StepFinished
    from app.documents.model import Document
    from app.llm.backend import CancelToken
    from app.llm.factory import open_backend
    from app.records import Mode, Question
    from app.settings import Settings
    from app.store.database import open_database

    settings = Settings(n_ctx=2048, chunk_tokens=256, max_new_tokens=32)
    if model:
        # 8K: room for any tokenizer's prompt template (a small vocabulary needs more).
        settings = settings.with_changes(
            model_path=model,
            placement="manual",
            n_gpu_layers=gpu_layers,
            n_cpu_moe=n_cpu_moe,
            flash_attn=flash_attn,
            n_ctx=n_ctx,
        )
    backend = open_backend(settings)
    text = synthetic_text(steps * 256 * 4)
    doc = Document(path="bench.txt", sha256="bench", kind="text", title="bench", text=text)
    store = open_database()
    engine = Engine(backend, store, settings)
    doc_id = store.add_document(doc)
    session = store.create_session(doc_id, "bench")
    started = time.perf_counter()
    question = Question("q", "How many vessels were logged on pier 3?", "", Mode.MEMORY_AGENT)
    plan = engine.plan(doc, question)
    compute_ms = 0.0
    n_steps = 0
    for event in engine.ask(doc, doc_id, session, plan, CancelToken()):
        if isinstance(event, StepFinished):
            compute_ms += event.step.stats.prompt_ms + event.step.stats.generation_ms
            n_steps += 1
        elif isinstance(event, RunFinished):
            compute_ms += event.answer.stats.prompt_ms + event.answer.stats.generation_ms
    wall_ms = (time.perf_counter() - started) * 1000
    backend.close()
    return {
        "steps": n_steps,
        "n_cpu_moe": n_cpu_moe,
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
    from app.agent.planning import Planner, estimate_seconds
    from app.documents.ingest import load_document
    from app.llm.factory import open_backend
    from app.records import Mode, Question
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
    question = Question("q", "How many vessels on pier 3?", "", Mode.MEMORY_AGENT)
    plan = Planner(backend, settings).plan(doc, question)
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
        times.append((c.stats.prompt_ms, c.stats.cached_tokens, c.stats.prompt_tokens))
    backend.close()
    return {
        "first_prompt_ms": round(times[0][0], 1),
        "second_prompt_ms": round(times[1][0], 1),
        "second_cached_tokens": times[1][1],
        "prompt_tokens": times[1][2],
        "ratio": round(times[1][0] / times[0][0], 3),
    }


def bench_throughput(
    model: str | None,
    gpu_layers: int,
    prompt_tokens: int,
    gen_tokens: int,
    flash_attn: bool,
    n_cpu_moe: int = 0,
) -> dict[str, Any]:
    """Prompt and generation tokens/s inside the app (LocalBackend.stream, wall clock as
    the user sees it) against llama-cpp-python driven directly (eval + sample, no app
    code) for the same model, prompt and settings; ratios app/raw, 1.0 at best. Each side
    runs once to warm up (CUDA kernels load lazily per shape) and reports its best of two."""
    from llama_cpp import Llama

    from app.llm.backend import CancelToken, Completion, Sampling
    from app.llm.gguf import read_gguf_info
    from app.llm.load_params import LoadParams
    from app.llm.local import LocalBackend, demo_model_path

    path = str(model or demo_model_path())
    # The raw side gets the same expert placement (llama-cpp-python alone cannot).
    raw_params = LoadParams(n_cpu_moe=n_cpu_moe, n_layers=read_gguf_info(path).n_layers)
    n_ctx = prompt_tokens + gen_tokens + 256
    options = {"n_ctx": n_ctx, "n_gpu_layers": gpu_layers, "n_batch": 512, "flash_attn": flash_attn}
    text = synthetic_text(prompt_tokens * 8)

    with raw_params.installed():
        raw = Llama(
            model_path=path,
            n_ubatch=512,
            seed=0,
            verbose=False,
            **options,  # type: ignore[arg-type]
        )
    tokens = raw.tokenize(text.encode(), add_bos=False)[:prompt_tokens]
    text = raw.detokenize(tokens).decode("utf-8", errors="ignore")
    raw_pp = raw_tg = 0.0
    for _ in range(3):
        raw.reset()
        started = time.perf_counter()
        raw.eval(tokens)
        prefilled = time.perf_counter()
        for _ in range(gen_tokens):
            raw.eval([raw.sample(top_k=20, top_p=0.95, temp=0.6)])
        done = time.perf_counter()
        raw_pp = max(raw_pp, len(tokens) / (prefilled - started))
        raw_tg = max(raw_tg, gen_tokens / (done - prefilled))
    raw.close()

    backend = LocalBackend(path, n_cpu_moe=n_cpu_moe, **options)  # type: ignore[arg-type]
    # A different first word each time defeats prefix reuse: every run evaluates it all.
    sampling = Sampling(max_tokens=gen_tokens, thinking_cap=0)
    app_pp = app_tg = 0.0
    generated = prompt_len = 0
    for attempt in range(3):
        messages = [{"role": "user", "content": f"{attempt} {text}"}]
        started = time.perf_counter()
        first = None
        completion = None
        for item in backend.stream(messages, sampling, CancelToken()):
            if first is None:
                first = time.perf_counter()
            if isinstance(item, Completion):
                completion = item
        done = time.perf_counter()
        assert completion is not None and first is not None
        stats = completion.stats
        generated, prompt_len = stats.completion_tokens, stats.prompt_tokens
        app_pp = max(app_pp, (prompt_len - stats.cached_tokens) / (first - started))
        app_tg = max(app_tg, max(generated - 1, 1) / (done - first))
    backend.close()
    return {
        "model": Path(path).name,
        "gpu_layers": gpu_layers,
        "n_cpu_moe": n_cpu_moe,
        "flash_attn": flash_attn,
        "prompt_tokens": len(tokens),
        "app_prompt_tokens": prompt_len,
        "gen_tokens": gen_tokens,
        "raw_prompt_tps": round(raw_pp, 1),
        "raw_gen_tps": round(raw_tg, 1),
        "app_prompt_tps": round(app_pp, 1),
        "app_gen_tps": round(app_tg, 1),
        "app_generated": generated,
        "prompt_ratio_app_to_raw": round(app_pp / raw_pp, 3),
        "gen_ratio_app_to_raw": round(app_tg / raw_tg, 3),
    }


def scaled_plan_cpu_moe(card_gb: float, n_layers: int, ram_gb: float = 64) -> int:
    """n_cpu_moe for a slice of QwenLong's layers as the plan chooses it for the whole
    Q4_K_M model on a card of ``card_gb``: the same share of layers keeps its experts in
    RAM (the slice cannot stand for 48 layers' memory, but per-layer cost is the same)."""
    from app.llm.fit import Machine, plan_placement
    from app.llm.qwenlong import qwenlong_reference

    plan = plan_placement(
        qwenlong_reference("Q4_K_M"), Machine(int(ram_gb * 1e9), int(card_gb * 1e9))
    )
    share = (48 if plan.n_cpu_moe < 0 else plan.n_cpu_moe) / 48
    return max(0, min(n_layers, round(share * n_layers)))


def bench_placement(
    model: str | None, prompt_tokens: list[int], gen_tokens: int, cards_gb: list[float]
) -> dict[str, Any]:
    """Throughput (app and raw) per placement: every layer on the GPU, every expert in
    RAM (--cpu-moe), and the plan's n_cpu_moe for each simulated card, at each prompt
    length. On a CPU-only build all placements run on the CPU: the figures then show only
    what the override itself costs (nothing)."""
    from app.llm.gguf import read_gguf_info
    from app.llm.local import demo_model_path

    path = str(model or demo_model_path())
    n_layers = read_gguf_info(path).n_layers
    placements = {"all_on_gpu": 0, "experts_in_ram": -1}
    for card in cards_gb:
        placements[f"plan_{card:g}gb"] = scaled_plan_cpu_moe(card, n_layers)
    results: dict[str, Any] = {"n_layers": n_layers, "placements": placements, "runs": []}
    for tokens in prompt_tokens:
        for name, n_cpu_moe in placements.items():
            run = bench_throughput(path, -1, tokens, gen_tokens, True, n_cpu_moe)
            results["runs"].append({"placement": name, **run})
            print(f"  {name} @ {tokens}: {json.dumps(run)}", file=sys.stderr, flush=True)
    return results


def bench_ttft(model: str | None, prompt_tokens: int, gpu_layers: int, n_cpu_moe: int) -> dict:
    """Single pass at a long context: time to the first streamed token of a
    ``prompt_tokens`` prompt against llama.cpp's own prompt-evaluation time for it."""
    from app.llm.backend import CancelToken, Completion, Sampling
    from app.llm.local import LocalBackend, demo_model_path

    path = str(model or demo_model_path())
    backend = LocalBackend(
        path,
        n_ctx=prompt_tokens + 512,
        n_gpu_layers=gpu_layers,
        n_cpu_moe=n_cpu_moe,
        flash_attn=True,
        n_batch=2048,
    )
    text = synthetic_text(prompt_tokens * 6)
    ids = backend.llm.tokenize(text.encode(), add_bos=False)[: prompt_tokens - 64]
    text = backend.llm.detokenize(ids).decode("utf-8", errors="ignore")
    messages = [{"role": "user", "content": text}]
    started = time.perf_counter()
    first = None
    completion = None
    for item in backend.stream(messages, Sampling(max_tokens=8, thinking_cap=0), CancelToken()):
        first = first or time.perf_counter()
        if isinstance(item, Completion):
            completion = item
    backend.close()
    assert completion is not None and first is not None
    ttft = first - started
    stats = completion.stats
    return {
        "prompt_tokens": stats.prompt_tokens,
        "ttft_s": round(ttft, 3),
        "llama_prompt_s": round(stats.prompt_ms / 1000, 3),
        "ttft_ratio": round(ttft * 1000 / stats.prompt_ms, 3),
        "prompt_tps": round(stats.prompt_tokens / ttft, 1),
    }


def bench_ui(steps: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "app.gui.bench_ui", str(steps)],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")},
        timeout=900,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if out.returncode != 0:
        raise RuntimeError(f"UI bench failed: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


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


def bench_html(megabytes: int) -> dict[str, Any]:
    """An EDGAR-like filing: inline-XBRL header hidden in a display:none div, styled
    <div>/<font> soup, tables padded with spacer cells, a CSS page break per page."""
    from selectolax.lexbor import LexborHTMLParser

    from app.documents.ingest import load_document

    head = (
        '<?xml version="1.0" encoding="utf-8"?><html xmlns:ix="http://www.xbrl.org/2013/'
        'inlineXBRL"><head><title>10-K</title></head><body><div style="display:none">'
        "<ix:header><ix:hidden>"
        + "".join(f'<ix:nonNumeric name="dei:F{i}">fact {i}</ix:nonNumeric>' for i in range(500))
        + "</ix:hidden></ix:header></div>"
    )
    row = (
        '<tr><td style="padding-left:10pt"><font style="font-size:10pt">{name}</font></td>'
        '<td style="width:1%"></td><td>$</td><td style="text-align:right"><ix:nonFraction '
        'name="us-gaap:Revenues" contextRef="c1" decimals="-6">{value:,}</ix:nonFraction>'
        "</td><td></td></tr>"
    )
    parts = [head]
    size, page = len(head), 0
    while size < megabytes * 1_000_000:
        page += 1
        prose = synthetic_text(2500)
        rows = "".join(
            row.format(name=f"Segment {page}-{r}", value=page * 97 + r) for r in range(15)
        )
        chunk = (
            f'<div style="margin-top:12pt"><font style="font-weight:bold">Item {page}.</font>'
            f'</div><div><font style="font-family:Times New Roman">{prose}</font></div>'
            f'<table style="width:100%"><tr><td><b>Segment</b></td><td></td><td colspan="2">'
            f"<b>Revenue</b></td><td></td></tr>{rows}</table>"
            f'<p style="text-align:center">{page}</p><hr style="page-break-after:always"/>'
        )
        parts.append(chunk)
        size += len(chunk)
    parts.append("</body></html>")
    data = "".join(parts).encode("utf-8")
    path = Path(tempfile.mkdtemp()) / "filing.htm"
    path.write_bytes(data)
    started = time.perf_counter()
    LexborHTMLParser(data.decode("utf-8"))
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    doc = load_document(path, use_cache=False)
    ingest_s = time.perf_counter() - started
    return {
        "megabytes": round(len(data) / 1e6, 1),
        "pages": doc.page_count,
        "chars": len(doc.text),
        "parse_only_s": round(parse_s, 3),
        "ingest_s": round(ingest_s, 2),
        "mb_per_s": round(len(data) / 1e6 / ingest_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app bench")
    parser.add_argument("--steps", type=int, default=20, help="memory steps in the pipeline run")
    parser.add_argument("--pages", type=int, default=1000, help="pages of the ingestion PDF")
    parser.add_argument("--megabytes", type=int, default=16, help="size of the scale text")
    parser.add_argument(
        "--only",
        nargs="*",
        default=[],
        help="pipeline ingestion scale follow_up launch ui throughput html",
    )
    parser.add_argument("--model", help="GGUF for the throughput bench (default: demo model)")
    parser.add_argument("--gpu-layers", type=int, default=0, help="throughput: layers on GPU")
    parser.add_argument("--prompt-tokens", type=int, default=512, help="throughput prompt")
    parser.add_argument("--gen-tokens", type=int, default=32, help="throughput generation")
    parser.add_argument("--flash-attn", action="store_true", help="throughput, pipeline: use FA")
    parser.add_argument(
        "--n-cpu-moe", type=int, default=0, help="throughput, pipeline: experts of N layers in RAM"
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
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args(argv)
    os.environ.setdefault("QWENLONG_READER_HOME", tempfile.mkdtemp(prefix="qwenlong-bench-"))
    benches = {
        "pipeline": lambda: bench_pipeline(
            args.steps, args.model, args.gpu_layers, args.flash_attn, args.n_cpu_moe, args.ctx
        ),
        "ingestion": lambda: bench_ingestion(args.pages),
        "scale": lambda: bench_scale(args.megabytes),
        "follow_up": bench_follow_up,
        "launch": bench_launch,
        "ui": lambda: bench_ui(min(args.steps, 5)),
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


if __name__ == "__main__":
    sys.exit(main())
