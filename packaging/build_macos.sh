#!/usr/bin/env bash
# Build, smoke-test, sign and package the macOS app (Apple silicon, Metal):
#   CMAKE_ARGS="-DGGML_METAL=on -DGGML_NATIVE=OFF" bash packaging/bootstrap.sh test   # once
#   bash packaging/build_macos.sh
# 1. PyInstaller (packaging/qwenlong-reader.spec) -> dist/QwenLongReader.app; the spec fails
#    if llama-cpp-python was built without Metal (no libggml-metal).
# 2. --self-test of the unsigned app, then packaging/macos/sign_and_notarize.sh (hardened
#    runtime; notarized when CODESIGN_IDENTITY and notary credentials are set), then the
#    self-test again on the signed app: the hardened runtime is what breaks ctypes and
#    dylib loading when an entitlement is missing.
# 3. A Metal check: the demo model answers one question with every layer on the GPU.
# Output: dist/QwenLongReader-<version>-macos-<arch>.dmg. Reports in build/selftest-macos*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python="${PYTHON:-.venv/bin/python}"
app="dist/QwenLongReader.app"
exe="$root/$app/Contents/MacOS/QwenLongReader"

"$python" -c "import llama_cpp, PySide6, pymupdf" || {
  echo "run CMAKE_ARGS=\"-DGGML_METAL=on -DGGML_NATIVE=OFF\" bash packaging/bootstrap.sh test first" >&2
  exit 1
}
pin=$(grep -oE '"pyinstaller==[^"]+"' pyproject.toml | tr -d '"' | head -n1 || true)
pin=${pin:-pyinstaller==6.22.3}
if [ "$("$python" -c 'import PyInstaller; print(PyInstaller.__version__)' 2>/dev/null)" != "${pin#*==}" ]; then
  "$python" -m pip install -q "$pin"
fi

rm -rf build/pyinstaller dist/QwenLongReader "$app"
mkdir -p build dist
"$python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/qwenlong-reader.spec

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
self_test() {  # self_test REPORT
  if ! (cd "$scratch" && env -u PYTHONPATH -u PYTHONHOME QT_QPA_PLATFORM=offscreen \
        "$exe" --self-test) > "$1"; then
    cat "$1" >&2
    echo "self-test of $app FAILED ($1)" >&2
    exit 1
  fi
}
echo "== self-test (as built)"
self_test build/selftest-macos.json

bash packaging/macos/sign_and_notarize.sh "$app"
echo "== self-test (signed, hardened runtime)"
self_test build/selftest-macos-signed.json

echo "== Metal: the demo model with every layer on the GPU"
(cd "$scratch" && QWENLONG_READER_HOME="$scratch/home" QWENLONG_READER_LLAMA_VERBOSE=1 \
  QT_QPA_PLATFORM=offscreen "$exe" ask "$root/resources/sample-audit-report.pdf" \
  "How many safety incidents?" --mode single_pass --max-new-tokens 16 --gpu-layers -1) \
  > build/metal-check.out 2> build/metal-check.err
if ! grep -qE "offloaded [1-9][0-9]*/[0-9]+ layers to GPU" build/metal-check.err; then
  tail -n 40 build/metal-check.err >&2
  echo "Metal check FAILED: no layer was offloaded (build/metal-check.err)" >&2
  exit 1
fi
grep -E "offloaded [0-9]+/[0-9]+ layers to GPU" build/metal-check.err
echo "Built $app ($(du -sh "$app" | cut -f1)) and dist/QwenLongReader-*-macos-*.dmg"
