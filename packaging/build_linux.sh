#!/usr/bin/env bash
# Build the Linux bundle, prove it works, and pack it:
#   bash packaging/bootstrap.sh test    # once on a fresh machine: builds .venv (and tests)
#   bash packaging/build_linux.sh
# 1. PyInstaller one-dir build from packaging/qwenlong-reader.spec into dist/QwenLongReader/
# 2. dist/QwenLongReader/QwenLongReader --self-test, offscreen, from an empty folder: Qt
#    window, PDF ingest, demo model load, one memory step, database. Fails the build if
#    any check fails (the JSON report is kept in build/selftest-linux.json).
# 3. dist/QwenLongReader-<version>-linux-<arch>-<edition>.tar.gz (edition: cpu, or cuda13
#    for the CUDA build): the bundle, a .desktop file, the icons and install.sh (per-user
#    install into ~/.local).
# Idempotent: every run starts from a clean build/pyinstaller and dist/QwenLongReader.
# PYTHON=/path/to/python overrides the interpreter (default .venv/bin/python).
# EDITION=cuda builds the CUDA edition from a venv made by packaging/build_cuda.sh:
#   bash packaging/build_cuda.sh venv && EDITION=cuda PYTHON=build/cuda-venv/bin/python \
#     bash packaging/build_linux.sh
# The self-test's build report must then show CUDA compiled in (on a machine without an
# NVIDIA GPU it says so and runs on the CPU), and the driver's libcuda must not be bundled.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python="${PYTHON:-.venv/bin/python}"
name=QwenLongReader
version=$(sed -nE 's/^version *= *"([^"]+)".*/\1/p' pyproject.toml | head -n1)
arch=$(uname -m)
edition="${EDITION:-cpu}"
case "$edition" in cpu|cuda) ;; *) echo "EDITION=$edition: use cpu or cuda" >&2; exit 2 ;; esac
export QWENLONG_EDITION="$edition"  # the spec checks the venv holds that build

if ! "$python" -c "import llama_cpp, PySide6, pymupdf" 2>/dev/null; then
  echo "$python cannot import the app's dependencies: run 'bash packaging/bootstrap.sh test' first" >&2
  exit 1
fi
# The PyInstaller pin lives in pyproject.toml's `package` extra when it has one.
pin=$(grep -oE '"pyinstaller==[^"]+"' pyproject.toml | tr -d '"' | head -n1 || true)
pin=${pin:-pyinstaller==6.22.3}
if [ "$("$python" -c 'import PyInstaller; print(PyInstaller.__version__)' 2>/dev/null)" != "${pin#*==}" ]; then
  echo "Installing $pin into $python's environment..."
  "$python" -m pip install -q "$pin"
fi

seconds() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(seconds)" 'BEGIN { printf "%.1f", b - a }'; }

echo "== PyInstaller: $name $version"
t0=$(seconds)
rm -rf build/pyinstaller "dist/$name"
mkdir -p build dist
"$python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/qwenlong-reader.spec
build_s=$(elapsed "$t0")

echo "== self-test of the frozen app"
t1=$(seconds)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# From an empty folder, with nothing of the venv or the checkout on the paths.
if ! (cd "$scratch" && env -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV QT_QPA_PLATFORM=offscreen \
      "$root/dist/$name/$name" --self-test) > build/selftest-linux.json; then
  cat build/selftest-linux.json >&2
  echo "self-test of dist/$name FAILED" >&2
  exit 1
fi
selftest_s=$(elapsed "$t1")
# The edition's name comes from what the frozen app reports it runs, never from a guess:
# "cpu", or "cuda13" after the CUDA runtime's major version.
tag=$("$python" packaging/edition_tag.py "$edition" build/selftest-linux.json)
driver=$(find "dist/$name" \( -name 'libcuda.so*' -o -name 'libnvidia-*.so*' \) -print)
if [ -n "$driver" ]; then
  echo "the bundle holds the NVIDIA driver's libraries, which must come from the system: $driver" >&2
  exit 1
fi
stage="QwenLongReader-$version-linux-$arch-$tag"

echo "== tarball"
rm -rf "build/$stage" "dist/$stage.tar.gz"
mkdir -p "build/$stage"
cp -a "dist/$name" "build/$stage/$name"
cp packaging/linux/qwenlong-reader.desktop packaging/linux/install.sh "build/$stage/"
cp packaging/icons/qwenlong-reader.png packaging/icons/qwenlong-reader.svg "build/$stage/"
chmod +x "build/$stage/install.sh"
tar -C build --owner=0 --group=0 --numeric-owner --sort=name \
  -czf "dist/$stage.tar.gz" "$stage"
rm -rf "build/$stage"

echo "Built dist/$name ($(du -sh "dist/$name" | cut -f1)) and dist/$stage.tar.gz" \
  "($(du -h "dist/$stage.tar.gz" | cut -f1)); PyInstaller ${build_s} s, self-test ${selftest_s} s" \
  "(report: build/selftest-linux.json)"
