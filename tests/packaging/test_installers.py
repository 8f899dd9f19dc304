"""The installer definitions: macOS plists, the NSIS script (compiled when makensis is
installed), the Linux desktop entry, the icons and the build scripts' syntax. Fast: no
bundle is built here."""

from __future__ import annotations

import configparser
import os
import plistlib
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
NSI = PACKAGING / "windows" / "installer.nsi"
MAKENSIS = shutil.which("makensis")
needs_makensis = pytest.mark.skipif(MAKENSIS is None, reason="makensis (NSIS) is not installed")
SETUP = "QwenLongReader-test-setup.exe"  # makensis warns about a bare "setup.exe"


# -- macOS ------------------------------------------------------------------------------------
def test_info_plist_template():
    plist = plistlib.loads((PACKAGING / "macos" / "Info.plist").read_bytes())
    for key in (
        "CFBundleName",
        "CFBundleDisplayName",
        "CFBundleIdentifier",
        "CFBundleExecutable",
        "CFBundleIconFile",
        "CFBundlePackageType",
        "LSMinimumSystemVersion",
    ):
        assert isinstance(plist[key], str) and plist[key], key
    assert re.fullmatch(r"[A-Za-z0-9.-]+", plist["CFBundleIdentifier"])
    assert plist["CFBundlePackageType"] == "APPL"
    assert plist["CFBundleExecutable"] == "QwenLongReader"  # the spec's EXE name
    assert (PACKAGING / "icons" / plist["CFBundleIconFile"]).is_file()
    # The spec fills in the version from pyproject.toml.
    assert plist["CFBundleShortVersionString"] == plist["CFBundleVersion"] == "@VERSION@"
    assert plist["NSHighResolutionCapable"] is True
    types = plist["CFBundleDocumentTypes"]
    assert isinstance(types, list) and types
    content_types = set()
    for doc in types:
        assert isinstance(doc["CFBundleTypeName"], str)
        assert doc["CFBundleTypeRole"] in {"Viewer", "Editor"}
        assert doc["LSHandlerRank"] in {"Default", "Alternate", "Owner", "None"}
        assert all(isinstance(t, str) for t in doc["LSItemContentTypes"])
        content_types |= set(doc["LSItemContentTypes"])
    assert {"com.adobe.pdf", "public.plain-text"} <= content_types


def test_entitlements():
    ent = plistlib.loads((PACKAGING / "macos" / "entitlements.plist").read_bytes())
    assert ent["com.apple.security.cs.allow-unsigned-executable-memory"] is True
    assert all(isinstance(v, bool) for v in ent.values())
    assert all(k.startswith("com.apple.security.") for k in ent)
    # Notarization refuses a debuggable build; the app reads files anywhere: no sandbox.
    assert "com.apple.security.get-task-allow" not in ent
    assert not ent.get("com.apple.security.app-sandbox", False)


def test_sign_script_signs_inside_out_and_notarizes():
    text = (PACKAGING / "macos" / "sign_and_notarize.sh").read_text(encoding="utf-8")
    assert "--options runtime" in text and "--entitlements" in text
    assert "deepest_first" in text and "Mach-O" in text
    for command in ("notarytool submit", "--wait", "stapler staple", "hdiutil create"):
        assert command in text, command
    # the .app is signed after everything in it
    assert text.index('sign --entitlements "$entitlements" "$app"') > text.index("deepest_first)")


# -- Windows ----------------------------------------------------------------------------------
def test_nsis_script_has_the_required_pieces():
    text = NSI.read_text(encoding="utf-8")
    assert "RequestExecutionLevel user" in text
    assert 'InstallDir "$LOCALAPPDATA\\Programs\\' in text
    assert re.search(r'CreateShortcut "\$SMPROGRAMS\\.+\.lnk" "\$INSTDIR\\\$\{APP_EXE\}"', text)
    assert 'WriteUninstaller "$INSTDIR\\Uninstall.exe"' in text
    assert '"Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\${APP_ID}"' in text
    for value in ("DisplayName", "DisplayVersion", "UninstallString", "DisplayIcon"):
        assert f'WriteRegStr HKCU "${{UNINSTALL_KEY}}" "{value}"' in text
    assert 'DeleteRegKey HKCU "${UNINSTALL_KEY}"' in text
    # Per user only: nothing machine-wide.
    assert not re.search(r"\b(HKLM|HKEY_LOCAL_MACHINE)\b", text)
    assert "$PROGRAMFILES" not in text and "SetShellVarContext all" not in text
    # The PDF association is optional and unselected (/o).
    section = re.search(r'^Section /o "([^"]*PDF[^"]*)" (\w+)', text, re.M)
    assert section, "an unselected PDF association section"
    assert "Software\\Classes\\.pdf\\OpenWithProgids" in text
    # Signing hook for the installer and its uninstaller.
    hook = text[text.index("!ifdef SIGN_CMD") :]
    hook = hook[: hook.index("!endif")]
    assert "!finalize" in hook and "!uninstfinalize" in hook and "%1" in hook
    # The uninstaller never deletes a folder the user may have chosen, recursively.
    uninstall = text[text.index('Section "Uninstall"') :]
    assert 'RMDir /r "$INSTDIR"' not in uninstall


def _tiny_bundle(folder: Path) -> Path:
    bundle = folder / "QwenLongReader"
    (bundle / "_internal" / "resources").mkdir(parents=True)
    (bundle / "QwenLongReader.exe").write_bytes(b"MZ dummy")
    (bundle / "qwenlong-reader.exe").write_bytes(b"MZ dummy")
    (bundle / "_internal" / "resources" / "sample.txt").write_text("x")
    return bundle


def _makensis(tmp_path: Path, *defines: str) -> subprocess.CompletedProcess[str]:
    bundle = _tiny_bundle(tmp_path)
    args = [MAKENSIS or "makensis", "-V2", "-NOCD", "-DVERSION=1.2.3", "-DVERSION_QUAD=1.2.3.0"]
    args += [f"-DBUNDLE_DIR={bundle}", f"-DOUTFILE={tmp_path / SETUP}", "-DCOMPRESSOR=zlib"]
    args += [*defines, str(NSI)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


@needs_makensis
def test_makensis_compiles_a_tiny_bundle(tmp_path):
    done = _makensis(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    setup = (tmp_path / SETUP).read_bytes()
    assert setup[:2] == b"MZ" and len(setup) > 30_000
    assert "warning" not in (done.stdout + done.stderr).lower()


@needs_makensis
@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in signer is a shell script")
def test_makensis_signs_installer_and_uninstaller(tmp_path):
    log = tmp_path / "signed.log"
    signer = tmp_path / "sign.sh"
    signer.write_text(f'#!/bin/sh\necho "$1" >> "{log}"\n')
    signer.chmod(0o755)
    done = _makensis(tmp_path, f"-DSIGN_CMD={signer}")
    assert done.returncode == 0, done.stdout + done.stderr
    signed = log.read_text().splitlines()
    assert len(signed) == 2  # the uninstaller (a temporary file), then the installer
    assert signed[-1] == str(tmp_path / SETUP)
    failing = _makensis(tmp_path / "again", "-DSIGN_CMD=false")
    assert failing.returncode != 0  # a signing failure fails the build


@needs_makensis
@pytest.mark.skipif(sys.platform == "win32", reason="bash script")
def test_build_windows_installer_script(tmp_path, version):
    bundle = _tiny_bundle(tmp_path)
    out = tmp_path / "out" / SETUP
    env = {**os.environ, "OUTFILE": str(out), "NSIS_COMPRESSOR": "zlib"}
    env.pop("SIGN_CMD", None)
    script = PACKAGING / "build_windows_installer.sh"
    done = subprocess.run(
        ["bash", str(script), str(bundle)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_bytes()[:2] == b"MZ"
    assert f"Built {out}" in done.stdout


# -- Linux ------------------------------------------------------------------------------------
def test_desktop_entry():
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(PACKAGING / "linux" / "qwenlong-reader.desktop", encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Terminal"] == "false"
    assert entry["Exec"].split()[0] == "QwenLongReader" and "%f" in entry["Exec"]
    assert (PACKAGING / "icons" / f"{entry['Icon']}.png").is_file()
    assert "application/pdf" in entry["MimeType"].split(";")
    assert entry["MimeType"].endswith(";") and entry["Categories"].endswith(";")


def test_icons_are_valid_containers():
    png = (PACKAGING / "icons" / "qwenlong-reader.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (256, 256)
    ico = (PACKAGING / "icons" / "qwenlong-reader.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (reserved, kind) == (0, 1) and count >= 4
    sizes = set()
    for i in range(count):
        width, _, _, _, _, bits, length, offset = struct.unpack(
            "<BBBBHHII", ico[6 + 16 * i : 22 + 16 * i]
        )
        assert bits == 32 and offset + length <= len(ico)
        sizes.add(width or 256)
    assert {16, 32, 48, 256} <= sizes
    icns = (PACKAGING / "icons" / "qwenlong-reader.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
    kinds, offset = set(), 8
    while offset < len(icns):
        kind, length = (
            icns[offset : offset + 4],
            struct.unpack(">I", icns[offset + 4 : offset + 8])[0],
        )
        assert icns[offset + 8 : offset + 16] == b"\x89PNG\r\n\x1a\n"
        kinds.add(kind)
        offset += length
    assert offset == len(icns) and {b"ic07", b"ic08", b"ic09", b"ic10"} <= kinds


@pytest.mark.skipif(shutil.which("bash") is None or sys.platform == "win32", reason="no bash")
def test_shell_scripts_parse():
    scripts = [
        PACKAGING / "build_linux.sh",
        PACKAGING / "build_macos.sh",
        PACKAGING / "build_windows.sh",
        PACKAGING / "build_windows_installer.sh",
        PACKAGING / "linux" / "install.sh",
        PACKAGING / "macos" / "sign_and_notarize.sh",
    ]
    for script in scripts:
        done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, f"{script}: {done.stderr}"
        assert os.access(script, os.X_OK), f"{script} is not executable"
