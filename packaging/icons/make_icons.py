"""Render qwenlong-reader.svg into the icon files the installers need, with Qt only.

    .venv/bin/python packaging/icons/make_icons.py

Writes, next to this script:
  qwenlong-reader.png   256 px, for Linux (.desktop, hicolor theme) and the window
  qwenlong-reader.ico   16-256 px, for the Windows executable and the NSIS installer
  qwenlong-reader.icns  16-1024 px, for the macOS .app

Pillow is not needed: .ico and .icns are simple containers, written here by hand (small
sizes in the .ico as 32-bit DIBs, which every Windows and NSIS accept; 256 px as PNG).
The outputs are committed, so a build never has to run this; run it after editing the SVG.
On a Mac, `iconutil` could build the .icns from an .iconset folder instead.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SVG = HERE / "qwenlong-reader.svg"
ICO_SIZES = (16, 24, 32, 48, 64, 256)
# (type, pixels): the PNG-payload element types that macOS 10.7+ reads.
ICNS_TYPES = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"ic11", 32),  # 16@2x
    (b"icp6", 64),
    (b"ic12", 64),  # 32@2x
    (b"ic07", 128),
    (b"ic13", 256),  # 128@2x
    (b"ic08", 256),
    (b"ic14", 512),  # 256@2x
    (b"ic09", 512),
    (b"ic10", 1024),  # 512@2x
)


def render(size: int):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {SVG}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def png_bytes(image) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise SystemExit("Qt could not encode a PNG")
    buffer.close()
    return bytes(data.data())


def dib_bytes(image) -> bytes:
    """A 32-bit BGRA DIB as an .ico stores it: bottom-up rows, then an all-zero AND mask."""
    size = image.width()
    rows = []
    for y in range(size - 1, -1, -1):  # bottom-up
        line = image.constScanLine(y)
        rows.append(bytes(line)[: size * 4])  # Format_ARGB32 is B, G, R, A in memory (LE)
    mask_row = ((size + 31) // 32) * 4
    header = struct.pack("<IiiHHIIiiII", 40, size, size * 2, 1, 32, 0, 0, 0, 0, 0, 0)
    return header + b"".join(rows) + bytes(mask_row * size)


def write_ico(path: Path) -> None:
    payloads = []
    for size in ICO_SIZES:
        image = render(size)
        payloads.append((size, png_bytes(image) if size >= 256 else dib_bytes(image)))
    out = struct.pack("<HHH", 0, 1, len(payloads))
    offset = 6 + 16 * len(payloads)
    for size, data in payloads:
        dim = 0 if size >= 256 else size  # 0 means 256
        out += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    path.write_bytes(out + b"".join(data for _, data in payloads))


def write_icns(path: Path) -> None:
    cache: dict[int, bytes] = {}
    body = b""
    for kind, size in ICNS_TYPES:
        if size not in cache:
            cache[size] = png_bytes(render(size))
        body += kind + struct.pack(">I", 8 + len(cache[size])) + cache[size]
    path.write_bytes(b"icns" + struct.pack(">I", 8 + len(body)) + body)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    (HERE / "qwenlong-reader.png").write_bytes(png_bytes(render(256)))
    write_ico(HERE / "qwenlong-reader.ico")
    write_icns(HERE / "qwenlong-reader.icns")
    for name in ("qwenlong-reader.png", "qwenlong-reader.ico", "qwenlong-reader.icns"):
        print(f"{HERE / name}: {(HERE / name).stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
