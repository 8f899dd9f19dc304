"""What the llama.cpp this process loads can do, asked of the build itself: ggml's backend
registry and devices (ctypes on the libraries in ``llama_cpp/lib``), the bundled CUDA
runtime, and the NVIDIA driver through NVML. Nothing here raises: a build that cannot be
loaded is described as such (app.llm.build_info turns these facts into advice)."""

from __future__ import annotations

import contextlib
import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.llm.ggml_lib import ggml_libraries, library_dir, symbol

# The CUDA major version the CUDA edition bundles (packaging/build_cuda.sh). PyPI's CUDA 12
# wheels have no nvcc, so the edition is built with CUDA 13.
CUDA_EDITION_MAJOR = 13


# ggml-backend.h: enum ggml_backend_dev_type
DEVICE_TYPES = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel", 4: "meta"}


_GPU_BACKENDS = ("CUDA", "Metal", "Vulkan", "HIP", "SYCL", "MTL")


def edition_tag(backends: tuple[str, ...] | list[str]) -> str:
    """The edition a build belongs to, as its installer's file name says it."""
    if "CUDA" in backends:
        return f"cuda{CUDA_EDITION_MAJOR}"
    if "Metal" in backends or "MTL" in backends:
        return "metal"
    if "Vulkan" in backends:
        return "vulkan"
    return "cpu"


@dataclass(frozen=True)
class Device:
    name: str
    description: str
    type: str  # "cpu" | "gpu" | "igpu" | "accel"
    total_bytes: int = 0


@dataclass(frozen=True)
class BuildInfo:
    """The llama.cpp this app runs."""

    loaded: bool  # libllama could be loaded at all
    gpu_offload: bool = False  # llama_supports_gpu_offload()
    backends: tuple[str, ...] = ()  # ggml's registry, e.g. ("CUDA", "CPU")
    devices: tuple[Device, ...] = ()
    library_files: tuple[str, ...] = ()  # llama_cpp/lib
    cuda_runtime: int = 0  # cudaRuntimeGetVersion, e.g. 13050; 0: no CUDA runtime bundled
    cuda_status: int | None = None  # cudaGetDeviceCount's error code (0: success)
    cuda_devices: int = 0
    error: str = ""

    @property
    def edition(self) -> str:
        return edition_tag(self.backends)

    @property
    def gpu_backends(self) -> tuple[str, ...]:
        return tuple(b for b in self.backends if b in _GPU_BACKENDS)

    @property
    def gpu_devices(self) -> tuple[Device, ...]:
        return tuple(d for d in self.devices if d.type in ("gpu", "igpu"))


@dataclass(frozen=True)
class Driver:
    """The NVIDIA driver, from NVML; empty when there is none."""

    version: str = ""  # "575.57.08"
    cuda: int = 0  # newest CUDA it supports, e.g. 12090


def _library_files(folder: Path | None) -> tuple[str, ...]:
    if folder is None or not folder.is_dir():
        return ()
    return tuple(
        sorted(
            p.name
            for p in folder.iterdir()
            if p.suffix in (".so", ".dll", ".dylib") or ".so." in p.name
        )
    )


def _text(pointer: Any) -> str:
    return pointer.decode(errors="replace") if pointer else ""


def _registry(libraries: list[ctypes.CDLL]) -> tuple[tuple[str, ...], tuple[Device, ...]]:
    """The backends and devices in ggml's registry (ggml-backend.h)."""
    pointer, size, text = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p
    reg_count = symbol(libraries, "ggml_backend_reg_count", size)
    reg_get = symbol(libraries, "ggml_backend_reg_get", pointer, size)
    reg_name = symbol(libraries, "ggml_backend_reg_name", text, pointer)
    dev_count = symbol(libraries, "ggml_backend_dev_count", size)
    dev_get = symbol(libraries, "ggml_backend_dev_get", pointer, size)
    dev_name = symbol(libraries, "ggml_backend_dev_name", text, pointer)
    dev_desc = symbol(libraries, "ggml_backend_dev_description", text, pointer)
    dev_type = symbol(libraries, "ggml_backend_dev_type", ctypes.c_int, pointer)
    sizes = ctypes.POINTER(size)
    dev_memory = symbol(libraries, "ggml_backend_dev_memory", None, pointer, sizes, sizes)
    backends: list[str] = []
    if reg_count is not None and reg_get is not None and reg_name is not None:
        backends = [_text(reg_name(reg_get(i))) for i in range(reg_count())]
    devices: list[Device] = []
    if None not in (dev_count, dev_get, dev_name, dev_desc, dev_type):
        for i in range(dev_count()):
            device = dev_get(i)
            total = ctypes.c_size_t(0)
            if dev_memory is not None:
                free = ctypes.c_size_t(0)
                dev_memory(device, ctypes.byref(free), ctypes.byref(total))
            devices.append(
                Device(
                    _text(dev_name(device)),
                    _text(dev_desc(device)),
                    DEVICE_TYPES.get(dev_type(device), "other"),
                    int(total.value),
                )
            )
    return tuple(backends), tuple(devices)


def _cuda_runtime(folder: Path | None, files: tuple[str, ...]) -> tuple[int, int | None, int]:
    """(runtime version, cudaGetDeviceCount's error, device count) from the bundled
    libcudart, the same file libggml-cuda loaded: (0, None, 0) when there is none."""
    names = [f for f in files if "cudart" in f]
    if folder is None or not names:
        return 0, None, 0
    try:
        cudart = ctypes.CDLL(str(folder / sorted(names)[-1]))
        version, count = ctypes.c_int(0), ctypes.c_int(0)
        cudart.cudaRuntimeGetVersion(ctypes.byref(version))
        status = int(cudart.cudaGetDeviceCount(ctypes.byref(count)))
        return int(version.value), status, int(count.value) if status == 0 else 0
    except (OSError, AttributeError):
        return 0, None, 0


def probe_build() -> BuildInfo:
    """The llama.cpp that ``import llama_cpp`` gives this process."""
    folder = library_dir()
    files = _library_files(folder)
    try:
        import llama_cpp

        gpu_offload = bool(llama_cpp.llama_supports_gpu_offload())
        backends, devices = _registry(ggml_libraries())
    except (ImportError, OSError, AttributeError, RuntimeError) as error:
        # e.g. a CUDA edition whose libcudart.so.13 is missing: libllama fails to load.
        return BuildInfo(False, library_files=files, error=f"{type(error).__name__}: {error}")
    runtime, status, count = _cuda_runtime(folder, files) if "CUDA" in backends else (0, None, 0)
    return BuildInfo(True, gpu_offload, backends, devices, files, runtime, status, count)


def probe_driver() -> Driver:
    """The NVIDIA driver through NVML (nvidia-ml-py, which hardware.py also uses)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no NVML library or no driver loaded: no NVIDIA driver
        return Driver()
    try:
        version = pynvml.nvmlSystemGetDriverVersion()
        cuda = int(pynvml.nvmlSystemGetCudaDriverVersion())
        text = version.decode() if isinstance(version, bytes) else str(version)
        return Driver(text, cuda)
    except Exception:
        return Driver()
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
