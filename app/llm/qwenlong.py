"""QwenLong-L1.5-30B-A3B as published: its quantizations' sizes and its shape, for
planning and choosing a download before a file is on disk."""

from __future__ import annotations

from pathlib import Path

from app.llm.gguf import GGUFInfo

# Published GGUF sizes of QwenLong-L1.5-30B-A3B, for "which one should I download?".
QWENLONG_QUANTS = {"Q4_K_M": 18_700_000_000, "Q5_K_M": 21_800_000_000, "Q8_0": 32_600_000_000}
# The routed experts are 29.0B of its 30.5B parameters (48 layers x 128 experts x 3
# matrices of 2048 x 768); quantized alike, they are ~95% of the file.
QWENLONG_EXPERT_SHARE = 0.95


def qwenlong_reference(quant: str) -> GGUFInfo:
    """A GGUFInfo for a QwenLong-L1.5-30B-A3B quantization not on disk: the
    Qwen3-30B-A3B-Thinking-2507 architecture it is built on, and the published size."""
    size = QWENLONG_QUANTS[quant]
    return GGUFInfo(
        path=Path(f"QwenLong-L1.5-30B-A3B-{quant}.gguf"),
        file_size=size,
        version=3,
        architecture="qwen3moe",
        name="QwenLong-L1.5-30B-A3B",
        size_label="30B-A3B",
        parameter_count=30_532_122_624,
        file_type=None,
        quantization=quant,
        context_length=262_144,
        n_layers=48,
        embedding_length=2048,
        head_count=32,
        head_count_kv=4,
        key_length=128,
        value_length=128,
        expert_count=128,
        expert_used_count=8,
        vocab_size=151_936,
        tensor_bytes=size,
        expert_bytes=int(size * QWENLONG_EXPERT_SHARE),
    )
