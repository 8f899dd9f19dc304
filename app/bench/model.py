"""The benchmarks that run a model: the pipeline (a memory-agent run against llama.cpp's
own compute time), follow-up (KV prefix reuse), throughput, placement and ttft (the app's
tokens/s and first-token time against llama.cpp driven directly)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.bench.synthetic import synthetic_text

if TYPE_CHECKING:
    from app.settings import Settings


def model_settings(
    settings: Settings,
    model: str,
    gpu_layers: int,
    flash_attn: bool,
    n_cpu_moe: int,
    n_ctx: int,
) -> Settings:
    """``settings`` on the GGUF ``model`` (--model) placed as the bench's options say
    (manual placement: the figures are for that placement, not the plan's)."""
    return settings.with_changes(
        model_path=model,
        placement="manual",
        n_gpu_layers=gpu_layers,
        n_cpu_moe=n_cpu_moe,
        flash_attn=flash_attn,
        n_ctx=n_ctx,
    )


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
        settings = model_settings(settings, model, gpu_layers, flash_attn, n_cpu_moe, n_ctx)
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
        "model": Path(backend.identity.path).name,
        "steps": n_steps,
        "n_cpu_moe": n_cpu_moe,
        "wall_s": round(wall_ms / 1000, 2),
        "llama_compute_s": round(compute_ms / 1000, 2),
        "overhead_ratio": round(wall_ms / compute_ms, 3),
    }


def bench_follow_up(
    doc_tokens: int = 2250,
    model: str | None = None,
    gpu_layers: int = 0,
    flash_attn: bool = False,
    n_cpu_moe: int = 0,
) -> dict[str, Any]:
    """Two single-pass questions on one document of about ``doc_tokens`` tokens (in the
    model's tokenizer): the second one's prompt time over the first's, and how much of
    its prompt came from the KV cache."""
    from app.agent import prompts
    from app.llm.backend import CancelToken, Sampling, complete
    from app.llm.factory import open_backend
    from app.settings import Settings

    # Room for the document, the template and the question; 4K for the default size
    # (2,250 tokens: about the 9,000 characters read before the size was an option).
    n_ctx = max(4096, doc_tokens + 1024)
    settings = Settings(n_ctx=n_ctx)
    if model:
        settings = model_settings(settings, model, gpu_layers, flash_attn, n_cpu_moe, n_ctx)
    backend = open_backend(settings)
    text = synthetic_text(doc_tokens * 6)
    # Cut to about doc_tokens: the share of characters the share of tokens asks for.
    text = text[: len(text) * doc_tokens // max(1, backend.count_tokens(text))]
    times = []
    for question in ("How many vessels on pier 3?", "How many inspections on pier 5?"):
        prompt = prompts.single_pass_prompt(text, question, "")
        c = complete(
            backend, [{"role": "user", "content": prompt}], Sampling(max_tokens=1), CancelToken()
        )
        times.append((c.stats.prompt_ms, c.stats.cached_tokens, c.stats.prompt_tokens))
    backend.close()
    return {
        "model": Path(backend.identity.path).name,
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


def bench_gguf_header(
    model: str | None, repeats: int = 5, with_gguf_py: bool = False
) -> dict[str, Any]:
    """Reading a model's header as the app does (read_gguf_info: llama.cpp's C reader plus
    what the plan needs from it) against llama.cpp's reader alone (gguf_init_from_file,
    the physical limit), best of ``repeats``; ``with_gguf_py``: also the gguf package's
    GGUFReader, which the app does not use (docs/libraries.md; seconds, not ms)."""
    from app.llm.gguf import _gguf, _InitParams, read_gguf_info
    from app.llm.local import demo_model_path

    found = model or demo_model_path()
    assert found, "no model: pass --model FILE"
    path = Path(found)
    reader = _gguf()
    assert reader is not None, "this llama.cpp build has no GGUF reader"

    def best(job: Any, times: int) -> float:
        seconds = []
        for _ in range(times):
            started = time.perf_counter()
            job()
            seconds.append(time.perf_counter() - started)
        return min(seconds)

    def raw() -> None:
        reader.free(reader.init_from_file(str(path).encode("utf-8"), _InitParams(True, None)))

    ours, limit = best(lambda: read_gguf_info(path), repeats), best(raw, repeats)
    result: dict[str, Any] = {
        "model": path.name,
        "read_gguf_info_s": round(ours, 4),
        "llama_cpp_reader_s": round(limit, 4),
        "ratio": round(ours / limit, 3) if limit else None,
    }
    if not with_gguf_py:
        return result
    try:
        from gguf import GGUFReader
    except ImportError:  # a test dependency, not the app's
        return result
    result["gguf_py_reader_s"] = round(best(lambda: GGUFReader(path), 1), 3)
    return result
