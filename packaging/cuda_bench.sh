#!/usr/bin/env bash
# Build llama-cpp-python with CUDA and measure the app on an NVIDIA GPU.
#   bash packaging/cuda_bench.sh build [SDIST]   # compile the CUDA build into $SITE
#   bash packaging/cuda_bench.sh bench [GGUF]    # throughput + pipeline benches on the GPU
# Without a GGUF, bench writes a random-weight qwen3moe with QwenLong-L1.5-30B-A3B's real
# layer shape (4 of its 48 layers, f16): the real file cannot be downloaded everywhere, and
# per-layer cost is what offload changes. Results: bench-results/ (JSON), see
# docs/benchmarks.md. Python packages the app needs must already be importable.
set -euo pipefail
cd "$(dirname "$0")/.."
SITE="${SITE:-/tmp/site}"
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
python="${PYTHON:-python3}"

case "${1:-}" in
  build)
    sdist="${2:-llama-cpp-python==0.3.36}"
    # One architecture keeps the build to minutes; a release build lists several
    # (e.g. "75;80;86;89;90"). GGML_NATIVE=OFF: no host-CPU-specific code either.
    CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH:-90} -DGGML_NATIVE=OFF" \
      CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      "$python" -m pip install --no-build-isolation --no-deps --target "$SITE" "$sdist"
    ;;
  bench)
    # Issue 12's GPU figures in one run (~5 min on an H100/H200 after the build): per
    # placement (every layer on the GPU, every expert in RAM, the plan's n_cpu_moe for a
    # 12 GB and a 24 GB card) prompt and generation tokens/s at 4K, 32K and 128K, app vs
    # raw llama-cpp-python; single-pass time to first token at 128K; the memory-agent
    # pipeline ratio over >= 20 steps. PROMPTS, GEN_TOKENS, TTFT_TOKENS, STEPS, CTX override.
    model="${2:-}"
    if [ -z "$model" ]; then
      model=/tmp/qwenlong-slice-4L-f16.gguf
      [ -f "$model" ] || "$python" -c "
import numpy as np
from tests.fixtures.tiny_qwen3moe import qwenlong_slice, write_qwen3moe
write_qwen3moe('$model', qwenlong_slice(4), np.float16)"
    fi
    export QWENLONG_READER_HOME="${QWENLONG_READER_HOME:-$(mktemp -d)}"
    out="${OUT:-bench-results}"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$python" -m app models --plan "$model" --json || true
    # shellcheck disable=SC2086
    "$python" -X faulthandler -m app.bench --only placement --model "$model" --out "$out" \
      --placement-prompts ${PROMPTS:-4096 32768 131072} --gen-tokens "${GEN_TOKENS:-128}" \
      --cards-gb 12 24
    "$python" -X faulthandler -m app.bench --only ttft --model "$model" --gpu-layers -1 \
      --ttft-tokens "${TTFT_TOKENS:-131072}" --out "$out"
    "$python" -X faulthandler -m app.bench --only pipeline --model "$model" --gpu-layers -1 \
      --flash-attn --steps "${STEPS:-24}" --ctx "${CTX:-8192}" --out "$out"
    ;;
  *)
    echo "usage: bash packaging/cuda_bench.sh build [SDIST] | bench [GGUF]" >&2; exit 2 ;;
esac
