"""The store never loads pandas: in an environment that has it (a PyTorch/pandas stack),
sqlite-utils would import it, and a second C++ runtime loaded before llama.cpp's crashed
llama.cpp while loading a model. Run in a child process with a pandas on its path that
announces itself, then store + model load as the app's pipeline does."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.fixtures.tiny_qwen3moe import write_tiny_qwen3moe

REPO = Path(__file__).resolve().parents[2]


def test_store_then_model_never_imports_pandas(tmp_path):
    fake = tmp_path / "site" / "pandas"
    fake.mkdir(parents=True)
    marker = tmp_path / "pandas-was-imported"
    (fake / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    model = write_tiny_qwen3moe(tmp_path / "tiny.gguf")
    script = textwrap.dedent(
        f"""
        import sys
        from app.store.database import open_database
        store = open_database()  # the bench's order: the store first, then the model
        from app.llm.local import LocalBackend
        backend = LocalBackend({str(model)!r}, n_ctx=512, n_cpu_moe=-1)
        assert "pandas" not in sys.modules
        import pandas  # a process may still import it itself afterwards
        print("ok", backend.n_ctx)
        """
    )
    env = {"PYTHONPATH": f"{fake.parent}:{REPO}", "QWENLONG_READER_HOME": str(tmp_path / "h")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "512"]
    assert marker.exists()  # the explicit import at the end reached the fake pandas
