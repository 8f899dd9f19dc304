"""What a GGUF file is, read from its header alone (its SHA-256: app.llm.model_hash).

A QwenLong GGUF is ~20 GB, so nothing here loads weights: the header (metadata and tensor
table, a few MB) is read by llama.cpp's own GGUF reader (``gguf_init_from_file`` in
libggml-base, the library llama-cpp-python ships, through ctypes), so the app sees a file
exactly as the loader will: the same checks (types, shapes, offsets, sizes, overflow) and
every ggml type llama.cpp knows, with no format tables of ours to keep up to date. Not the
``gguf`` package's GGUFReader: it materialises every vocabulary and merge string as its own
numpy array (300k of them for Qwen's vocabulary) and took 6.2 s on the 27 MB test model
with Qwen's real vocabulary, where the C reader takes 0.03 s (measured 2026-12-02); the
header is read on every model load and settings view. The package stays a test dependency:
it writes the fixtures and is the reference the tests compare this reader with.
Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import ctypes
import functools
import math
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from app.errors import ModelError
from app.llm.ggml_lib import ggml_libraries, library_dir, symbol

MAGIC = b"GGUF"
# Arrays longer than this (vocabulary, merges, scores) are skipped, only their length kept.
MAX_KEPT_ARRAY = 1024

# gguf.h's enum gguf_type -> the C type of a scalar value (8 is a string, 9 an array).
_C_TYPES: dict[int, Any] = {
    0: ctypes.c_uint8, 1: ctypes.c_int8, 2: ctypes.c_uint16, 3: ctypes.c_int16,
    4: ctypes.c_uint32, 5: ctypes.c_int32, 6: ctypes.c_float, 7: ctypes.c_bool,
    10: ctypes.c_uint64, 11: ctypes.c_int64, 12: ctypes.c_double,
}  # fmt: skip
GGUF_STRING, GGUF_ARRAY = 8, 9

# general.file_type (llama.cpp's llama_ftype) -> the name quantizers put in file names
# (libllama does not export its own table); checked against the gguf package's in tests.
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
            hint="Check the file's permissions: it must be readable by you (ask whoever "
            "owns it, or copy it somewhere you can read it).",
        ) from error
    if magic != MAGIC:
        raise ModelError(
            f"{model.name} is not a GGUF model file.",
            hint="QwenLong Reader runs GGUF builds through llama.cpp, e.g. "
            "QwenLong-L1.5-30B-A3B-Q4_K_M.gguf.",
        )
    return model


class _InitParams(ctypes.Structure):
    # gguf.h: struct gguf_init_params { bool no_alloc; struct ggml_context ** ctx; }
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]


@functools.lru_cache(maxsize=1)
def _gguf() -> SimpleNamespace | None:
    """gguf.h's reading functions, typed; None when this llama.cpp build lacks one."""
    ctx, i64, size, text, kind = (
        ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_int,
    )  # fmt: skip
    signatures = {
        "init_from_file": (ctx, text, _InitParams),
        "free": (None, ctx),
        "get_n_kv": (i64, ctx),
        "get_key": (text, ctx, i64),
        "get_kv_type": (kind, ctx, i64),
        "get_val_data": (ctx, ctx, i64),
        "get_val_str": (text, ctx, i64),
        "get_arr_type": (kind, ctx, i64),
        "get_arr_n": (size, ctx, i64),
        "get_arr_data": (ctx, ctx, i64),
        "get_arr_str": (text, ctx, i64, size),
        "get_n_tensors": (i64, ctx),
        "get_tensor_name": (text, ctx, i64),
        "get_tensor_ne": (ctypes.POINTER(i64), ctx, i64),  # GGML_MAX_DIMS (4) counts
        "get_tensor_offset": (size, ctx, i64),
        "get_tensor_size": (size, ctx, i64),
        "get_data_offset": (size, ctx),
    }
    libraries = ggml_libraries(("ggml-base", "ggml"))
    found = {name: symbol(libraries, f"gguf_{name}", *sig) for name, sig in signatures.items()}
    return None if None in found.values() else SimpleNamespace(**found)


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", errors="replace") if raw else ""


def _value(gguf: SimpleNamespace, ctx: int, key: int) -> Any:
    """One metadata value; an array longer than MAX_KEPT_ARRAY as its ArrayInfo."""
    kind = gguf.get_kv_type(ctx, key)
    if kind == GGUF_STRING:
        return _text(gguf.get_val_str(ctx, key))
    if kind != GGUF_ARRAY:
        return _C_TYPES[kind].from_address(gguf.get_val_data(ctx, key)).value
    item, length = gguf.get_arr_type(ctx, key), gguf.get_arr_n(ctx, key)
    if length > MAX_KEPT_ARRAY or item not in (*_C_TYPES, GGUF_STRING):
        return ArrayInfo(item, length)
    if item == GGUF_STRING:
        return [_text(gguf.get_arr_str(ctx, key, i)) for i in range(length)]
    if not length:
        return []
    return list((_C_TYPES[item] * length).from_address(gguf.get_arr_data(ctx, key)))


def read_gguf_info(path: str | Path) -> GGUFInfo:
    """The metadata and tensor table of a GGUF, read by llama.cpp. ModelError for a
    missing, non-GGUF, corrupt or truncated file."""
    model = check_model_file(path)
    with model.open("rb") as f:
        head = f.read(8)
    if len(head) < 8:
        raise _bad(model, "is truncated: it ends inside its header.")
    version = struct.unpack_from("<I", head, 4)[0]
    if version not in (2, 3):  # a big-endian file reads as a huge version
        raise _bad(model, f"has a corrupt GGUF header (version {version}; llama.cpp reads 2, 3).")
    gguf = _gguf()
    if gguf is None:
        raise ModelError(
            f"This llama.cpp build has no GGUF reader (no gguf functions in {library_dir()}).",
            hint="Reinstall QwenLong Reader (or llama-cpp-python).",
        )
    ctx = gguf.init_from_file(str(model).encode("utf-8"), _InitParams(True, None))
    if not ctx:  # llama.cpp has logged why
        raise _bad(model, "is damaged or cut short: llama.cpp cannot read its header.")
    try:
        meta = {
            _text(gguf.get_key(ctx, i)): _value(gguf, ctx, i) for i in range(gguf.get_n_kv(ctx))
        }
        return _summarise(model, version, meta, gguf, ctx)
    finally:
        gguf.free(ctx)


def _summarise(
    path: Path, version: int, meta: dict[str, Any], gguf: SimpleNamespace, ctx: int
) -> GGUFInfo:
    """Parameters, bytes per layer (experts apart), and whether the weights are all there."""
    params = data_end = expert_bytes = output_bytes = 0
    layer_experts: dict[int, int] = {}
    layer_other: dict[int, int] = {}
    n_tensors = gguf.get_n_tensors(ctx)
    for i in range(n_tensors):
        name, ne, nbytes = (
            _text(gguf.get_tensor_name(ctx, i)),
            gguf.get_tensor_ne(ctx, i),
            gguf.get_tensor_size(ctx, i),
        )
        params += ne[0] * ne[1] * ne[2] * ne[3]
        data_end = max(data_end, gguf.get_tensor_offset(ctx, i) + nbytes)
        layer = _layer_of(name)
        if "_exps" in name:  # ffn_{gate,up,down}_exps: the routed experts
            expert_bytes += nbytes
            if layer is not None:
                layer_experts[layer] = layer_experts.get(layer, 0) + nbytes
        elif layer is not None:
            layer_other[layer] = layer_other.get(layer, 0) + nbytes
        elif name.startswith("output"):
            output_bytes += nbytes
    size, needed = path.stat().st_size, gguf.get_data_offset(ctx) + data_end
    if needed > size:
        raise _bad(
            path,
            f"is truncated: its weights need {needed:,} bytes but the file has {size:,} "
            f"({needed - size:,} missing). An unfinished download?",
        )
    info = _info(path, size, version, meta, params, n_tensors, data_end, expert_bytes)
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
