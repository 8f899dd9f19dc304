"""GGUF header parsing (real files, no weights loaded)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from app.errors import ModelError
from app.llm.gguf import FILE_TYPES, ArrayInfo, read_gguf_info
from tests.fixtures.tiny_qwen3moe import write_tiny_qwen3moe


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_qwen3moe(tmp_path_factory.mktemp("tiny") / "tiny-qwen3moe.gguf")


def test_demo_model(demo_model):
    info = read_gguf_info(demo_model)
    assert info.architecture == "llama"
    assert info.size_label == "135M"
    assert info.parameter_count == 134_515_008
    assert (info.file_type, info.quantization) == (3, "Q4_1")
    assert info.context_length == 8192
    assert (info.n_layers, info.embedding_length) == (30, 576)
    assert (info.head_count, info.head_count_kv, info.head_dim) == (9, 3, 64)  # 576 / 9
    assert info.expert_count == 0 and not info.is_moe
    assert info.vocab_size == 49_152
    assert info.has_chat_template and "<|im_start|>" in info.chat_template
    assert info.file_size == demo_model.stat().st_size
    assert info.tensor_count == 272
    # 30 layers x 3 KV heads x (64 + 64) x 2 bytes
    assert info.kv_bytes_per_token("f16") == 23_040


def test_tiny_qwen3moe(tiny):
    info = read_gguf_info(tiny)
    assert info.architecture == "qwen3moe"
    assert (info.expert_count, info.expert_used_count) == (4, 2)
    assert (info.n_layers, info.head_count, info.head_count_kv, info.head_dim) == (2, 4, 2, 16)
    assert info.quantization == "F32"
    assert info.chat_template.rstrip().endswith("{%- endif %}")
    assert "<think>" in info.chat_template
    # embeddings + output 2 x 151,936 (Qwen3's vocabulary) x 64, output norm 64, per layer
    # 37,280 (norms 64+16+16+64, q/o 2 x 4,096, k/v 2 x 2,048, router 256, experts
    # 3 x 4 x 32 x 64 = 24,576)
    assert info.parameter_count == 2 * 151_936 * 64 + 64 + 2 * 37_280
    assert info.expert_bytes == 2 * 24_576 * 4  # F32
    assert info.kv_bytes_per_token() == 2 * 2 * 32 * 2


def test_header_is_read_without_reading_the_weights(tiny, tmp_path):
    # A sparse file: a real header followed by 2 GB of holes that were never written.
    # Parsing it must not touch that data (fast, and no page-ins).
    big = tmp_path / "sparse.gguf"
    data = tiny.read_bytes()
    with big.open("wb") as f:
        f.write(data)
        f.truncate(2_000_000_000)
    info = read_gguf_info(big)
    assert info.file_size == 2_000_000_000
    assert info.tensor_bytes < len(data)


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        read_gguf_info(tmp_path / "nope.gguf")


def test_not_gguf(tmp_path):
    text = tmp_path / "notes.gguf"
    text.write_text("these are not weights")
    with pytest.raises(ModelError, match="not a GGUF"):
        read_gguf_info(text)


def test_truncated_header(tiny, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny.read_bytes()[:1000])  # inside the tokenizer arrays
    with pytest.raises(ModelError, match="damaged or cut short"):
        read_gguf_info(cut)


def test_truncated_weights(tiny, tmp_path):
    cut = tmp_path / "partial-download.gguf"
    cut.write_bytes(tiny.read_bytes()[:-100])
    with pytest.raises(ModelError, match=r"truncated.*100 missing"):
        read_gguf_info(cut)


def test_corrupt_version(tiny, tmp_path):
    bad = tmp_path / "bad.gguf"
    data = bytearray(tiny.read_bytes())
    data[4:8] = struct.pack("<I", 99)
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupt GGUF header"):
        read_gguf_info(bad)


# -- against llama.cpp's own reader (the gguf package, a test dependency) ------------------
def test_agrees_with_the_gguf_package_reader(demo_model):
    """llama.cpp's C reader (what the app uses, for speed: docs/libraries.md) and its
    Python GGUFReader agree, key by key and tensor by tensor."""
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(demo_model)
    info = read_gguf_info(demo_model)
    keys = {name for name in reader.fields if not name.startswith("GGUF.")}
    assert set(info.metadata) == keys
    for field in reader.fields.values():
        if field.name.startswith("GGUF."):  # the reader's own header pseudo-fields
            continue
        ours = info.metadata[field.name]
        if field.types[0] == GGUFValueType.ARRAY:
            length = len(field.data)
            assert (ours.length if isinstance(ours, ArrayInfo) else len(ours)) == length
            if isinstance(ours, list) and field.types[-1] != GGUFValueType.STRING:
                assert ours == [field.parts[i].tolist()[0] for i in field.data], field.name
        else:
            assert ours == field.contents(), field.name
    assert info.tensor_count == len(reader.tensors)
    assert info.parameter_count == sum(int(t.n_elements) for t in reader.tensors)
    data_end = max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)
    assert info.tensor_bytes == data_end - reader.data_offset


def test_file_type_names_match_llama_cpp():
    """A new file type in llama.cpp shows up here, not as 'file type N'."""
    import gguf as reference

    names = {
        int(kind): kind.name.removeprefix("MOSTLY_").removeprefix("ALL_")
        for kind in reference.LlamaFileType
        if kind.name != "GUESSED"
    }
    assert names == FILE_TYPES


def test_a_tensor_of_a_type_llama_cpp_does_not_know_is_refused(tiny, tmp_path):
    """llama.cpp's reader checks what the loader would: an unknown ggml type is refused
    here, not when the model is loaded (a hand parser used to count it as zero bytes)."""
    data = bytearray(tiny.read_bytes())
    name = b"token_embd.weight"
    at = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    n_dims = struct.unpack_from("<I", data, at)[0]
    data[at + 4 + 8 * n_dims : at + 8 + 8 * n_dims] = struct.pack("<I", 250)
    bad = tmp_path / "unknown-type.gguf"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="damaged or cut short"):
        read_gguf_info(bad)


def test_headers_are_read_without_loading_libllama(demo_model):
    """A build whose libllama cannot load (a CUDA edition missing its runtime) still reads
    model headers: only libggml-base is opened."""
    import subprocess
    import sys

    script = (
        "import sys; from app.llm.gguf import read_gguf_info; "
        f"info = read_gguf_info({str(demo_model)!r}); "
        "assert 'llama_cpp.llama_cpp' not in sys.modules, 'libllama was loaded'; "
        "print(info.tensor_count)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "272"
