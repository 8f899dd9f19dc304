#!/usr/bin/env bash
# Sign QwenLongReader.app inside out with the hardened runtime, notarize and staple it, and
# wrap it in a signed, notarized, stapled .dmg. macOS only (codesign, notarytool, hdiutil).
#   bash packaging/macos/sign_and_notarize.sh [dist/QwenLongReader.app]
# Output: dist/QwenLongReader-<version>-macos-<arch>.dmg
#
# Environment:
#   CODESIGN_IDENTITY  "Developer ID Application: Your Name (TEAMID)" (security find-identity
#                      -v -p codesigning lists yours). Default "-": ad hoc, for CI without
#                      secrets; an ad-hoc build is never notarized.
#   NOTARY_PROFILE     a keychain profile stored once with
#                      `xcrun notarytool store-credentials NAME --apple-id ... --team-id ...`
#   or NOTARY_APPLE_ID + NOTARY_TEAM_ID + NOTARY_PASSWORD (an app-specific password),
#   or NOTARY_KEY (.p8 file) + NOTARY_KEY_ID + NOTARY_ISSUER (an App Store Connect API key).
#   SKIP_NOTARIZE=1    sign and make the .dmg, but do not notarize.
set -euo pipefail
cd "$(dirname "$0")/../.."
app="${1:-dist/QwenLongReader.app}"
identity="${CODESIGN_IDENTITY:--}"
entitlements=packaging/macos/entitlements.plist
version=$(sed -nE 's/^version *= *"([^"]+)".*/\1/p' pyproject.toml | head -n1)
dmg="dist/QwenLongReader-$version-macos-$(uname -m).dmg"

[ "$(uname -s)" = Darwin ] || { echo "sign_and_notarize.sh runs on macOS only" >&2; exit 1; }
[ -d "$app/Contents/MacOS" ] || { echo "no app bundle at $app (run packaging/build_macos.sh)" >&2; exit 1; }

if [ "$identity" = "-" ]; then
  timestamp=(--timestamp=none)  # ad-hoc signatures cannot carry a secure timestamp
else
  timestamp=(--timestamp)
fi
sign() { codesign --force --options runtime "${timestamp[@]}" --sign "$identity" "$@"; }

# Deepest paths first, so that everything is signed before what contains it.
deepest_first() { awk -F/ '{ print NF "\t" $0 }' | sort -rn -k1,1 | cut -f2-; }

echo "== signing the Mach-O files in $app (identity: $identity)"
# 1. Every Mach-O file (dylibs, Python extensions, Qt plugins, helper executables) except the
#    app's own executables; symlinks are skipped (PyInstaller links Resources/ to Frameworks/).
count=0
while IFS= read -r file; do
  case "$file" in "$app/Contents/MacOS/"*) continue ;; esac
  file -b "$file" | grep -q '^Mach-O' || continue
  sign "$file"
  count=$((count + 1))
done < <(find "$app/Contents" -type f | deepest_first)
echo "signed $count Mach-O files"

# 2. Nested bundles (Qt's .framework folders, Python.framework): sealed after their contents.
while IFS= read -r bundle; do
  sign "$bundle"
done < <(find "$app/Contents" -type d \( -name "*.framework" -o -name "*.app" \) | deepest_first)

# 3. The executables in Contents/MacOS, with the entitlements, then 4. the app itself.
for exe in "$app"/Contents/MacOS/*; do
  [ -f "$exe" ] && [ ! -L "$exe" ] && sign --entitlements "$entitlements" "$exe"
done
sign --entitlements "$entitlements" "$app"
codesign --verify --deep --strict --verbose=2 "$app"
codesign --display --entitlements - "$app" >/dev/null

notarize() {  # notarize FILE: submit, wait, fail with Apple's log when not accepted
  local auth=()
  if [ -n "${NOTARY_PROFILE:-}" ]; then
    auth=(--keychain-profile "$NOTARY_PROFILE")
  elif [ -n "${NOTARY_APPLE_ID:-}" ]; then
    auth=(--apple-id "$NOTARY_APPLE_ID" --team-id "$NOTARY_TEAM_ID" --password "$NOTARY_PASSWORD")
  elif [ -n "${NOTARY_KEY:-}" ]; then
    auth=(--key "$NOTARY_KEY" --key-id "$NOTARY_KEY_ID" --issuer "$NOTARY_ISSUER")
  else
    echo "no notarization credentials: set NOTARY_PROFILE (or see the top of this script)," \
         "or SKIP_NOTARIZE=1" >&2
    return 1
  fi
  echo "== notarizing $1 (usually a few minutes)"
  local result status id
  result=$(xcrun notarytool submit "$1" "${auth[@]}" --wait --output-format json)
  status=$(printf '%s' "$result" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status",""))')
  id=$(printf '%s' "$result" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("id",""))')
  if [ "$status" != "Accepted" ]; then
    echo "notarization of $1: ${status:-no status}" >&2
    [ -n "$id" ] && xcrun notarytool log "$id" "${auth[@]}" >&2 || true
    return 1
  fi
}

notarizing=1
if [ "${SKIP_NOTARIZE:-0}" = 1 ] || [ "$identity" = "-" ]; then
  notarizing=0
  echo "== not notarizing (ad-hoc identity or SKIP_NOTARIZE=1)"
fi

if [ "$notarizing" = 1 ]; then
  # The app first, so that the ticket is stapled to the .app inside the .dmg too (it then
  # opens without a network check, also when copied out of the .dmg).
  mkdir -p build
  ditto -c -k --keepParent "$app" build/notarize-app.zip
  notarize build/notarize-app.zip
  xcrun stapler staple "$app"
  rm -f build/notarize-app.zip
fi

echo "== $dmg"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
rm -f "$dmg"
hdiutil create -volname "QwenLong Reader $version" -srcfolder "$stage" -fs HFS+ \
  -format UDZO -ov "$dmg"
codesign --force "${timestamp[@]}" --sign "$identity" "$dmg"

if [ "$notarizing" = 1 ]; then
  notarize "$dmg"
  xcrun stapler staple "$dmg"
  spctl --assess --type open --context context:primary-signature --verbose=2 "$dmg"
  spctl --assess --type execute --verbose=2 "$app"
fi
echo "Built $dmg ($(du -h "$dmg" | cut -f1))"
