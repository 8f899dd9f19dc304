"""Fit estimates against figures computed by hand (the arithmetic is in the comments).

Constants used below (app.llm.hardware): HOST_OVERHEAD = COMPUTE_BUFFER = GPU_CONTEXT =
512 MiB = 536,870,912 B; a setup "fits" when it needs at most 90% of what is available.
QwenLong-L1.5-30B-A3B Q4_K_M: 18,700,000,000 B file, experts 95% = 17,765,000,000 B.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.errors import ModelError
from app.llm.hardware import (
    FITS,
    GPU,
    NO_FIT,
    TIGHT,
    Hardware,
    _contexts,
    check_fits_or_raise,
    detect_hardware,
    estimate_fit,
    parse_meminfo,
    parse_nvidia_smi,
    parse_vm_stat,
    qwenlong_reference,
    recommend,
)

GiB = 1024**3
QWENLONG = qwenlong_reference("Q4_K_M")
CPU_24 = Hardware(total_ram=24 * GiB, available_ram=22 * GiB)  # 22 GiB = 23,622,320,128
LAPTOP_8 = Hardware(total_ram=8 * GiB, available_ram=6 * GiB)
RAM_32 = {"total_ram": 32 * GiB, "available_ram": 28 * GiB}
GPU_24 = Hardware(**RAM_32, gpu=GPU("cuda", "RTX 4090", 24 * GiB, 23 * GiB), gpu_offload=True)
GPU_12 = Hardware(**RAM_32, gpu=GPU("cuda", "RTX 4070", 12 * GiB, 11 * GiB), gpu_offload=True)


def test_qwenlong_kv_cache_per_token():
    # 48 layers x 4 KV heads x (128 K + 128 V) x 2 bytes = 98,304 B = 96 KiB per token
    assert QWENLONG.kv_bytes_per_token("f16") == 98_304
    # q8_0 stores 32 values in 34 bytes: 48 x 4 x 256 x 34/32 = 52,224
    assert QWENLONG.kv_bytes_per_token("q8_0") == 52_224
    # q4_0: 32 values in 18 bytes: 48 x 4 x 256 x 18/32 = 27,648
    assert QWENLONG.kv_bytes_per_token("q4_0") == 27_648
    # 32K context at f16: 98,304 x 32,768 = 3,221,225,472 B = exactly 3 GiB
    assert QWENLONG.kv_bytes_per_token() * 32_768 == 3 * GiB


def test_24gb_ram_no_gpu_32k_f16_does_not_fit():
    e = estimate_fit(QWENLONG, CPU_24, 32_768, "f16", 0)
    # compute: 512 MiB + attention scores 32,768 x 512 x 32 heads x 4 B = 2 GiB
    assert e.compute_bytes == 536_870_912 + 2_147_483_648
    # RAM: 18,700,000,000 + 3 GiB KV + 512 MiB host + 2.5 GiB compute = 25,142,450,944
    assert e.ram_bytes == 25_142_450_944
    assert e.vram_bytes == 0
    # more than the 22 GiB available and than 90% of 24 GiB (23,192,823,398)
    assert e.verdict == NO_FIT
    with pytest.raises(ModelError, match=r"needs about 25\.1 GB but this machine has 23\.6 GB"):
        check_fits_or_raise(QWENLONG, CPU_24, 32_768, "f16", 0)


def test_24gb_ram_flash_attention_and_q8_cache():
    # f16 + flash attention, no attention-score buffer:
    # 18,700,000,000 + 3,221,225,472 + 2 x 536,870,912 = 22,994,967,296 <= 22 GiB but
    # > 90% of it (21,260,088,115): tight
    e = estimate_fit(QWENLONG, CPU_24, 32_768, "f16", 0, flash_attn=True)
    assert (e.ram_bytes, e.verdict) == (22_994_967_296, TIGHT)
    # q8_0 at 16K: 52,224 x 16,384 = 855,638,016 KV -> 20,629,379,840: fits
    e = estimate_fit(QWENLONG, CPU_24, 16_384, "q8_0", 0)
    assert e.flash_attn  # a quantized cache needs it
    assert (e.ram_bytes, e.verdict) == (20_629_379_840, FITS)


def test_recommend_24gb_ram_no_gpu():
    # best f16: 8K (16K without FA needs 22,458,096,384; with FA 21,384,354,560: both over
    # the 21,260,088,115 limit). q8_0 fits 16K (20,629,379,840) = 2 x 8K, so q8_0 wins.
    r = recommend(QWENLONG, CPU_24)
    assert (r.n_ctx, r.kv_type, r.flash_attn, r.n_gpu_layers, r.cpu_moe) == (
        16_384,
        "q8_0",
        True,
        0,
        False,
    )
    assert r.verdict == FITS
    assert r.describe().startswith("Context 16,384, q8_0 KV cache, flash attention, CPU only.")


def test_recommend_24gb_gpu_all_layers():
    # VRAM = 18,700,000,000 + KV + 512 MiB compute + 512 MiB context
    #      = 19,773,741,824 + KV; limit 90% of 23 GiB = 22,226,455,756
    # q8_0: KV <= 2,452,713,932 -> 46,965 tokens -> 32K (KV 1,711,276,032)
    # f16 + FA: <= 24,950 tokens -> 16K; so q8_0 doubles the context
    r = recommend(QWENLONG, GPU_24)
    assert (r.n_ctx, r.kv_type, r.n_gpu_layers, r.cpu_moe) == (32_768, "q8_0", -1, False)
    assert r.estimate.vram_bytes == 19_773_741_824 + 1_711_276_032
    assert r.estimate.ram_bytes == 536_870_912  # the app itself
    # a 64K context does not fit: 19,773,741,824 + 3,422,552,064 > limit
    assert estimate_fit(QWENLONG, GPU_24, 65_536, "q8_0", -1).verdict != FITS


def test_recommend_h100_full_context():
    # nvidia-smi on an H100 (real output): 81,079 MiB free = 85,016,641,536 B; limit 90%
    # = 76,514,977,382. The model's whole 256K at f16 with flash attention:
    # 18,700,000,000 + 98,304 x 262,144 (25,769,803,776) + 1 GiB = 45,543,545,600.
    # Without flash attention the scores would add 262,144 x 512 x 32 x 4 = 16 GiB.
    h100 = parse_nvidia_smi("NVIDIA H100 80GB HBM3, 81559, 81079\n")
    hw = Hardware(128 * GiB, 120 * GiB, h100, gpu_offload=True)
    r = recommend(QWENLONG, hw)
    assert (r.n_ctx, r.kv_type, r.flash_attn, r.n_gpu_layers) == (262_144, "f16", True, -1)
    assert r.estimate.vram_bytes == 45_543_545_600


def test_recommend_12gb_gpu_keeps_experts_in_ram():
    # all layers: 19,773,741,824 > 90% of 11 GiB (10,630,044,057): no.
    # experts in RAM: VRAM = (18,700,000,000 - 17,765,000,000) + 1 GiB + KV
    #                      = 2,008,741,824 + KV; room 8,621,302,233
    # q8_0: 165,083 tokens -> 128K (KV 6,845,104,128); f16 + FA: 87,701 -> 64K
    r = recommend(QWENLONG, GPU_12)
    assert (r.n_ctx, r.kv_type, r.n_gpu_layers, r.cpu_moe) == (131_072, "q8_0", -1, True)
    assert r.estimate.vram_bytes == 2_008_741_824 + 6_845_104_128
    # RAM: the experts + 512 MiB host = 18,301,870,912 of 28 GiB available
    assert r.estimate.ram_bytes == 18_301_870_912
    assert any("experts" in note for note in r.notes)
    # the app's local backend cannot place tensors: the note says how to run it anyway
    assert any("--cpu-moe -c 131072" in note and "llama-server" in note for note in r.notes)


def test_8gb_laptop_does_not_fit():
    # smallest setup, 4K q8_0: 18,700,000,000 + 52,224 x 4,096 (213,909,504) + 1 GiB
    # = 19,987,651,328 against 6 GiB (6,442,450,944) available
    r = recommend(QWENLONG, LAPTOP_8)
    assert r.verdict == NO_FIT
    assert r.estimate.ram_bytes == 19_987_651_328
    assert "needs about 20.0 GB but this machine has 6.4 GB available" in r.describe()
    with pytest.raises(ModelError, match="choose a smaller quantization or context"):
        check_fits_or_raise(QWENLONG, LAPTOP_8, 4096, "q8_0", 0)


def test_partial_offload_small_gpu_small_ram():
    # 16 GiB RAM + an 8 GiB GPU: neither holds the model or its experts alone; layers split
    hw = Hardware(16 * GiB, 14 * GiB, GPU("cuda", "RTX 4060", 8 * GiB, 7 * GiB), True)
    r = recommend(QWENLONG, hw)
    assert 0 < r.n_gpu_layers < QWENLONG.n_layers
    assert r.verdict in (FITS, TIGHT)
    assert any("layers fit on the GPU" in note for note in r.notes)


def test_gpu_without_offload_support_is_ignored():
    hw = Hardware(**RAM_32, gpu=GPU("cuda", "RTX 4090", 24 * GiB, 23 * GiB), gpu_offload=False)
    r = recommend(QWENLONG, hw)
    assert r.n_gpu_layers == 0 and r.estimate.vram_bytes == 0
    assert "no GPU support" in r.notes[0]


def test_unified_memory_counts_once():
    # Apple silicon 36 GiB: the GPU may wire 70% (25.2 GiB); RAM and VRAM are one pool
    total = 36 * GiB
    metal = GPU("metal", "Apple GPU", int(total * 0.7), int(total * 0.7), unified=True)
    hw = Hardware(total, 30 * GiB, metal, gpu_offload=True)
    r = recommend(QWENLONG, hw)
    assert r.n_gpu_layers == -1
    assert r.estimate.ram_bytes + r.estimate.vram_bytes <= 0.9 * 30 * GiB


def test_context_candidates():
    assert _contexts(QWENLONG) == [262_144, 131_072, 65_536, 32_768, 16_384, 8_192, 4_096]
    qwen3_40k = replace(QWENLONG, context_length=40_960)  # Qwen3's 40,960 is no power of 2
    assert _contexts(qwen3_40k) == [40_960, 32_768, 16_384, 8_192, 4_096]


def test_parse_meminfo():
    text = "MemTotal:       32768000 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n"
    assert parse_meminfo(text) == (32_768_000 * 1024, 20_000_000 * 1024)


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


def test_parse_vm_stat():
    text = (
        "Mach Virtual Memory Statistics: (page size of 16384 bytes)\n"
        "Pages free:                               10000.\n"
        "Pages active:                            500000.\n"
        "Pages inactive:                           20000.\n"
        "Pages speculative:                         3000.\n"
        "Pages purgeable:                           1000.\n"
    )
    assert parse_vm_stat(text) == (10_000 + 20_000 + 3_000 + 1_000) * 16_384


def test_detect_hardware_on_this_machine():
    hw = detect_hardware()
    assert hw.total_ram > 256 * 1024**2
    assert 0 < hw.available_ram <= hw.total_ram
    assert hw.cpu_count >= 1
    assert isinstance(hw.gpu_offload, bool)
    assert "RAM" in hw.describe()
