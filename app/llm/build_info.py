"""What this llama.cpp build can do, what GPU the machine has, and what to tell the user.

The installers come in editions (see packaging/README-packaging.md): a CPU one, a CUDA one
for NVIDIA GPUs on Windows and Linux, and Metal on macOS. An analyst with an RTX card who
installed the CPU edition sees slow answers and no reason why, and one whose NVIDIA driver
is older than the bundled CUDA runtime gets a CPU fallback with only a line on stderr from
ggml. This module puts the facts side by side and says the one thing to do; the facts
come from app.llm.build_probe (the build's backends, devices and CUDA runtime, and the
driver through NVML) and from ``detect_hardware()``.

``assess`` is a pure function of those three, so every message is tested without a GPU.
Nothing here raises: a build that cannot even be loaded is reported as such.
"""

from __future__ import annotations

import platform
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from app.llm.build_probe import (
    CUDA_EDITION_MAJOR,
    BuildInfo,
    Driver,
    probe_build,
    probe_driver,
)
from app.llm.hardware import Hardware, detect_hardware
from app.units import gb
from app.version import app_version

# The oldest driver each CUDA major runs on (NVIDIA's CUDA Toolkit release notes, "CUDA
# minor version compatibility": any 13.x runtime on a 580+ driver, 12.x on 525+).
MIN_DRIVER = {12: "525.60.13 (Windows 528.33)", 13: "580.65.06 (Windows 580.88)"}
CUDA_ERROR_INSUFFICIENT_DRIVER = 35
CUDA_ERROR_NO_DEVICE = 100


def artifact_name(version: str, edition: str, system: str = "", machine: str = "") -> str:
    """The installer file of an edition: the same names packaging/build_*.sh write."""
    system = system or sys.platform
    machine = machine or platform.machine()
    if system.startswith("win"):
        return f"QwenLongReader-{version}-windows-x64-{edition}-setup.exe"
    if system == "darwin":
        return f"QwenLongReader-{version}-macos-arm64.dmg"
    arch = {"amd64": "x86_64", "x64": "x86_64"}.get(machine.lower(), machine)
    return f"QwenLongReader-{version}-linux-{arch}-{edition}.tar.gz"


@dataclass(frozen=True)
class BuildReport:
    status: str  # "gpu" | "cpu-only" | "cpu-fallback" | "gpu-unused" | "driver-too-old" | "broken"
    message: str  # one plain sentence or two: what is going on and what to do
    build: BuildInfo
    hardware: Hardware | None
    driver: Driver
    facts: list[str] = field(default_factory=list)  # the details, one line each

    @property
    def uses_gpu(self) -> bool:
        return self.status == "gpu"

    def lines(self) -> list[str]:
        return [self.message, *self.facts]

    def text(self) -> str:
        return "\n".join(self.lines())

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "edition": self.build.edition,
            "gpu_offload": self.build.gpu_offload,
            "backends": list(self.build.backends),
            "devices": [asdict(d) for d in self.build.devices],
            "library_files": list(self.build.library_files),
            "cuda_runtime": _version(self.build.cuda_runtime) if self.build.cuda_runtime else "",
            "cuda_status": self.build.cuda_status,
            "driver": asdict(self.driver),
            "gpu": self.hardware.gpu.name if self.hardware and self.hardware.gpu else "",
            "error": self.build.error,
            "facts": self.facts,
        }


def _version(cuda: int) -> str:
    """12090 -> "12.9" (CUDA's encoding: 1000 * major + 10 * minor)."""
    return f"{cuda // 1000}.{cuda % 1000 // 10}"


def _cuda_edition_hint(version: str) -> str:
    if sys.platform.startswith("win"):
        return artifact_name(version, f"cuda{CUDA_EDITION_MAJOR}", "win32")
    return artifact_name(version, f"cuda{CUDA_EDITION_MAJOR}", "linux", "x86_64")


# -- assessment (pure) ----------------------------------------------------------------
def assess(
    build: BuildInfo, hardware: Hardware | None, driver: Driver, version: str = ""
) -> BuildReport:
    """The report for these facts: one status and a message that says what to do."""
    version = version or app_version() or "<version>"
    gpu = hardware.gpu if hardware else None
    nvidia = gpu is not None and gpu.kind == "cuda"
    facts = _facts(build, hardware, driver)

    def report(status: str, message: str) -> BuildReport:
        return BuildReport(status, message, build, hardware, driver, facts)

    if not build.loaded and re.search(r"libcuda\.so|nvcuda\.dll", build.error):
        # A CUDA build linked against the driver, on a PC without one (build_cuda.sh
        # builds with GGML_CUDA_NO_VMM so that its own editions never do this).
        return report(
            "broken",
            "This llama.cpp build needs the NVIDIA driver, which is not installed "
            f"({build.error}), so no model can run. Install the NVIDIA driver, or the "
            "CPU edition of the app.",
        )
    if not build.loaded:
        return report(
            "broken",
            f"llama.cpp could not be loaded, so no model can run: {build.error} "
            "Reinstall the app; if this is the CUDA edition, install the CPU edition instead.",
        )
    runtime_major = build.cuda_runtime // 1000
    if "CUDA" in build.backends:
        driver_too_old = (
            driver.cuda and runtime_major and driver.cuda // 1000 < runtime_major
        ) or (nvidia and build.cuda_status == CUDA_ERROR_INSUFFICIENT_DRIVER)
        if driver_too_old:
            have = (
                f"{driver.version} (CUDA {_version(driver.cuda)})"
                if driver.version
                else "installed"
            )
            need = MIN_DRIVER.get(runtime_major or CUDA_EDITION_MAJOR, "a newer one")
            runtime = _version(build.cuda_runtime) if build.cuda_runtime else str(runtime_major)
            return report(
                "driver-too-old",
                f"The NVIDIA driver {have} is too old for this edition's CUDA {runtime} "
                f"runtime, so the model runs on the CPU. Update the NVIDIA driver to "
                f"{need} or newer (nvidia.com/drivers, or your distribution's driver "
                "package), or install the CPU edition.",
            )
        cuda_gpus = [d for d in build.gpu_devices if d.name.upper().startswith("CUDA")]
        if cuda_gpus or build.cuda_devices:
            names = ", ".join(d.description or d.name for d in cuda_gpus) or (
                gpu.name if gpu else ""
            )
            return report("gpu", f"GPU offload: CUDA on {names}.")
        if not nvidia:
            return report(
                "cpu-fallback",
                "CUDA is compiled in, but no NVIDIA GPU was found: the model runs on the "
                "CPU. (The CPU edition is smaller and does the same on this machine.)",
            )
        status = f" (CUDA error {build.cuda_status})" if build.cuda_status else ""
        return report(
            "cpu-fallback",
            f"CUDA is compiled in and the {gpu.name if gpu else 'GPU'} is there, but llama.cpp "
            f"could not use it{status}: the model runs on the CPU. Reinstall or update the "
            "NVIDIA driver, then restart the app.",
        )
    if build.gpu_backends:  # Metal, Vulkan, ...
        names = ", ".join(d.description or d.name for d in build.gpu_devices)
        if names:
            return report("gpu", f"GPU offload: {'/'.join(build.gpu_backends)} on {names}.")
        return report(
            "cpu-fallback",
            f"{'/'.join(build.gpu_backends)} is compiled in but found no GPU: the model runs "
            "on the CPU.",
        )
    if nvidia and gpu is not None:
        return report(
            "gpu-unused",
            f"This is the CPU edition: its llama.cpp cannot use the {gpu.name} "
            f"({gb(gpu.total_bytes)}) this machine has, so the model runs on the CPU. Install "
            f"the CUDA edition ({_cuda_edition_hint(version)}) to run it on the GPU.",
        )
    if gpu is not None:  # Apple GPU with a build that lacks Metal
        return report(
            "gpu-unused",
            f"This llama.cpp build is CPU-only and cannot use the {gpu.name}: install the "
            "macOS edition (built with Metal) to run the model on the GPU.",
        )
    return report(
        "cpu-only", "CPU only: this llama.cpp build has no GPU backend and no GPU was found."
    )


def _facts(build: BuildInfo, hardware: Hardware | None, driver: Driver) -> list[str]:
    facts = [
        f"llama.cpp edition: {build.edition}; backends compiled in: "
        f"{', '.join(build.backends) or 'unknown'}; GPU offload supported: "
        f"{'yes' if build.gpu_offload else 'no'}"
    ]
    if build.devices:
        facts.append(
            "devices: "
            + "; ".join(
                f"{d.name} ({d.description}, {d.type}"
                + (f", {gb(d.total_bytes)}" if d.total_bytes and d.type != "cpu" else "")
                + ")"
                for d in build.devices
            )
        )
    if build.cuda_runtime:
        facts.append(f"CUDA runtime bundled: {_version(build.cuda_runtime)}")
    if driver.version:
        facts.append(
            f"NVIDIA driver: {driver.version} (supports CUDA up to {_version(driver.cuda)})"
        )
    if hardware is not None:
        facts.append(f"this machine: {hardware.describe()}")
    return facts


def build_report(hardware: Hardware | None = None) -> BuildReport:
    """The report for this process and machine (loads llama.cpp: ~0.2 s, more with CUDA)."""
    build = probe_build()
    if hardware is None:
        try:
            hardware = detect_hardware()
        except Exception:  # noqa: BLE001 - the build report must still come out
            hardware = None
    return assess(build, hardware, probe_driver())
