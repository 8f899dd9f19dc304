"""The cached SHA-256 of model files (real files, a real cache file)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from app import paths
from app.errors import Cancelled
from app.llm import model_hash
from app.llm.backend import CancelToken
from app.llm.model_hash import HASH_CACHE_NAME, file_sha256
from tests.fixtures.tiny_qwen3moe import write_tiny_qwen3moe


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_qwen3moe(tmp_path_factory.mktemp("tiny") / "tiny-qwen3moe.gguf")


def test_sha256_is_streamed_and_cached(tiny):
    expected = hashlib.sha256(tiny.read_bytes()).hexdigest()
    seen: list[tuple[int, int]] = []
    before = dict(model_hash.hash_stats)
    assert file_sha256(tiny, progress=lambda done, total: seen.append((done, total))) == expected
    size = tiny.stat().st_size
    assert seen[-1] == (size, size)
    assert model_hash.hash_stats["bytes_hashed"] == before["bytes_hashed"] + size
    assert (paths.cache_dir() / "model-hashes.json").is_file()
    # the second call reads nothing
    assert file_sha256(tiny) == expected
    assert model_hash.hash_stats["bytes_hashed"] == before["bytes_hashed"] + size
    assert model_hash.hash_stats["cache_hits"] == before["cache_hits"] + 1


def test_sha256_recomputed_when_file_changes(tmp_path):
    file = tmp_path / "m.gguf"
    file.write_bytes(b"GGUF one")
    first = file_sha256(file)
    file.write_bytes(b"GGUF two")
    os.utime(file, ns=(1, 2))  # a different mtime even on coarse-clock filesystems
    assert file_sha256(file) == hashlib.sha256(b"GGUF two").hexdigest() != first


def test_sha256_cancel(tiny):
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        file_sha256(tiny, cancel=cancel)


def test_an_unwritable_cache_still_gives_the_hash(tmp_path, caplog):
    (paths.cache_dir() / HASH_CACHE_NAME).mkdir(parents=True)  # a folder where the file goes
    file = tmp_path / "m.gguf"
    file.write_bytes(b"GGUF three")
    assert file_sha256(file) == hashlib.sha256(b"GGUF three").hexdigest()
    assert "could not cache the SHA-256 of m.gguf" in caplog.text
