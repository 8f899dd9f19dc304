"""The ``models`` command: listing, hashing, fit advice, import."""

from __future__ import annotations

import argparse
import hashlib
import io
from pathlib import Path

import pytest

from app import paths
from app.cli.models import add_models_command, cmd_models
from app.errors import ModelError
from app.llm.model_hash import cached_sha256
from tests.fixtures.tiny_qwen3moe import write_tiny_qwen3moe


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_models_command(parser.add_subparsers(dest="command"))
    return parser.parse_args(["models", *argv])


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("QWENLONG_READER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_lists_demo_and_folder_models(home, demo_model, tmp_path):
    tiny = write_tiny_qwen3moe(paths.models_dir() / "tiny-qwen3moe.gguf")
    (paths.models_dir() / "broken.gguf").write_bytes(b"GGUF\x03\x00")
    out = io.StringIO()
    args = parse()
    assert args.func(args, out) == 0
    text = out.getvalue()
    assert "This machine:" in text
    assert f"* {demo_model.name} (current, bundled demo)" in text
    assert "arch:     llama" in text and "quant:    Q4_1" in text
    assert "* tiny-qwen3moe.gguf" in text
    assert "arch:     qwen3moe, 2 of 4 experts" in text
    assert hashlib.sha256(tiny.read_bytes()).hexdigest() in text
    assert "* broken.gguf\n  unusable:" in text and "truncated" in text
    for quant in ("Q4_K_M", "Q5_K_M", "Q8_0"):
        assert f"  {quant} " in text


def test_import_copies_a_valid_gguf(home, tmp_path):
    source = write_tiny_qwen3moe(tmp_path / "Tiny-Q.gguf")
    out = io.StringIO()
    assert cmd_models(parse("--import", str(source), "--no-hash"), out) == 0
    target = paths.models_dir() / "Tiny-Q.gguf"
    assert target.read_bytes() == source.read_bytes()
    assert not list(paths.models_dir().glob("*.part"))
    assert f"Imported to {target}" in out.getvalue()
    assert "sha256:" not in out.getvalue()
    # hashed while copied: its first load need not read it again
    assert cached_sha256(target) == hashlib.sha256(source.read_bytes()).hexdigest()
    # a second import is a no-op
    cmd_models(parse("--import", str(source), "--no-hash"), io.StringIO())
    assert len(list(paths.models_dir().glob("*.gguf"))) == 1


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_import_onto_a_disk_that_fills_up(home, tmp_path):
    source = write_tiny_qwen3moe(tmp_path / "Tiny-Q.gguf")
    part = paths.models_dir() / "Tiny-Q.gguf.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.symlink_to("/dev/full")  # every write fails with ENOSPC, for real
    with pytest.raises(ModelError, match="disk filled up") as error:
        cmd_models(parse("--import", str(source), "--no-hash"), io.StringIO())
    assert "Settings" in error.value.hint
    assert not part.exists() and not (paths.models_dir() / "Tiny-Q.gguf").exists()


def test_import_rejects_a_foreign_file(home, tmp_path):
    source = tmp_path / "movie.gguf"
    source.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a GGUF"):
        cmd_models(parse("--import", str(source)), io.StringIO())
    assert not list(paths.models_dir().iterdir())
