"""``python -m app.bench``: the benchmarks without the app's command line (as
packaging/cuda_bench.sh runs them)."""

from __future__ import annotations

import sys

from app.bench import main

if __name__ == "__main__":
    sys.exit(main())
