"""The build report: the real (CPU) llama.cpp of this checkout, then every message for
simulated builds, GPUs and drivers (no GPU needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from app.llm.build_info import (
    CUDA_ERROR_INSUFFICIENT_DRIVER,
    CUDA_ERROR_NO_DEVICE,
    artifact_name,
    assess,
    build_report,
)
from app.llm.build_probe import BuildInfo, Device, Driver, probe_build
from app.llm.hardware import GPU, Hardware

GiB = 1024**3
NO_GPU = Hardware(total_ram=32 * GiB, available_ram=28 * GiB, cpu_count=8)
RTX = replace(NO_GPU, gpu=GPU("cuda", "NVIDIA GeForce RTX 4070", 12 * GiB, 11 * GiB))
CPU_DEVICE = Device("CPU", "AMD Ryzen", "cpu", 32 * GiB)
CPU_BUILD = BuildInfo(True, False, ("CPU",), (CPU_DEVICE,), ("libggml-cpu.so", "libllama.so"))
CUDA_FILES = ("libcudart.so.13", "libggml-cuda.so", "libllama.so")
CUDA_GPU = Device("CUDA0", "NVIDIA GeForce RTX 4070", "gpu", 12 * GiB)
NEW_DRIVER = Driver("580.95.05", 13000)
OLD_DRIVER = Driver("535.183.01", 12020)


def cuda_build(status: int, devices: tuple[Device, ...] = ()) -> BuildInfo:
    count = len(devices)
    return BuildInfo(
        True, True, ("CUDA", "CPU"), (*devices, CPU_DEVICE), CUDA_FILES, 13050, status, count
    )


# The venv's llama-cpp-python is the portable CPU build (packaging/bootstrap.sh); a venv
# with a GPU build (packaging/build_cuda.sh) has other, equally real, answers.
cpu_build_only = pytest.mark.skipif(
    probe_build().gpu_offload, reason="this venv's llama-cpp-python is a GPU build"
)


@cpu_build_only
def test_this_checkout_is_a_cpu_build() -> None:
    """The venv's llama-cpp-python is the portable CPU build (packaging/bootstrap.sh)."""
    build = probe_build()
    assert build.loaded, build.error
    assert build.backends == ("CPU",)
    assert not build.gpu_offload
    assert build.edition == "cpu"
    assert [d.type for d in build.devices] == ["cpu"]
    assert any(f.startswith("libllama") for f in build.library_files)


@cpu_build_only
def test_report_on_this_machine_says_cpu_only() -> None:
    report = build_report(NO_GPU)
    assert report.status == "cpu-only"
    assert report.message.startswith("CPU only")
    assert "backends compiled in: CPU" in report.text()
    json.dumps(report.as_dict())  # the self-test embeds it


def test_gpu_with_cpu_edition_names_the_cuda_edition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    report = assess(CPU_BUILD, RTX, NEW_DRIVER, version="0.2.0")
    assert report.status == "gpu-unused"
    assert "NVIDIA GeForce RTX 4070" in report.message
    assert "QwenLongReader-0.2.0-linux-x86_64-cuda13.tar.gz" in report.message
    monkeypatch.setattr(sys, "platform", "win32")
    windows = assess(CPU_BUILD, RTX, NEW_DRIVER, version="0.2.0")
    assert "QwenLongReader-0.2.0-windows-x64-cuda13-setup.exe" in windows.message


def test_old_driver_says_update_the_driver() -> None:
    """Driver 535 supports CUDA 12.2; the edition's runtime is 13.5: cudart says 35."""
    report = assess(cuda_build(CUDA_ERROR_INSUFFICIENT_DRIVER), RTX, OLD_DRIVER)
    assert report.status == "driver-too-old"
    assert "535.183.01 (CUDA 12.2) is too old" in report.message
    assert "CUDA 13.5 runtime" in report.message
    assert "580.65.06" in report.message and "runs on the CPU" in report.message


def test_old_driver_found_by_nvml_alone() -> None:
    """NVML's CUDA version decides even when the runtime did not get to say 35."""
    report = assess(cuda_build(0), RTX, Driver("470.256.02", 11040))
    assert report.status == "driver-too-old"
    assert "(CUDA 11.4)" in report.message


def test_insufficient_driver_without_nvml_is_still_explained() -> None:
    report = assess(cuda_build(CUDA_ERROR_INSUFFICIENT_DRIVER), RTX, Driver())
    assert report.status == "driver-too-old"
    assert "NVIDIA driver installed is too old" in report.message


def test_cuda_build_on_a_gpu_uses_it() -> None:
    report = assess(cuda_build(0, (CUDA_GPU,)), RTX, NEW_DRIVER)
    assert report.status == "gpu" and report.uses_gpu
    assert report.message == "GPU offload: CUDA on NVIDIA GeForce RTX 4070."
    assert "CUDA runtime bundled: 13.5" in report.facts
    assert "NVIDIA driver: 580.95.05 (supports CUDA up to 13.0)" in report.facts


def test_cuda_build_without_gpu_falls_back_to_cpu() -> None:
    """What the CUDA bundle's self-test says on a machine with no NVIDIA driver: the
    runtime answers 35 there too, but with no GPU seen that is not a driver problem."""
    for status in (CUDA_ERROR_INSUFFICIENT_DRIVER, CUDA_ERROR_NO_DEVICE):
        report = assess(cuda_build(status), NO_GPU, Driver())
        assert report.status == "cpu-fallback", status
        assert report.message.startswith("CUDA is compiled in, but no NVIDIA GPU was found")


def test_cuda_build_gpu_present_but_unusable() -> None:
    report = assess(cuda_build(999), RTX, NEW_DRIVER)
    assert report.status == "cpu-fallback"
    assert "CUDA error 999" in report.message and "NVIDIA GeForce RTX 4070" in report.message


def test_unloadable_build_is_reported_not_raised() -> None:
    broken = BuildInfo(False, error="OSError: libcudart.so.13: cannot open shared object file")
    report = assess(broken, RTX, NEW_DRIVER)
    assert report.status == "broken"
    assert "libcudart.so.13" in report.message and "CPU edition" in report.message


def test_metal_build() -> None:
    mac = replace(NO_GPU, gpu=GPU("metal", "Apple GPU (unified memory)", 22 * GiB, 20 * GiB, True))
    metal = BuildInfo(True, True, ("MTL", "CPU"), (Device("MTL0", "Apple M2", "gpu"),))
    assert assess(metal, mac, Driver()).message == "GPU offload: MTL on Apple M2."
    assert assess(CPU_BUILD, mac, Driver()).status == "gpu-unused"


def test_artifact_names_match_the_build_scripts() -> None:
    """The names the messages give are those packaging/build_linux.sh writes."""
    assert (
        artifact_name("1.0", "cpu", "linux", "x86_64")
        == "QwenLongReader-1.0-linux-x86_64-cpu.tar.gz"
    )
    assert (
        artifact_name("1.0", "cuda13", "win32") == "QwenLongReader-1.0-windows-x64-cuda13-setup.exe"
    )


def test_report_in_a_fresh_process_does_not_crash() -> None:
    """Probing loads llama.cpp's libraries; a fresh interpreter proves it needs no state."""
    code = "from app.llm.build_info import build_report; print(build_report().status)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("cpu-only", "gpu-unused")


@pytest.mark.llm
@cpu_build_only
def test_self_test_reports_the_build(tmp_path: Path) -> None:
    """``--self-test`` carries the report (the build scripts read its backends) and
    prints the notice on stderr; a CPU build on a machine without GPU is not a failure."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QWENLONG_READER_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "app", "--self-test"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    report = json.loads(done.stdout)
    assert report["checks"]["llama_build"]["ok"], report["checks"]["llama_build"]
    assert report["build"]["edition"] == "cpu"
    assert report["build"]["backends"] == ["CPU"]
    assert f"llama.cpp: {report['build']['message']}" in done.stderr
    assert done.returncode == 0, done.stderr[-2000:]


def test_models_command_starts_with_the_build_report(tmp_path: Path) -> None:
    env = {**os.environ, "QWENLONG_READER_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "app", "models", "--no-hash"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    # The same sentence as the report in this process (CI: "CPU only: ...").
    assert done.stdout.splitlines()[0] == f"llama.cpp: {build_report().message}"


def test_build_that_needs_a_missing_driver_says_install_the_driver() -> None:
    """What the first CUDA build (with VMM, linked to libcuda.so.1) did on this machine."""
    error = (
        "RuntimeError: Failed to load shared library '.../libllama.so': libcuda.so.1: "
        "cannot open shared object file: No such file or directory"
    )
    report = assess(BuildInfo(False, error=error), NO_GPU, Driver())
    assert report.status == "broken"
    assert report.message.startswith("This llama.cpp build needs the NVIDIA driver")
    assert "Install the NVIDIA driver, or the CPU edition" in report.message
