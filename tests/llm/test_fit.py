"""The placement plan over machine profiles: every plan fits its machine, more memory
never gives a worse plan, and its memory model matches what llama.cpp allocates."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest

from app.llm.fit import (
    COMPUTE_BASE,
    HOST_OVERHEAD,
    SAFETY,
    Machine,
    Shape,
    memory_needed,
    plan_placement,
)
from app.llm.gguf import read_gguf_info
from app.llm.local import LocalBackend
from app.llm.qwenlong import QWENLONG_QUANTS, qwenlong_reference
from tests.fixtures.tiny_qwen3moe import write_tiny_qwen3moe

GB = 10**9
CPU = [Machine(ram * GB) for ram in (32, 64, 128)]
CUDA = [Machine(ram * GB, vram * GB) for vram in (8, 12, 16, 24, 48, 80) for ram in (32, 64, 128)]
MACS = [Machine(total * GB, int(total * GB * 0.7), unified=True) for total in (32, 64, 128)]
PROFILES = CPU + CUDA + MACS


def _id(m: Machine) -> str:
    kind = "mac" if m.unified else ("gpu" if m.has_gpu else "cpu")
    return f"{kind}-{m.vram_bytes // GB}v-{m.ram_bytes // GB}r"


@pytest.mark.parametrize("quant", list(QWENLONG_QUANTS))
@pytest.mark.parametrize("machine", PROFILES, ids=_id)
def test_every_plan_fits_its_machine(quant, machine):
    info = qwenlong_reference(quant)
    plan = plan_placement(info, machine)
    if not plan.fits:
        # only when even the smallest CPU-only setup exceeds the RAM
        assert info.file_size > machine.ram_bytes * SAFETY - HOST_OVERHEAD
        assert "Nothing fits" in plan.reason
        return
    vram, ram = memory_needed(
        Shape.of(info),
        n_gpu_layers=plan.n_gpu_layers,
        n_cpu_moe=plan.n_cpu_moe,
        n_ctx=plan.n_ctx,
        kv_type=plan.kv_type,
        flash_attn=plan.flash_attn,
    )
    assert (vram, ram) == (plan.vram_bytes, plan.ram_bytes)
    if machine.unified:
        assert vram + ram <= machine.ram_bytes * SAFETY
        assert vram <= machine.vram_bytes * SAFETY
    else:
        assert ram <= machine.ram_bytes * SAFETY
        assert vram <= machine.vram_bytes * SAFETY
    assert 4096 <= plan.n_ctx <= 131_072
    if not machine.has_gpu:
        assert (plan.n_gpu_layers, plan.n_cpu_moe, plan.vram_bytes) == (0, 0, 0)
    if plan.kv_type != "f16":
        assert plan.flash_attn  # llama.cpp needs it for a quantized V cache
    assert plan.reason


def _better_or_equal(bigger, smaller) -> bool:
    return bigger.fits >= smaller.fits and bigger.rank <= smaller.rank


@pytest.mark.parametrize("quant", list(QWENLONG_QUANTS))
def test_more_memory_never_gives_a_worse_plan(quant):
    info = qwenlong_reference(quant)
    for ram in (32, 64, 128):
        plans = [
            plan_placement(info, Machine(ram * GB, v * GB)) for v in (0, 8, 12, 16, 24, 48, 80)
        ]
        for smaller, bigger in zip(plans, plans[1:], strict=False):
            assert _better_or_equal(bigger, smaller), (ram, smaller, bigger)
            assert bigger.n_ctx >= smaller.n_ctx or not smaller.fits
    for vram in (0, 8, 12, 24, 80):
        plans = [plan_placement(info, Machine(r * GB, vram * GB)) for r in (16, 32, 64, 128)]
        for smaller, bigger in zip(plans, plans[1:], strict=False):
            assert _better_or_equal(bigger, smaller), (vram, smaller, bigger)
    macs = [plan_placement(info, m) for m in MACS]
    for smaller, bigger in zip(macs, macs[1:], strict=False):
        assert _better_or_equal(bigger, smaller)


def test_the_typical_workstations():
    q4 = qwenlong_reference("Q4_K_M")
    # a 24 GB card: every layer's attention on the GPU, some layers' experts in RAM
    plan = plan_placement(q4, Machine(64 * GB, 24 * GB))
    assert plan.n_gpu_layers == -1 and 0 < plan.n_cpu_moe < 48
    assert plan.n_ctx == 131_072
    # a 12 GB card keeps more experts in RAM than a 24 GB one
    assert plan_placement(q4, Machine(64 * GB, 12 * GB)).n_cpu_moe > plan.n_cpu_moe
    # an 80 GB card holds everything, with an exact (f16) cache
    big = plan_placement(q4, Machine(128 * GB, 80 * GB))
    assert (big.n_gpu_layers, big.n_cpu_moe, big.kv_type) == (-1, 0, "f16")
    # the native context when asked for
    assert plan_placement(q4, Machine(128 * GB, 80 * GB), max_ctx=262_144).n_ctx == 262_144


def test_memory_model_matches_llama_cpp_on_the_fixture(tmp_path):
    """The plan's weights and KV cache against llama.cpp's own buffer-size log lines."""
    path = write_tiny_qwen3moe(tmp_path / "tiny.gguf")
    info = read_gguf_info(path)
    shape = Shape.of(info)
    backend = LocalBackend(path, n_ctx=2048, flash_attn=True)
    try:
        log = "".join(backend.load_params.log_lines)
    finally:
        backend.close()
    weights_mib = sum(backend.load_params.loaded_buffers().values())
    planned = sum(shape.layer_other) + sum(shape.layer_experts)
    planned += shape.output_bytes + shape.embedding_bytes
    assert abs(weights_mib * 2**20 - planned) / planned < 0.02
    kv = [float(x) for x in re.findall(r"CPU KV buffer size =\s*([\d.]+) MiB", log)]
    assert kv, "llama.cpp's context log has no KV buffer line"
    assert abs(kv[0] * 2**20 - shape.kv_bytes("f16", 2048, info.n_layers)) < 2**18
    # the compute buffer (logits of a batch over the 151,936-token vocabulary included)
    compute = [float(x) for x in re.findall(r"compute buffer size =\s*([\d.]+) MiB", log)]
    assert compute and max(compute) * 2**20 <= COMPUTE_BASE


def test_models_plan_prints_one_json_object():
    from app.cli import build_parser

    args = build_parser().parse_args(
        ["models", "--plan", "Q4_K_M", "--vram-gb", "12", "--ram-gb", "64", "--json"]
    )
    out = StringIO()
    assert args.func(args, out) == 0
    data = json.loads(out.getvalue())
    for key in ("n_gpu_layers", "n_cpu_moe", "n_ctx", "kv_type", "flash_attn", "vram_bytes"):
        assert key in data
    assert data["ram_bytes"] > 0 and data["reason"]
    assert data["machine"]["vram_bytes"] == 12 * GB
    assert data["n_gpu_layers"] == -1 and data["n_cpu_moe"] > 0


def test_models_plan_for_a_file_and_a_mac(tmp_path):
    from app.cli import build_parser

    path = write_tiny_qwen3moe(tmp_path / "tiny.gguf")
    out = StringIO()
    args = build_parser().parse_args(["models", "--plan", str(path), "--ram-gb", "8"])
    assert args.func(args, out) == 0
    assert "Plan:" in out.getvalue() and "CPU only" in out.getvalue()
    out = StringIO()
    args = build_parser().parse_args(["models", "--plan", "Q8_0", "--unified", "--ram-gb", "16"])
    assert args.func(args, out) == 4  # nothing fits: the ModelError exit code
    assert "Nothing fits" in out.getvalue()


def test_cli_placement_flags_imply_manual():
    from app.cli import build_parser
    from app.model_options import settings_from_args

    args = build_parser().parse_args(["ask", "f.pdf", "q?", "--n-cpu-moe", "12"])
    settings = settings_from_args(args)
    assert (settings.placement, settings.n_cpu_moe, settings.experts_in_ram) == ("manual", 12, 12)
    args = build_parser().parse_args(["ask", "f.pdf", "q?", "--cpu-moe"])
    assert settings_from_args(args).experts_in_ram == -1
    args = build_parser().parse_args(["ask", "f.pdf", "q?"])
    assert settings_from_args(args).placement == "auto"
