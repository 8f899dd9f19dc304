#!/usr/bin/env bash
# Install QwenLong Reader for this user from the unpacked tarball (no root needed):
#   ./install.sh            # into ~/.local/opt/QwenLongReader, menu entry and icon
#   ./install.sh --remove   # remove all of that again (your documents' data stays)
# PREFIX=/opt/qwenlong ./install.sh installs elsewhere (with sudo for system folders).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
prefix=${PREFIX:-$HOME/.local/opt}
app="$prefix/QwenLongReader"
desktop="$data/applications/qwenlong-reader.desktop"
icons="$data/icons/hicolor"

if [ "${1:-}" = "--remove" ]; then
  rm -rf "$app" "$desktop" "$icons/256x256/apps/qwenlong-reader.png" \
    "$icons/scalable/apps/qwenlong-reader.svg" "$HOME/.local/bin/QwenLongReader"
  echo "Removed QwenLong Reader."
  exit 0
fi

mkdir -p "$prefix" "$data/applications" "$icons/256x256/apps" "$icons/scalable/apps" \
  "$HOME/.local/bin"
rm -rf "$app"
cp -a "$here/QwenLongReader" "$app"
cp "$here/qwenlong-reader.png" "$icons/256x256/apps/"
cp "$here/qwenlong-reader.svg" "$icons/scalable/apps/"
sed -e "s|^Exec=.*|Exec=\"$app/QwenLongReader\" %f|" -e "s|^TryExec=.*|TryExec=$app/QwenLongReader|" \
  "$here/qwenlong-reader.desktop" > "$desktop"
ln -sf "$app/QwenLongReader" "$HOME/.local/bin/QwenLongReader"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$icons" || true
echo "Installed into $app; start it from the menu or run QwenLongReader (~/.local/bin)."
echo "Running its self-test (about half a minute)..."
if "$app/QwenLongReader" --self-test >/dev/null 2>&1; then
  echo "Self-test passed."
else
  echo "Self-test failed: run $app/QwenLongReader --self-test to see why."
fi
