"""Hardware detection (psutil, NVML, nvidia-smi's output) and QwenLong's reference
shape; the placement plan itself is tested in test_fit.py."""

from __future__ import annotations

from app.llm.fit import machine_of, plan_placement
from app.llm.hardware import (
    GPU,
    Hardware,
    detect_hardware,
    nvml_gpu,
    parse_nvidia_smi,
)
from app.llm.qwenlong import qwenlong_reference

GiB = 1024**3
QWENLONG = qwenlong_reference("Q4_K_M")
RAM_32 = {"total_ram": 32 * GiB, "available_ram": 28 * GiB}


def test_qwenlong_kv_cache_per_token():
    # 48 layers x 4 KV heads x (128 K + 128 V) x 2 bytes = 98,304 B = 96 KiB per token
    assert QWENLONG.kv_bytes_per_token("f16") == 98_304
    # q8_0 stores 32 values in 34 bytes: 48 x 4 x 256 x 34/32 = 52,224
    assert QWENLONG.kv_bytes_per_token("q8_0") == 52_224
    # q4_0: 32 values in 18 bytes: 48 x 4 x 256 x 18/32 = 27,648
    assert QWENLONG.kv_bytes_per_token("q4_0") == 27_648
    # 32K context at f16: 98,304 x 32,768 = 3,221,225,472 B = exactly 3 GiB
    assert QWENLONG.kv_bytes_per_token() * 32_768 == 3 * GiB


def test_gpu_without_offload_support_is_not_planned_for():
    hw = Hardware(**RAM_32, gpu=GPU("cuda", "RTX 4090", 24 * GiB, 23 * GiB), gpu_offload=False)
    machine = machine_of(hw)
    assert not machine.has_gpu
    plan = plan_placement(QWENLONG, machine)
    assert plan.n_gpu_layers == 0 and plan.vram_bytes == 0


def test_unified_memory_counts_once():
    # Apple silicon 36 GiB: the GPU may wire 70% (25.2 GiB); RAM and VRAM are one pool
    total = 36 * GiB
    metal = GPU("metal", "Apple GPU", int(total * 0.7), int(total * 0.7), unified=True)
    plan = plan_placement(QWENLONG, machine_of(Hardware(total, 30 * GiB, metal, gpu_offload=True)))
    # 128K does not fit whole in the GPU's 25.2 GiB share: most layers go there
    assert plan.n_ctx == 131_072 and 40 <= plan.n_gpu_layers < 48
    assert "the others run on the CPU" in plan.reason
    assert plan.ram_bytes + plan.vram_bytes <= 0.9 * 30 * GiB
    # at 64K, everything fits the GPU
    small = plan_placement(
        QWENLONG,
        machine_of(Hardware(total, 30 * GiB, metal, gpu_offload=True)),
        max_ctx=65_536,
    )
    assert small.n_gpu_layers == -1


def test_nvml_is_used_when_present():
    # no NVIDIA driver here: NVML must answer None, not raise, and detection still works
    assert nvml_gpu() is None or nvml_gpu().kind == "cuda"


def test_parse_nvidia_smi_pools_gpus():
    one = parse_nvidia_smi("NVIDIA GeForce RTX 4090, 24564, 23000\n")
    assert one is not None
    assert (one.name, one.total_bytes, one.free_bytes) == (
        "NVIDIA GeForce RTX 4090",
        24_564 * 1024**2,
        23_000 * 1024**2,
    )
    two = parse_nvidia_smi("Tesla T4, 15360, 15000\nTesla T4, 15360, 14000\n")
    assert two is not None and two.name == "2 x Tesla T4"
    assert two.free_bytes == 29_000 * 1024**2
    assert parse_nvidia_smi("") is None
    assert parse_nvidia_smi("NVIDIA-SMI has failed") is None
    # pooled for the plan, each GPU still shown: the second one is nearly full
    shown = Hardware(**RAM_32, gpu=two, gpu_offload=True).describe()
    assert "2 x Tesla T4" in shown and "(15.7 GB of 16.1 GB; 14.7 GB of 16.1 GB)" in shown
    assert "(" not in one.describe()  # one GPU: nothing to split


def test_detect_hardware_on_this_machine():
    hw = detect_hardware()
    assert hw.total_ram > 256 * 1024**2
    assert 0 < hw.available_ram <= hw.total_ram
    assert hw.cpu_count >= 1
    assert isinstance(hw.gpu_offload, bool)
    assert "RAM" in hw.describe()
