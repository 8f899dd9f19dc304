"""Automatic placement ("fit"): which layers and experts go to the GPU, how large a
context, which KV cache, before a model is loaded.

Like llama-server's ``--fit``, but aware of the memory agent: the context is what sets
the agent's chunk and memory budgets (a 128K context reads a document in 32K-token
chunks with a 15K memory, as the paper does), so the plan first takes the largest context
up to ``max_ctx`` that fits the machine at all, then the fastest placement at that
context, then the most exact KV cache. The search order is fixed and every candidate's
memory grows with what it puts on the GPU, so more memory can only move the answer to an
earlier (better) candidate: a larger machine never gets a worse plan.

Memory model (what llama.cpp allocates, to within a few hundred MB): per layer, its
non-expert weights, its routed experts and its share of the KV cache, each either on the
GPU or in RAM; the token embeddings always in RAM; the output layer on the GPU only when
every layer is; a compute buffer where the layers run; a fixed overhead on each side.
Layers go to the GPU from the last one down (llama.cpp's order), and ``n_cpu_moe`` keeps
the experts of the first N layers in RAM (``--n-cpu-moe N``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from app.llm.gguf import KV_BYTES_PER_ELEMENT, GGUFInfo

MiB = 1024**2
GiB = 1024**3
# The app itself (Python, Qt, the document, llama.cpp's host buffers): always in RAM.
HOST_OVERHEAD = 768 * MiB
# CUDA/Metal context and cuBLAS workspace: VRAM taken as soon as anything is offloaded.
GPU_OVERHEAD = 512 * MiB
# Scratch for one 512-token batch of QwenLong with flash attention (llama.cpp logs
# ~300-500 MiB as "compute buffer size"), plus the logits of the output layer.
COMPUTE_BASE = 384 * MiB
N_UBATCH = 512
# A plan may use this share of what is free: the rest is for the OS, the file cache,
# other programs and the estimate's own error.
SAFETY = 0.90
MIN_CTX = 4096
DEFAULT_MAX_CTX = 131_072  # the paper's full-context limit; raisable to the native 262,144
CONTEXT_STEPS = (262_144, 196_608, 131_072, 98_304, 65_536, 49_152, 32_768, 24_576, 16_384,
                 12_288, 8_192, 6_144, 4_096)  # fmt: skip


@dataclass(frozen=True)
class Machine:
    """What a plan may use: free RAM, free VRAM (0: no usable GPU), and whether the GPU
    shares the RAM (Apple silicon: then ``vram_bytes`` is the GPU's working-set limit)."""

    ram_bytes: int
    vram_bytes: int = 0
    unified: bool = False
    gpu_name: str = ""

    @property
    def has_gpu(self) -> bool:
        return self.vram_bytes > 0


@dataclass(frozen=True)
class Plan:
    n_gpu_layers: int  # as llama.cpp takes it: -1 = every layer and the output layer
    n_cpu_moe: int  # experts of the first N layers stay in RAM (-1 or n_layers: all)
    n_ctx: int
    kv_type: str
    flash_attn: bool
    vram_bytes: int
    ram_bytes: int
    fits: bool
    reason: str
    rank: tuple[int, int, int] = (0, 0, 0)  # position in the search order: lower is better

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("rank")
        return data

    def describe(self) -> str:
        if self.n_gpu_layers < 0:
            where = "every layer on the GPU"
            if self.n_cpu_moe:
                where += f", experts of {self.n_cpu_moe} layers in RAM"
        elif self.n_gpu_layers:
            where = f"{self.n_gpu_layers} layers on the GPU"
        else:
            where = "CPU only"
        fa = ", flash attention" if self.flash_attn else ""
        gpu = f"{self.vram_bytes / 1e9:.1f} GB on the GPU and " if self.vram_bytes else ""
        return (
            f"context {self.n_ctx:,}, {self.kv_type} KV cache{fa}, {where}: about "
            f"{gpu}{self.ram_bytes / 1e9:.1f} GB of RAM"
        )


@dataclass(frozen=True)
class Shape:
    """The sizes a plan needs, from a GGUF header (or QwenLong's published figures)."""

    n_layers: int
    layer_other: tuple[int, ...]
    layer_experts: tuple[int, ...]
    output_bytes: int
    embedding_bytes: int
    kv_elements_per_token_layer: int  # K + V elements per token, per layer
    n_head: int
    context_length: int

    @property
    def is_moe(self) -> bool:
        return any(self.layer_experts)

    @classmethod
    def of(cls, info: GGUFInfo) -> Shape:
        n = max(info.n_layers, 1)
        if len(info.layer_other_bytes) == info.n_layers and info.n_layers:
            other, experts = info.layer_other_bytes, info.layer_expert_bytes
            embedding = max(0, info.tensor_bytes - sum(other) - sum(experts) - info.output_bytes)
            output = info.output_bytes
        else:  # a reference without a tensor table: spread the published size evenly
            vocab_rows = info.vocab_size * info.embedding_length
            # token_embd and output, each about a byte per weight at Q4_K_M..Q8_0 sizes
            ratio = info.tensor_bytes / max(info.parameter_count, 1)
            embedding = output = int(vocab_rows * ratio)
            rest = max(0, info.tensor_bytes - embedding - output)
            per_experts = info.expert_bytes // n
            other = tuple([(rest - info.expert_bytes) // n] * n)
            experts = tuple([per_experts] * n)
        return cls(
            n_layers=info.n_layers,
            layer_other=tuple(other),
            layer_experts=tuple(experts),
            output_bytes=output,
            embedding_bytes=embedding,
            kv_elements_per_token_layer=info.head_count_kv * (info.key_length + info.value_length),
            n_head=max(info.head_count, 1),
            context_length=info.context_length or MIN_CTX,
        )

    def kv_bytes(self, kv_type: str, n_ctx: int, layers: int) -> int:
        per = self.kv_elements_per_token_layer * KV_BYTES_PER_ELEMENT[kv_type]
        return math.ceil(per * n_ctx * layers)


def memory_needed(
    shape: Shape,
    *,
    n_gpu_layers: int,
    n_cpu_moe: int,
    n_ctx: int,
    kv_type: str,
    flash_attn: bool,
) -> tuple[int, int]:
    """(VRAM, RAM) bytes for one placement."""
    n = shape.n_layers
    on_gpu = n if n_gpu_layers < 0 else min(n_gpu_layers, n)
    first_gpu = n - on_gpu
    cpu_moe = n if n_cpu_moe < 0 else min(n_cpu_moe, n)
    vram = ram = 0
    for i in range(n):
        if i >= first_gpu:
            vram += shape.layer_other[i]
            if i < cpu_moe:
                ram += shape.layer_experts[i]
            else:
                vram += shape.layer_experts[i]
        else:
            ram += shape.layer_other[i] + shape.layer_experts[i]
    vram += shape.kv_bytes(kv_type, n_ctx, on_gpu)
    ram += shape.kv_bytes(kv_type, n_ctx, n - on_gpu)
    ram += shape.embedding_bytes + HOST_OVERHEAD
    if n_gpu_layers < 0:
        vram += shape.output_bytes
    else:
        ram += shape.output_bytes
    compute = COMPUTE_BASE
    if not flash_attn:  # the f32 attention scores of a batch: n_ctx x n_ubatch x heads
        compute += n_ctx * N_UBATCH * shape.n_head * 4
    if on_gpu:
        vram += compute + GPU_OVERHEAD
    else:
        ram += compute
    return vram, ram


def _fits(machine: Machine, vram: int, ram: int) -> bool:
    if machine.unified:  # one pool: the GPU's part is limited, and both share the RAM
        return vram <= machine.vram_bytes * SAFETY and vram + ram <= machine.ram_bytes * SAFETY
    if vram and vram > machine.vram_bytes * SAFETY:
        return False
    return ram <= machine.ram_bytes * SAFETY


def _contexts(shape: Shape, max_ctx: int, min_ctx: int) -> list[int]:
    """Candidate contexts, largest first. ``min_ctx == max_ctx``: exactly that context
    (the user chose it), even beyond the model's trained length."""
    if min_ctx >= max_ctx:
        return [max_ctx]
    cap = max(min_ctx, min(max_ctx, shape.context_length))
    steps = [c for c in CONTEXT_STEPS if min_ctx <= c <= cap]
    return sorted({cap, *steps}, reverse=True)


def _placements(shape: Shape, machine: Machine) -> list[tuple[int, int]]:
    """(n_gpu_layers, n_cpu_moe), fastest first."""
    n = shape.n_layers
    found: list[tuple[int, int]] = []
    if machine.has_gpu:
        if shape.is_moe and not machine.unified:
            found += [(-1, m) for m in range(n + 1)]  # every layer, experts of m in RAM
            found += [(g, n) for g in range(n - 1, 0, -1)]  # some layers, experts in RAM
        else:  # a dense model, or one memory pool where the experts' place is moot
            found += [(-1, 0)] + [(g, 0) for g in range(n - 1, 0, -1)]
    found.append((0, 0))
    return found


def _placement_rank(shape: Shape, gpu_layers: int, cpu_moe: int) -> int:
    """A placement's speed rank on any machine (0 fastest): every layer on the GPU with
    the fewest experts in RAM, then fewer layers on the GPU, then the CPU alone."""
    n = shape.n_layers
    if gpu_layers < 0:
        return cpu_moe if cpu_moe >= 0 else n
    if gpu_layers == 0:
        return 2 * n + 1
    return n + 1 + (n - 1 - gpu_layers)


def _kv_options(machine: Machine) -> list[tuple[str, bool]]:
    """f16 first (exact), q8_0 when only it fits (its loss is negligible; it needs flash
    attention). Flash attention always: it is faster on GPUs and not slower on CPUs, and
    it drops the n_ctx x batch x heads f32 score buffer (8.6 GB for QwenLong at 128K)."""
    return [("f16", True), ("q8_0", True)]


def plan_placement(
    info: GGUFInfo, machine: Machine, *, max_ctx: int = DEFAULT_MAX_CTX, min_ctx: int = MIN_CTX
) -> Plan:
    """The best placement of ``info`` on ``machine``; ``fits`` is False (with the
    smallest setup and a reason) when nothing fits."""
    shape = Shape.of(info)
    contexts = _contexts(shape, max_ctx, min(min_ctx, shape.context_length, max_ctx))
    placements = _placements(shape, machine)
    kvs = _kv_options(machine)
    for ci, n_ctx in enumerate(contexts):
        for gpu_layers, cpu_moe in placements:
            for ki, (kv, fa) in enumerate(kvs):
                vram, ram = memory_needed(
                    shape,
                    n_gpu_layers=gpu_layers,
                    n_cpu_moe=cpu_moe,
                    n_ctx=n_ctx,
                    kv_type=kv,
                    flash_attn=fa,
                )
                if _fits(machine, vram, ram):
                    rank = (ci, _placement_rank(shape, gpu_layers, cpu_moe), ki)
                    plan = Plan(gpu_layers, cpu_moe, n_ctx, kv, fa, vram, ram, True, "", rank)
                    return _with_reason(plan, shape, machine, max_ctx)
    n_ctx = contexts[-1] if contexts else MIN_CTX
    vram, ram = memory_needed(
        shape, n_gpu_layers=0, n_cpu_moe=0, n_ctx=n_ctx, kv_type="q8_0", flash_attn=True
    )
    reason = (
        f"Nothing fits: even CPU-only at a {n_ctx:,}-token context with a q8_0 KV cache needs "
        f"about {ram / 1e9:.1f} GB of RAM, and a plan uses at most "
        f"{machine.ram_bytes * SAFETY / 1e9:.1f} GB of the {machine.ram_bytes / 1e9:.1f} GB free "
        f"({1 - SAFETY:.0%} stays for the system and the estimate's error). Choose a smaller "
        "quantization, close other programs, or use a server."
    )
    return Plan(0, 0, n_ctx, "q8_0", True, 0, ram, False, reason, (len(contexts), 0, 0))


def _with_reason(plan: Plan, shape: Shape, machine: Machine, max_ctx: int) -> Plan:
    parts = []
    cap = min(max_ctx, shape.context_length)
    if plan.n_ctx < cap:
        parts.append(f"the largest context that fits is {plan.n_ctx:,} (of {cap:,} asked)")
    else:
        parts.append(f"the full {plan.n_ctx:,}-token context fits")
    n = shape.n_layers
    if not machine.has_gpu:
        parts.append("no usable GPU: everything runs on the CPU")
    elif plan.n_gpu_layers < 0 and not plan.n_cpu_moe:
        parts.append("the whole model fits on the GPU")
    elif plan.n_gpu_layers < 0:
        moved = sum(shape.layer_experts[: min(plan.n_cpu_moe, n)])
        parts.append(
            f"every layer's attention is on the GPU and the experts of {plan.n_cpu_moe} of "
            f"{n} layers ({moved / 1e9:.1f} GB, only 8 of 128 used per token) stay in RAM"
        )
    elif plan.n_gpu_layers:
        rest = ", their experts in RAM" if plan.n_cpu_moe else "; the others run on the CPU"
        parts.append(f"{plan.n_gpu_layers} of {n} layers fit on the GPU{rest}")
    else:
        parts.append("the GPU cannot hold even one layer with this context")
    if plan.kv_type != "f16":
        parts.append("a q8_0 KV cache halves the cache to make it fit")
    reason = "; ".join(parts)
    return Plan(**{**asdict(plan), "reason": reason[0].upper() + reason[1:] + "."})


def machine_of(hardware: Any) -> Machine:
    """A Machine from app.llm.hardware.Hardware: a GPU counts only when this llama.cpp
    build can offload to it."""
    gpu = hardware.gpu if getattr(hardware, "can_offload", False) else None
    if gpu is None:
        return Machine(ram_bytes=hardware.available_ram)
    return Machine(
        ram_bytes=hardware.available_ram,
        vram_bytes=gpu.free_bytes,
        unified=gpu.unified,
        gpu_name=gpu.name,
    )
