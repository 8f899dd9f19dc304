"""Import sqlite-utils without pandas.

sqlite-utils imports pandas whenever it is installed, only to map pandas types in
inserts the app never makes. In an environment with a PyTorch/pandas stack that import
loads a second C++ runtime before llama.cpp's, and llama.cpp then crashed inside
``llama_model::print_info`` (SIGSEGV seen on the GPU machine, docs/benchmarks.md). So
pandas is hidden while sqlite-utils imports (a ``None`` in ``sys.modules`` makes the
import raise ImportError, which sqlite-utils handles) and the app never loads it; a
process that imported pandas itself already is left as it is.
"""

from __future__ import annotations

import sys
from types import ModuleType


def import_sqlite_utils() -> ModuleType:
    hidden = "pandas" not in sys.modules
    if hidden:
        sys.modules["pandas"] = None  # type: ignore[assignment]
    try:
        import sqlite_utils
    finally:
        if hidden and sys.modules.get("pandas", 0) is None:
            del sys.modules["pandas"]
    return sqlite_utils
