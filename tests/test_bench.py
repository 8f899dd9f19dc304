"""The benchmark code runs end to end on a small size (figures live in docs/benchmarks.md)."""

from __future__ import annotations

import json

from app.bench import main


def test_bench_runs_small(tmp_path):
    out = tmp_path / "results"
    args = ["--steps", "2", "--pages", "20", "--megabytes", "1", "--out", str(out)]
    assert main(args) == 0
    data = json.loads(next(out.glob("bench-*.json")).read_text())
    assert data["pipeline"]["steps"] >= 2 and data["pipeline"]["overhead_ratio"] >= 1.0
    assert data["ingestion"]["pages"] == 20 and data["ingestion"]["cache_speedup"] > 1
    assert data["scale"]["steps"] >= 1 and data["scale"]["tokens"] > 100_000
    assert data["follow_up"]["second_cached_tokens"] > 0
    assert data["launch"]["imports_to_window_s"] > 0
