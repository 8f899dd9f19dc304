"""This machine's memory and GPU: what a placement plan (app.llm.fit) may use."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from app.units import gb

MiB = 1024**2
# Apple silicon lets the GPU wire about 2/3-3/4 of unified memory
# (recommendedMaxWorkingSetSize); 70% is the figure llama.cpp users quote.
METAL_SHARE = 0.70


@dataclass(frozen=True)
class GPU:
    """The GPUs a plan may use, pooled (llama.cpp splits layers across them); ``devices``
    keeps each one's (name, total, free) bytes when there are several."""

    kind: str  # "cuda" | "metal"
    name: str
    total_bytes: int
    free_bytes: int
    unified: bool = False  # shares system RAM (Apple silicon)
    devices: tuple[tuple[str, int, int], ...] = ()

    def describe(self) -> str:
        pooled = f"{self.name}, {gb(self.free_bytes)} of {gb(self.total_bytes)} free"
        if len(self.devices) < 2:
            return pooled
        each = "; ".join(f"{gb(free)} of {gb(total)}" for _, total, free in self.devices)
        return f"{pooled} ({each})"


def pooled_gpus(devices: list[tuple[str, int, int]]) -> GPU | None:
    """NVIDIA GPUs as one pool for the plan, each kept for what is shown."""
    if not devices:
        return None
    name = devices[0][0] if len(devices) == 1 else f"{len(devices)} x {devices[0][0]}"
    total, free = sum(d[1] for d in devices), sum(d[2] for d in devices)
    return GPU("cuda", name, total, free, devices=tuple(devices))


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
            gpu = self.gpu.describe()
            if not self.gpu_offload:
                gpu += " (unused: this llama.cpp build is CPU-only)"
        cores = f"{self.cpu_count} CPU core" + ("s" if self.cpu_count != 1 else "")
        return f"{ram}, {cores}, {gpu}"


# -- detection ------------------------------------------------------------------------
def parse_nvidia_smi(text: str) -> GPU | None:
    """``nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv,noheader,
    nounits`` output (MiB); several GPUs are pooled, as llama.cpp splits layers."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            gpus.append((parts[0], int(parts[1]) * MiB, int(parts[2]) * MiB))
    return pooled_gpus(gpus)


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


def _ram() -> tuple[int, int]:
    """(total, available) bytes from psutil (portable, maintained, BSD licence, ~500 KB),
    with the container's cgroup limit applied: psutil reports the host's memory."""
    import psutil

    memory = psutil.virtual_memory()
    total, available = int(memory.total), int(memory.available)
    limit = _cgroup_limit()
    if limit is not None and limit < total:
        total, available = limit, min(available, limit)
    return total, available


def _physical_cores() -> int:
    """Physical cores (psutil): what llama.cpp's threads scale with; hyperthreads add
    little to a memory-bound decode."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


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
    return pooled_gpus(devices)


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
        cpu_count=_physical_cores(),
        system=f"{platform.system()} {platform.machine()}",
    )
