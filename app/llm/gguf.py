"""What a GGUF file is, read from its header alone (its SHA-256: app.llm.model_hash).

A QwenLong GGUF is ~20 GB, so nothing here loads weights: the header (metadata and tensor
table, a few MB) is parsed through a read-only memory map, which touches only the pages
it reads. Our own parser rather than the ``gguf`` package's GGUFReader (which llama.cpp
maintains, and which the tests use to write fixtures): the reader materialises every
vocabulary and merge string as its own numpy array (300k of them for Qwen's vocabulary)
and took 6.2 s on the 27 MB test model with Qwen's real vocabulary where this takes
0.16 s (measured 2026-12-01); the header is read on every model load and settings view.
Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.errors import ModelError

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
# Arrays longer than this (vocabulary, merges, scores) are skipped, only their length kept.
MAX_KEPT_ARRAY = 1024

# Scalar value types: struct format per GGUF type id (8 = string, 9 = array).
_SCALARS = {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d",
}  # fmt: skip

# ggml tensor type id -> (elements per block, bytes per block), from ggml.c's type_traits;
# used to find where tensor data ends, i.e. whether a download was cut short. This table
# and FILE_TYPES are checked against the gguf package's (llama.cpp's) in tests/llm/test_gguf.py.
GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
    14: (256, 210), 15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98),
    19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1),
    25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2),
    34: (256, 54), 35: (256, 66), 39: (32, 17), 40: (64, 36), 41: (128, 18),
}  # fmt: skip

# general.file_type (llama.cpp's llama_ftype) -> the name quantizers put in file names.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
    38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}  # fmt: skip

# Bytes per K or V element in llama.cpp's cache: q8_0 and q4_0 store 32 values in 34 and
# 18 bytes (a 2-byte scale per block), hence 1.0625 and 0.5625.
KV_BYTES_PER_ELEMENT = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


@dataclass(frozen=True)
class ArrayInfo:
    """A long metadata array that was skipped, not read."""

    item_type: int
    length: int


@dataclass(frozen=True)
class GGUFInfo:
    path: Path
    file_size: int
    version: int
    architecture: str
    name: str
    size_label: str
    parameter_count: int  # sum of the tensors' element counts
    file_type: int | None
    quantization: str  # e.g. "Q4_K_M"
    context_length: int
    n_layers: int
    embedding_length: int
    head_count: int
    head_count_kv: int
    key_length: int  # per-head K dimension
    value_length: int  # per-head V dimension
    expert_count: int = 0
    expert_used_count: int = 0
    vocab_size: int = 0
    chat_template: str = ""
    tensor_count: int = 0
    tensor_bytes: int = 0  # weights as stored (data section size)
    expert_bytes: int = 0  # the MoE expert tensors' share of tensor_bytes
    # Per layer (blk.N.*): bytes of the routed experts and of everything else (attention,
    # norms, router, shared expert); what a placement plan moves between GPU and RAM.
    layer_expert_bytes: tuple[int, ...] = ()
    layer_other_bytes: tuple[int, ...] = ()
    output_bytes: int = 0  # output.weight + output_norm: on the GPU only with every layer
    metadata: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def head_dim(self) -> int:
        return self.key_length

    @property
    def has_chat_template(self) -> bool:
        return bool(self.chat_template)

    @property
    def is_moe(self) -> bool:
        return self.expert_count > 1

    def kv_bytes_per_token(self, kv_type: str = "f16") -> int:
        """Bytes the KV cache grows by per token of context: every layer stores K and V
        for each KV head. Ignores sliding-window layers (no such layers in Qwen3)."""
        if kv_type not in KV_BYTES_PER_ELEMENT:
            raise ValueError(f"unknown KV cache type {kv_type!r}")
        per_layer = self.head_count_kv * (self.key_length + self.value_length)
        return math.ceil(self.n_layers * per_layer * KV_BYTES_PER_ELEMENT[kv_type])

    def describe(self) -> str:
        params = format_count(self.parameter_count)
        experts = f", {self.expert_used_count}/{self.expert_count} experts" if self.is_moe else ""
        return (
            f"{self.name or self.path.stem}: {self.architecture}, {params} parameters{experts}, "
            f"{self.quantization}, context {self.context_length:,}"
        )


def format_count(n: int) -> str:
    """A parameter count as model cards write it: 30.5B, 135M, 109K."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


class _Cursor:
    """Little-endian reads from the memory map; running off its end means truncation."""

    def __init__(self, buf: mmap.mmap, size: int) -> None:
        self.buf = buf
        self.size = size
        self.pos = 0

    def take(self, fmt: str) -> Any:
        width = struct.calcsize("<" + fmt)
        if self.pos + width > self.size:
            raise EOFError
        (value,) = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += width
        return value

    def string(self) -> str:
        length = self.take("Q")
        if self.pos + length > self.size:
            raise EOFError
        raw = self.buf[self.pos : self.pos + length]
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        length = self.take("Q")  # read before adding: `pos += take()` would lose 8 bytes
        self.pos += length
        if self.pos > self.size:
            raise EOFError

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            return self.array()
        raise ValueError(f"unknown metadata value type {vtype}")

    def array(self) -> Any:
        item_type, length = self.take("I"), self.take("Q")
        if length <= MAX_KEPT_ARRAY:
            return [self.value(item_type) for _ in range(length)]
        if item_type in _SCALARS:  # fixed width: jump over it
            self.pos += length * struct.calcsize("<" + _SCALARS[item_type])
            if self.pos > self.size:
                raise EOFError
        elif item_type == 8:
            for _ in range(length):
                self.skip_string()
        else:
            for _ in range(length):
                self.value(item_type)
        return ArrayInfo(item_type, length)


def quantization_name(file_type: object) -> str:
    if not isinstance(file_type, int):
        return "unknown"
    return FILE_TYPES.get(file_type, f"file type {file_type}")


def _bad(path: Path, what: str) -> ModelError:
    return ModelError(
        f"{path.name} {what}",
        hint="Download the GGUF again (compare its SHA-256 with the one on the model page) "
        "or choose another file.",
    )


def check_model_file(path: str | Path) -> Path:
    """A clear ModelError for a missing, unreadable or non-GGUF file."""
    model = Path(path).expanduser()
    if model.is_symlink() and not model.exists():
        raise ModelError(
            f"{model} is a broken link: the file it points to no longer exists.",
            hint="Choose the model file itself in Settings, or pass --model FILE.",
        )
    if not model.exists():
        raise ModelError(
            f"Model file not found: {model}",
            hint="Choose a GGUF file in Settings, pass --model, or set QWENLONG_READER_MODEL.",
        )
    if model.is_dir():
        raise ModelError(f"{model} is a folder; choose the .gguf file inside it.")
    try:
        with model.open("rb") as f:
            magic = f.read(4)
    except OSError as error:
        raise ModelError(
            f"The model file {model.name} cannot be read: {error.strerror}.",
            hint="Check the file's permissions (it must be readable by you), or copy it "
            "into the models folder with `python -m app models --import FILE`.",
        ) from error
    if magic != MAGIC:
        raise ModelError(
            f"{model.name} is not a GGUF model file.",
            hint="QwenLong Reader runs GGUF builds through llama.cpp, e.g. "
            "QwenLong-L1.5-30B-A3B-Q4_K_M.gguf.",
        )
    return model


def read_gguf_info(path: str | Path) -> GGUFInfo:
    """Parse a GGUF's metadata and tensor table. ModelError for a missing, non-GGUF,
    corrupt or truncated file."""
    model = check_model_file(path)
    size = model.stat().st_size
    try:
        with model.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse(model, _Cursor(buf, size))
    except EOFError:
        raise _bad(model, "is truncated: it ends inside its header.") from None
    except (ValueError, struct.error, OverflowError) as error:
        raise _bad(model, f"has a corrupt GGUF header ({error}).") from None


def _parse(path: Path, cur: _Cursor) -> GGUFInfo:
    cur.take("I")  # magic, checked by check_model_file
    version = cur.take("I")
    if version not in (2, 3):
        # A big-endian file reads as a huge version; version 1 predates 64-bit counts.
        raise ValueError(f"unsupported GGUF version {version}")
    n_tensors, n_kv = cur.take("Q"), cur.take("Q")
    if n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise ValueError("implausible tensor or key count")
    meta: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string()
        meta[key] = cur.value(cur.take("I"))
    params = data_end = expert_bytes = output_bytes = 0
    layer_experts: dict[int, int] = {}
    layer_other: dict[int, int] = {}
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.take("I")
        if n_dims > 8:
            raise ValueError(f"tensor {name} has {n_dims} dimensions")
        count = math.prod(cur.take("Q") for _ in range(n_dims))
        ggml_type, offset = cur.take("I"), cur.take("Q")
        params += count
        block = GGML_BLOCKS.get(ggml_type)
        if block:
            nbytes = count // block[0] * block[1]
            data_end = max(data_end, offset + nbytes)
            layer = _layer_of(name)
            if "_exps" in name:  # ffn_{gate,up,down}_exps: the routed experts
                expert_bytes += nbytes
                if layer is not None:
                    layer_experts[layer] = layer_experts.get(layer, 0) + nbytes
            elif layer is not None:
                layer_other[layer] = layer_other.get(layer, 0) + nbytes
            elif name.startswith("output"):
                output_bytes += nbytes
    alignment = int(meta.get("general.alignment", DEFAULT_ALIGNMENT)) or DEFAULT_ALIGNMENT
    data_start = -(-cur.pos // alignment) * alignment
    if data_start + data_end > cur.size:
        missing = data_start + data_end - cur.size
        raise _bad(
            path,
            f"is truncated: its weights need {data_start + data_end:,} bytes but the file has "
            f"{cur.size:,} ({missing:,} missing). An unfinished download?",
        )
    info = _info(path, cur.size, version, meta, params, n_tensors, data_end, expert_bytes)
    layers = range(info.n_layers)
    return replace(
        info,
        layer_expert_bytes=tuple(layer_experts.get(i, 0) for i in layers),
        layer_other_bytes=tuple(layer_other.get(i, 0) for i in layers),
        output_bytes=output_bytes,
    )


def _layer_of(name: str) -> int | None:
    """N for a tensor named blk.N.*; None for token_embd, output and the like."""
    if not name.startswith("blk."):
        return None
    number = name[4:].split(".", 1)[0]
    return int(number) if number.isdigit() else None


def _info(
    path: Path,
    size: int,
    version: int,
    meta: dict[str, Any],
    params: int,
    n_tensors: int,
    data_bytes: int,
    expert_bytes: int,
) -> GGUFInfo:
    arch = str(meta.get("general.architecture", ""))

    def num(key: str, default: int = 0) -> int:
        value = meta.get(f"{arch}.{key}", default)
        if isinstance(value, list):  # per-layer values (e.g. head_count_kv): the largest
            value = max(value, default=default)
        return int(value) if isinstance(value, (int, float)) else default

    n_embd, n_head = num("embedding_length"), num("attention.head_count")
    head_dim = num("attention.key_length") or (n_embd // n_head if n_head else 0)
    file_type = meta.get("general.file_type")
    tokens = meta.get("tokenizer.ggml.tokens")
    vocab = tokens.length if isinstance(tokens, ArrayInfo) else len(tokens or [])
    return GGUFInfo(
        path=path,
        file_size=size,
        version=version,
        architecture=arch,
        name=str(meta.get("general.name", "")),
        size_label=str(meta.get("general.size_label", "")),
        parameter_count=params,
        file_type=file_type if isinstance(file_type, int) else None,
        quantization=quantization_name(file_type),
        context_length=num("context_length"),
        n_layers=num("block_count"),
        embedding_length=n_embd,
        head_count=n_head,
        head_count_kv=num("attention.head_count_kv") or n_head,  # absent: no GQA
        key_length=head_dim,
        value_length=num("attention.value_length") or head_dim,
        expert_count=num("expert_count"),
        expert_used_count=num("expert_used_count"),
        vocab_size=num("vocab_size") or vocab,
        chat_template=str(meta.get("tokenizer.chat_template") or ""),
        tensor_count=n_tensors,
        tensor_bytes=data_bytes,
        expert_bytes=expert_bytes,
        metadata=meta,
    )
