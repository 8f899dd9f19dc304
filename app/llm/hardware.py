"""This machine's memory and GPU, and whether a model fits it at a given context size.

The estimates are what llama.cpp allocates, to within a few hundred MB: the weights (the
file size: they are mmapped or copied to VRAM as stored), the KV cache (grows linearly
with the context), and a compute buffer. Measured on the tiny qwen3moe test model at
n_ctx 4096, 4 heads, no flash attention: 40.8 MiB, of which the f32 attention scores
(4096 x 512 x 4 heads x 4 B = 32 MiB) are the part that scales with the context.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from app.errors import ModelError
from app.llm.gguf import GGUFInfo

MiB = 1024**2
GiB = 1024**3
# The app itself (Python, Qt, llama.cpp host buffers, the token embeddings, which stay in
# RAM even when every layer is offloaded): always in RAM.
HOST_OVERHEAD = 512 * MiB
# llama.cpp's scratch for one 512-token batch of a 30B-A3B MoE with flash attention
# (~300-500 MiB in its "compute buffer size" log line); on the GPU when layers are there.
COMPUTE_BUFFER = 512 * MiB
# CUDA/Metal context, cuBLAS workspace: VRAM used as soon as anything is offloaded.
GPU_CONTEXT = 512 * MiB
# Apple silicon lets the GPU wire about 2/3-3/4 of unified memory
# (recommendedMaxWorkingSetSize); 70% is the figure llama.cpp users quote.
METAL_SHARE = 0.70
# Fits when the need is at most this share of what is available: the rest is for the OS,
# the file cache and the document being read.
FIT_SHARE = 0.90
MIN_CTX = 4096
KV_OPTIONS = (("f16", False), ("f16", True), ("q8_0", True))  # (KV type, flash attention)

FITS, TIGHT, NO_FIT = "fits", "tight", "does-not-fit"


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def human_size(n: float) -> str:
    """Decimal units, as model pages list GGUF sizes."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class GPU:
    kind: str  # "cuda" | "metal"
    name: str
    total_bytes: int
    free_bytes: int
    unified: bool = False  # shares system RAM (Apple silicon)


@dataclass(frozen=True)
class Hardware:
    total_ram: int
    available_ram: int
    gpu: GPU | None = None
    gpu_offload: bool = False  # the installed llama.cpp has a GPU backend
    cpu_count: int = 1
    system: str = ""

    @property
    def can_offload(self) -> bool:
        return self.gpu is not None and self.gpu_offload

    def describe(self) -> str:
        ram = f"{gb(self.total_ram)} RAM ({gb(self.available_ram)} available)"
        if self.gpu is None:
            gpu = "no GPU"
        else:
            gpu = f"{self.gpu.name}, {gb(self.gpu.free_bytes)} of {gb(self.gpu.total_bytes)} free"
            if not self.gpu_offload:
                gpu += " (unused: this llama.cpp build is CPU-only)"
        return f"{ram}, {self.cpu_count} CPU cores, {gpu}"


# -- detection ------------------------------------------------------------------------
def parse_meminfo(text: str) -> tuple[int, int]:
    """(total, available) bytes from /proc/meminfo."""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * 1024  # kB
    total = values.get("MemTotal", 0)
    return total, values.get("MemAvailable", values.get("MemFree", total))


def parse_vm_stat(text: str) -> int:
    """Available bytes from macOS ``vm_stat``: free, inactive, speculative, purgeable."""
    page = 4096
    first = text.splitlines()[0] if text else ""
    if "page size of" in first:
        page = int(first.split("page size of")[1].split()[0])
    pages = 0
    for line in text.splitlines()[1:]:
        key, _, value = line.partition(":")
        if key.strip() in ("Pages free", "Pages inactive", "Pages speculative", "Pages purgeable"):
            pages += int(value.strip().rstrip("."))
    return pages * page


def parse_nvidia_smi(text: str) -> GPU | None:
    """``nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv,noheader,
    nounits`` output (MiB); several GPUs are pooled, as llama.cpp splits layers."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            gpus.append((parts[0], int(parts[1]) * MiB, int(parts[2]) * MiB))
    if not gpus:
        return None
    name = gpus[0][0] if len(gpus) == 1 else f"{len(gpus)} x {gpus[0][0]}"
    return GPU("cuda", name, sum(g[1] for g in gpus), sum(g[2] for g in gpus))


def _run(*cmd: str) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=3, check=True)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout


def _cgroup_limit() -> int | None:
    """The container's memory limit (cgroup v2), which /proc/meminfo does not show."""
    with contextlib.suppress(OSError, ValueError):
        raw = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if raw != "max":
            return int(raw)
    return None


def _windows_ram() -> tuple[int, int]:
    import ctypes

    class MemoryStatus(ctypes.Structure):
        _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong)] + [
            (name, ctypes.c_ulonglong)
            for name in ("total", "avail", "pf_total", "pf_avail", "v_total", "v_avail", "x")
        ]

    status = MemoryStatus()
    status.dwLength = ctypes.sizeof(MemoryStatus)
    ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status))  # type: ignore[attr-defined]
    return int(status.total), int(status.avail)


def _ram() -> tuple[int, int]:
    """(total, available) bytes: psutil (portable, maintained, BSD licence, ~500 KB) with
    the container's cgroup limit applied; the platform readers below only without it."""
    try:
        import psutil

        memory = psutil.virtual_memory()
        total, available = int(memory.total), int(memory.available)
        limit = _cgroup_limit()
        if limit is not None and limit < total:
            total, available = limit, min(available, limit)
        return total, available
    except (ImportError, OSError, RuntimeError):
        pass
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            total, available = parse_meminfo(Path("/proc/meminfo").read_text())
            limit = _cgroup_limit()
            if limit is not None and limit < total:
                total, available = limit, min(available, limit)
            return total, available
    if sys.platform == "darwin":
        total = int(_run("sysctl", "-n", "hw.memsize").strip() or 0)
        if total:
            return total, parse_vm_stat(_run("vm_stat")) or total // 2
    if sys.platform == "win32":
        with contextlib.suppress(Exception):
            return _windows_ram()
    page = os.sysconf("SC_PAGE_SIZE")
    return os.sysconf("SC_PHYS_PAGES") * page, os.sysconf("SC_AVPHYS_PAGES") * page


def _llama_gpu_offload() -> bool:
    try:
        import llama_cpp  # loads the shared library: ~0.2 s

        return bool(llama_cpp.llama_supports_gpu_offload())
    except (ImportError, OSError, AttributeError):
        return False


def nvml_gpu() -> GPU | None:
    """NVIDIA GPUs through NVML (nvidia-ml-py: NVIDIA's own binding, BSD, pure Python,
    ~50 KB): free and total memory per device, pooled as llama.cpp splits layers. None
    when there is no NVIDIA driver."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound / DriverNotLoaded: no NVIDIA GPU
        return None
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            text = name.decode() if isinstance(name, bytes) else str(name)
            devices.append((text, int(memory.total), int(memory.free)))
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    if not devices:
        return None
    name = devices[0][0] if len(devices) == 1 else f"{len(devices)} x {devices[0][0]}"
    return GPU("cuda", name, sum(d[1] for d in devices), sum(d[2] for d in devices))


def detect_hardware() -> Hardware:
    total, available = _ram()
    gpu = nvml_gpu()
    if gpu is None and shutil.which("nvidia-smi"):  # NVML missing: the CLI still answers
        gpu = parse_nvidia_smi(
            _run(
                "nvidia-smi",
                "--query-gpu=name,memory.total,memory.free",
                "--format=csv,noheader,nounits",
            )
        )
    if gpu is None and sys.platform == "darwin" and platform.machine() == "arm64":
        share = int(total * METAL_SHARE)
        gpu = GPU("metal", "Apple GPU (unified memory)", share, min(share, available), True)
    return Hardware(
        total_ram=total,
        available_ram=available,
        gpu=gpu,
        gpu_offload=_llama_gpu_offload(),
        cpu_count=os.cpu_count() or 1,
        system=f"{platform.system()} {platform.machine()}",
    )


# -- estimates ------------------------------------------------------------------------
@dataclass(frozen=True)
class FitEstimate:
    n_ctx: int
    kv_type: str
    flash_attn: bool
    n_gpu_layers: int  # as passed to llama.cpp: -1 = all
    cpu_moe: bool
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    ram_bytes: int  # needed in RAM
    vram_bytes: int  # needed on the GPU
    ram_available: int
    vram_available: int
    available_bytes: int  # RAM + VRAM, counted once on unified memory
    verdict: str  # fits | tight | does-not-fit
    message: str

    @property
    def total_bytes(self) -> int:
        return self.ram_bytes + self.vram_bytes


def _verdict(need: int, available: int, hard_limit: int) -> str:
    if need <= available * FIT_SHARE:
        return FITS
    return TIGHT if need <= max(available, hard_limit) else NO_FIT


def estimate_fit(
    info: GGUFInfo,
    hw: Hardware,
    n_ctx: int,
    kv_type: str = "f16",
    n_gpu_layers: int = 0,
    *,
    flash_attn: bool | None = None,
    cpu_moe: bool = False,
    n_ubatch: int = 512,
) -> FitEstimate:
    """Memory needed to run ``info`` at ``n_ctx`` on ``hw``. A quantized KV cache needs
    flash attention, so ``flash_attn`` defaults to ``kv_type != "f16"``."""
    fa = kv_type != "f16" if flash_attn is None else flash_attn
    n_layers = max(info.n_layers, 1)
    layers = n_layers if n_gpu_layers < 0 else min(n_gpu_layers, n_layers)
    if not hw.can_offload:
        layers = 0
    share = layers / n_layers  # llama.cpp offloads whole layers: their weights and KV
    weights = info.file_size
    kv = info.kv_bytes_per_token(kv_type) * n_ctx
    compute = COMPUTE_BUFFER
    if not fa:  # the f32 attention scores of one batch: n_ctx x n_ubatch x heads
        compute += n_ctx * n_ubatch * max(info.head_count, 1) * 4
    experts = info.expert_bytes if cpu_moe and layers else 0
    vram = int((weights - experts) * share + kv * share)
    ram = int((weights - experts) * (1 - share)) + experts + int(kv * (1 - share))
    ram += HOST_OVERHEAD
    if layers:
        vram += compute + GPU_CONTEXT
    else:
        ram += compute
    ram_verdict = _verdict(ram, hw.available_ram, int(hw.total_ram * FIT_SHARE))
    vram_free = hw.gpu.free_bytes if hw.gpu and layers else 0
    verdict = ram_verdict
    unified = bool(hw.gpu and hw.gpu.unified)
    if layers:
        vram_verdict = _verdict(vram, vram_free, 0)
        if unified:  # one pool: RAM must hold both parts
            ram_verdict = _verdict(ram + vram, hw.available_ram, int(hw.total_ram * FIT_SHARE))
        verdict = max(ram_verdict, vram_verdict, key=[FITS, TIGHT, NO_FIT].index)
    estimate = FitEstimate(
        n_ctx=n_ctx,
        kv_type=kv_type,
        flash_attn=fa,
        n_gpu_layers=n_gpu_layers if layers else 0,
        cpu_moe=bool(experts),
        weights_bytes=weights,
        kv_bytes=kv,
        compute_bytes=compute,
        ram_bytes=ram,
        vram_bytes=vram,
        ram_available=hw.available_ram,
        vram_available=vram_free,
        available_bytes=hw.available_ram + (0 if unified else vram_free),
        verdict=verdict,
        message="",
    )
    return replace(estimate, message=_message(estimate, hw))


def _message(e: FitEstimate, hw: Hardware) -> str:
    where = f"{gb(e.ram_bytes)} of RAM"
    if e.vram_bytes:
        where += f" and {gb(e.vram_bytes)} on the GPU"
    have = f"{gb(hw.available_ram)} RAM available"
    if e.vram_bytes:
        have += f", {gb(e.vram_available)} free on the GPU"
    if e.verdict == FITS:
        return f"Fits: needs about {where}; this machine has {have}."
    if e.verdict == TIGHT:
        return (
            f"Tight: needs about {where}; this machine has {have}. Close other programs, "
            "or choose a smaller context."
        )
    return (
        f"Does not fit at a context of {e.n_ctx:,} with a {e.kv_type} KV cache: needs about "
        f"{gb(e.total_bytes)} but this machine has {gb(e.available_bytes)} available; "
        "choose a smaller quantization or context."
    )


def check_fits_or_raise(
    info: GGUFInfo,
    hw: Hardware,
    n_ctx: int,
    kv_type: str = "f16",
    n_gpu_layers: int = 0,
    *,
    flash_attn: bool | None = None,
    cpu_moe: bool = False,
) -> FitEstimate:
    """Call before loading: a clear ModelError instead of an out-of-memory kill or a
    machine that swaps for minutes. A tight fit passes (its message says so)."""
    estimate = estimate_fit(
        info, hw, n_ctx, kv_type, n_gpu_layers, flash_attn=flash_attn, cpu_moe=cpu_moe
    )
    if estimate.verdict == NO_FIT:
        raise ModelError(
            f"{info.name or info.path.name} at a context of {n_ctx:,} tokens needs about "
            f"{gb(estimate.total_bytes)} but this machine has "
            f"{gb(estimate.available_bytes)} available; choose a smaller quantization or "
            "context.",
            hint="`python -m app models` lists what fits this machine.",
        )
    return estimate


# -- recommendation -------------------------------------------------------------------
@dataclass(frozen=True)
class Recommendation:
    n_ctx: int
    kv_type: str
    flash_attn: bool
    n_gpu_layers: int  # -1 = all
    cpu_moe: bool  # keep the MoE expert tensors in RAM, everything else on the GPU
    estimate: FitEstimate
    notes: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        return self.estimate.verdict

    def describe(self) -> str:
        if self.verdict == NO_FIT:
            return self.estimate.message
        if self.n_gpu_layers < 0:
            gpu = "all layers on the GPU" + (", experts in RAM" if self.cpu_moe else "")
        elif self.n_gpu_layers:
            gpu = f"{self.n_gpu_layers} layers on the GPU"
        else:
            gpu = "CPU only"
        fa = ", flash attention" if self.flash_attn else ""
        head = f"Context {self.n_ctx:,}, {self.kv_type} KV cache{fa}, {gpu}"
        return f"{head}. {self.estimate.message}"


def _contexts(info: GGUFInfo) -> list[int]:
    """Candidate context sizes, largest first: powers of two from 4096 up to the
    model's trained context, and that context itself."""
    cap = info.context_length or MIN_CTX
    sizes = {cap}
    size = MIN_CTX
    while size < cap:
        sizes.add(size)
        size *= 2
    return sorted(sizes, reverse=True)


def _largest(
    info: GGUFInfo,
    hw: Hardware,
    kv: str,
    fa: bool,
    mode: str,
    contexts: list[int] | None = None,
    accept: tuple[str, ...] = (FITS,),
) -> FitEstimate | None:
    """The largest context that fits with this KV setup and placement mode:
    cpu | all (every layer on the GPU) | cpu_moe (all but the experts) | partial."""
    if mode == "partial":
        layer_counts = list(range(info.n_layers - 1, 0, -1))
    else:
        layer_counts = [0 if mode == "cpu" else -1]
    for n_ctx in contexts or _contexts(info):
        for layers in layer_counts:  # most layers first: the fastest that fits
            e = estimate_fit(info, hw, n_ctx, kv, layers, flash_attn=fa, cpu_moe=mode == "cpu_moe")
            if e.verdict in accept:
                return e
    return None


def _best(info: GGUFInfo, hw: Hardware, mode: str) -> FitEstimate | None:
    """f16 KV, unless a q8_0 cache lets at least twice the context fit (its quality loss
    is negligible, f16's is nil). Flash attention when it buys a larger context, and on
    the GPU always: there it is faster and drops the n_ctx x batch x heads score buffer
    (17 GB for QwenLong at 256K)."""
    found = {opt: _largest(info, hw, *opt, mode) for opt in KV_OPTIONS}
    f16 = [e for e in (found["f16", mode != "cpu"], found["f16", mode == "cpu"]) if e]
    best_f16 = max(f16, key=lambda e: e.n_ctx) if f16 else None  # max keeps the first tie
    q8 = found["q8_0", True]
    if q8 and (best_f16 is None or q8.n_ctx >= 2 * best_f16.n_ctx):
        return q8
    return best_f16


def _notes(info: GGUFInfo, e: FitEstimate, mode: str) -> list[str]:
    notes = []
    if mode == "cpu_moe":
        notes.append(
            f"The model does not fit the GPU whole: its MoE experts ({gb(info.expert_bytes)}) "
            "stay in RAM and everything else goes to the GPU (llama.cpp's --cpu-moe). "
            "llama-cpp-python cannot place tensors yet, so run it through llama-server: "
            f"`llama-server -m {info.path.name} -ngl 99 --cpu-moe -c {e.n_ctx}`, then "
            "Settings > Model > A server."
        )
    elif mode == "partial":
        notes.append(f"{e.n_gpu_layers} of {info.n_layers} layers fit on the GPU.")
        if info.is_moe:
            notes.append(
                "Keeping the MoE experts on the CPU (cpu_moe) and the rest on the GPU usually "
                f"beats offloading whole layers, once RAM holds the experts "
                f"({gb(info.expert_bytes)})."
            )
    if e.kv_type != "f16" and e.verdict == FITS:
        notes.append("A q8_0 KV cache with flash attention doubles the context that fits.")
    if e.n_ctx < min(MIN_CTX * 2, info.context_length):
        notes.append("Little room: long documents will be read in many small chunks.")
    return notes


def _first(
    modes: list[str], find: Callable[[str], FitEstimate | None]
) -> tuple[str, FitEstimate] | None:
    for mode in modes:
        estimate = find(mode)
        if estimate is not None:
            return mode, estimate
    return None


def recommend(info: GGUFInfo, hw: Hardware) -> Recommendation:
    """Settings that run ``info`` on ``hw``: the largest context that fits comfortably,
    with as much as possible on the GPU; else the smallest setup that squeezes in."""
    notes: list[str] = []
    if hw.gpu is not None and not hw.gpu_offload:
        notes.append(
            f"{hw.gpu.name} is unused: this llama-cpp-python build has no GPU support "
            "(reinstall it with CMAKE_ARGS=-DGGML_CUDA=on, or -DGGML_METAL=on on a Mac)."
        )
    modes = ["all"] if hw.can_offload else []
    if hw.can_offload and info.is_moe and info.expert_bytes:
        modes.append("cpu_moe")
    modes += ["partial", "cpu"] if hw.can_offload else ["cpu"]
    smallest = [min(MIN_CTX, info.context_length or MIN_CTX)]
    found = _first(modes, lambda m: _best(info, hw, m)) or _first(
        modes, lambda m: _largest(info, hw, "q8_0", True, m, smallest, (TIGHT,))
    )
    if found is None:
        e = estimate_fit(info, hw, MIN_CTX, "q8_0", -1 if hw.can_offload else 0)
        return Recommendation(e.n_ctx, "q8_0", True, e.n_gpu_layers, False, e, tuple(notes))
    mode, e = found
    notes += _notes(info, e, mode)
    return Recommendation(
        e.n_ctx, e.kv_type, e.flash_attn, e.n_gpu_layers, e.cpu_moe, e, tuple(notes)
    )


# -- QwenLong reference ---------------------------------------------------------------
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
