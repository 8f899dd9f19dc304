#!/usr/bin/env bash
# Compile the NSIS installer around a PyInstaller bundle:
#   bash packaging/build_windows_installer.sh [BUNDLE_DIR]      (default dist/QwenLongReader)
# writes dist/QwenLongReader-<version>-setup.exe.
#
# On Windows (Git Bash, as in .github/workflows/release.yml) this is the release installer.
# On Linux, given the Linux bundle, it is a syntax and packaging check of
# packaging/windows/installer.nsi with Debian's makensis (the result installs Linux files:
# never ship it). makensis is installed with apt-get when missing (sudo only when not root).
#
# Environment:
#   SIGN_CMD         a signing command that takes the file as its last argument, e.g.
#                    'signtool sign /fd sha256 /tr http://timestamp.digicert.com /td sha256 /a'
#                    signs the bundle's executables here, then makensis signs the installer
#                    and its uninstaller (!finalize / !uninstfinalize).
#   NSIS_COMPRESSOR  makensis SetCompressor argument (default "/SOLID lzma"; "zlib" is
#                    several times faster, for checks).
#   OUTFILE          where to write the installer.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle="${1:-dist/QwenLongReader}"
version=$(sed -nE 's/^version *= *"([^"]+)".*/\1/p' pyproject.toml | head -n1)
# VIProductVersion wants four numbers: 0.1.0 -> 0.1.0.0, 1.2.0rc1 -> 1.2.0.0
quad=$(printf '%s' "$version" | grep -oE '[0-9]+' | head -n3 | tr '\n' '.')
while [ "$(printf '%s' "$quad" | tr -cd . | wc -c)" -lt 3 ]; do quad="${quad}0."; done
quad="${quad}0"
outfile="${OUTFILE:-dist/QwenLongReader-$version-setup.exe}"

if [ ! -d "$bundle" ]; then
  echo "no bundle at $bundle: build one first (bash packaging/build_linux.sh, or PyInstaller" \
       "with packaging/qwenlong-reader.spec on Windows)" >&2
  exit 1
fi

makensis=$(command -v makensis || true)
for candidate in "/c/Program Files (x86)/NSIS/makensis.exe" "/c/Program Files/NSIS/makensis.exe"; do
  [ -n "$makensis" ] && break
  [ -x "$candidate" ] && makensis="$candidate"
done
if [ -z "$makensis" ]; then
  if [ "$(uname -s)" = Linux ] && command -v apt-get >/dev/null; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "Installing NSIS (makensis)..."
    $sudo apt-get update -qq && $sudo apt-get install -y -qq nsis >/dev/null
    makensis=$(command -v makensis)
  else
    echo "makensis not found: install NSIS 3.08+ (Windows: choco install nsis;" \
         "macOS: brew install makensis; Debian/Ubuntu: apt-get install nsis)" >&2
    exit 1
  fi
fi

case "$(uname -s)" in
  MINGW*|MSYS*|CYGWIN*)
    native() { cygpath -w "$1"; }
    # Git Bash would rewrite arguments that look like POSIX paths (signtool's /fd, /SOLID).
    export MSYS_NO_PATHCONV=1 MSYS2_ARG_CONV_EXCL='*' ;;
  *) native() { printf '%s' "$1"; } ;;
esac

if [ -n "${SIGN_CMD:-}" ]; then
  for exe in "$bundle"/*.exe; do
    [ -e "$exe" ] || continue
    echo "Signing $exe"
    $SIGN_CMD "$(native "$exe")"
  done
fi

mkdir -p "$(dirname "$outfile")"
rm -f "$outfile"
args=(-V2 -NOCD
      "-DVERSION=$version" "-DVERSION_QUAD=$quad"
      "-DBUNDLE_DIR=$(native "$(cd "$bundle" && pwd)")"
      "-DOUTFILE=$(native "$(cd "$(dirname "$outfile")" && pwd)/$(basename "$outfile")")")
[ -n "${SIGN_CMD:-}" ] && args+=("-DSIGN_CMD=$SIGN_CMD")
[ -n "${NSIS_COMPRESSOR:-}" ] && args+=("-DCOMPRESSOR=$NSIS_COMPRESSOR")
started=$(date +%s)
"$makensis" "${args[@]}" "$(native packaging/windows/installer.nsi)"
echo "Built $outfile ($(du -h "$outfile" | cut -f1)) in $(( $(date +%s) - started )) s" \
     "with $("$makensis" -VERSION)"
