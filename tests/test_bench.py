"""The benchmark code runs end to end on a small size (figures live in docs/benchmarks.md)."""

from __future__ import annotations

import json

from app.bench import main


def test_bench_runs_small(tmp_path, tiny_model):
    """Every default benchmark, its model benches on the tiny qwen3moe (--model: what
    runs is the bench's code, the figures do not matter here)."""
    out = tmp_path / "results"
    args = ["--steps", "2", "--pages", "20", "--megabytes", "1", "--out", str(out)]
    args += ["--prompt-tokens", "64", "--gen-tokens", "8", "--follow-up-tokens", "600"]
    args += ["--model", str(tiny_model), "--ctx", "2048"]
    assert main(args) == 0
    data = json.loads(next(out.glob("bench-*.json")).read_text())
    assert data["pipeline"]["steps"] >= 2 and data["pipeline"]["overhead_ratio"] >= 1.0
    assert data["ingestion"]["pages"] == 20 and data["ingestion"]["cache_speedup"] > 1
    assert data["scale"]["steps"] >= 1 and data["scale"]["tokens"] > 100_000
    follow_up = data["follow_up"]
    assert follow_up["second_cached_tokens"] > 0 and 500 < follow_up["prompt_tokens"] < 800
    assert data["launch"]["imports_to_window_s"] > 0
    assert data["ui"]["status"] == "finished" and data["ui"]["steps"] >= 1
    assert data["gguf_header"]["ratio"] >= 0.5 and "gguf_py_reader_s" not in data["gguf_header"]
    names = ("pipeline", "follow_up", "ui", "throughput", "gguf_header")
    models = {data[name]["model"] for name in names}
    assert models == {tiny_model.name}
    assert data["ui"]["ticks"] > 10 and data["ui"]["worst_stall_ms"] > 0
    throughput = data["throughput"]
    assert throughput["raw_prompt_tps"] > 0 and throughput["app_gen_tps"] > 0
    assert throughput["app_generated"] >= 1 and throughput["prompt_ratio_app_to_raw"] > 0


def test_bench_options_pass_through_the_app_command(tmp_path, demo_model):
    from app.__main__ import main as app_main

    out = tmp_path / "r"
    args = ["bench", "--only", "scale", "follow_up", "--megabytes", "1", "--out", str(out)]
    assert app_main([*args, "--follow-up-tokens", "100"]) == 0
    data = json.loads(next(out.glob("bench-*.json")).read_text())
    assert set(data) >= {"scale", "follow_up"} and "pipeline" not in data
    # without --model the model benches run on the demo model
    follow_up = data["follow_up"]
    assert follow_up["model"] == demo_model.name
    assert follow_up["second_cached_tokens"] > 0 and 100 < follow_up["prompt_tokens"] < 250
