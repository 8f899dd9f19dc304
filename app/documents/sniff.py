"""What a file is, from its bytes: a file's name can lie (a web page saved as .pdf, a PDF
renamed .docx) and its content cannot.

``sniff`` looks at magic numbers, and inside ZIP containers at the entries that make an
Office document or an e-book what it is. It reads nothing beyond the bytes it is given.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

IMAGE_KINDS = {"png", "jpeg", "gif", "tiff", "bmp", "webp", "heic"}


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "pdf", "docx", "html", "text", "epub", "png", "exe", "zip", ...
    what: str  # for messages: "a PDF", "a Word document (.docx)", "a PNG image"


def _zip_kind(data: bytes) -> Sniffed:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            mimetype = ""
            if "mimetype" in names:
                mimetype = archive.read("mimetype")[:100].decode("ascii", "replace").strip()
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, RuntimeError):
        # A damaged container still says what it was meant to be in its first entry's
        # name (local file headers are at the start): enough to give the right message.
        head = data[:4096]
        if b"word/" in head:
            return Sniffed("docx", "a Word document (.docx)")
        return Sniffed("zip", "a ZIP archive")
    if "word/document.xml" in names:
        return Sniffed("docx", "a Word document (.docx)")
    if mimetype == "application/epub+zip":
        return Sniffed("epub", "an EPUB e-book")
    if "xl/workbook.xml" in names:
        return Sniffed("xlsx", "an Excel workbook (.xlsx)")
    if "ppt/presentation.xml" in names:
        return Sniffed("pptx", "a PowerPoint presentation (.pptx)")
    if mimetype.startswith("application/vnd.oasis.opendocument"):
        return Sniffed("odf", "an OpenDocument file (.odt/.ods/.odp)")
    if "FixedDocumentSequence.fdseq" in names or any(n.endswith(".fdseq") for n in names):
        return Sniffed("xps", "an XPS document")
    images = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")
    files = [n for n in names if not n.endswith("/")]
    if files and all(n.lower().endswith(images) for n in files):
        return Sniffed("cbz", "a comic book archive (.cbz)")
    return Sniffed("zip", "a ZIP archive")


def _ole_kind(data: bytes) -> Sniffed:
    """OLE2 compound files hold legacy Office documents, and also password-protected
    .docx/.xlsx (an encrypted package inside). Stream names are UTF-16 in the directory."""
    if "EncryptedPackage".encode("utf-16-le") in data:
        return Sniffed("encrypted-office", "a password-protected Office document")
    if "WordDocument".encode("utf-16-le") in data:
        return Sniffed("doc", "a legacy Word document (.doc, Word 97-2003)")
    if "Workbook".encode("utf-16-le") in data or "Book".encode("utf-16-le") in data:
        return Sniffed("xls", "a legacy Excel workbook (.xls)")
    if "PowerPoint Document".encode("utf-16-le") in data:
        return Sniffed("ppt", "a legacy PowerPoint presentation (.ppt)")
    return Sniffed("ole", "a legacy Microsoft Office file")


_HTML_START = re.compile(rb"\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]", re.I | re.S)
# Elements a page fragment is made of (a saved snippet, an e-mail body, a CMS export has
# no <html>/<head>/<body>): matched only in a file named .html/.htm, see looks_like_markup.
_HTML_TAG = re.compile(
    rb"</?(p|div|span|a|b|i|u|em|strong|br|hr|h[1-6]|ul|ol|li|dl|dt|dd|table|thead|tbody|"
    rb"tr|td|th|img|pre|code|blockquote|section|article|header|footer|nav|main|aside|"
    rb"figure|form|title|meta|link|style|script|font|center|sup|sub|small)(\s[^>]*)?/?>",
    re.I,
)
_XML_DECL = re.compile(rb"\s*<\?xml[^>]*\?>", re.I)
_FB2 = re.compile(rb"\s*(<\?xml[^>]*\?>)?\s*<FictionBook[\s>]")

_MAGIC: list[tuple[bytes, str, str]] = [
    (b"\x89PNG\r\n\x1a\n", "png", "a PNG image"),
    (b"\xff\xd8\xff", "jpeg", "a JPEG image"),
    (b"GIF87a", "gif", "a GIF image"),
    (b"GIF89a", "gif", "a GIF image"),
    (b"II*\x00", "tiff", "a TIFF image"),
    (b"MM\x00*", "tiff", "a TIFF image"),
    (b"MZ", "exe", "a Windows program (.exe/.dll)"),
    (b"\x7fELF", "exe", "a Linux program (ELF)"),
    (b"\xfe\xed\xfa\xce", "exe", "a macOS program (Mach-O)"),
    (b"\xfe\xed\xfa\xcf", "exe", "a macOS program (Mach-O)"),
    (b"\xce\xfa\xed\xfe", "exe", "a macOS program (Mach-O)"),
    (b"\xcf\xfa\xed\xfe", "exe", "a macOS program (Mach-O)"),
    (b"\x1f\x8b", "gzip", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "7z", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "rar", "a RAR archive"),
    (b"BZh", "bzip2", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "xz", "an xz archive"),
    (b"{\\rtf", "rtf", "a Rich Text Format document (.rtf)"),
]


def _bom_text(data: bytes) -> bytes:
    """The first bytes as ASCII-compatible text, so UTF-16 HTML is recognised too."""
    for bom, encoding in (
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if data.startswith(bom):
            head = data[len(bom) : len(bom) + 2048]
            return head.decode(encoding, "ignore").encode("ascii", "ignore")
    return data[:2048]


def sniff(data: bytes) -> Sniffed:
    # PDF readers accept %PDF anywhere in the first 1 KB (some files start with junk).
    if b"%PDF-" in data[:1024]:
        return Sniffed("pdf", "a PDF")
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _ole_kind(data)
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(data)
    for magic, kind, what in _MAGIC:
        if data.startswith(magic):
            return Sniffed(kind, what)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Sniffed("webp", "a WebP image")
    if data[:2] == b"BM" and len(data) > 14 and data[6:10] == b"\x00\x00\x00\x00":
        return Sniffed("bmp", "a BMP image")
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return Sniffed("heic", "a HEIC image")
    if len(data) > 262 and data[257:262] == b"ustar":
        return Sniffed("tar", "a tar archive")
    if data[60:68] == b"BOOKMOBI":
        return Sniffed("mobi", "a MOBI e-book")
    head = _bom_text(data)
    if _FB2.match(head):
        return Sniffed("fb2", "a FictionBook e-book")
    declaration = _XML_DECL.match(head)
    if _HTML_START.match(head, declaration.end() if declaration else 0):
        return Sniffed("html", "a web page (HTML)")
    return Sniffed("text", "plain text")


def looks_like_markup(data: bytes) -> bool:
    """Whether text bytes hold HTML elements (at least two tags): a fragment without a
    doctype or <html>, which sniff calls text. Asked only when the name says HTML, since
    plain text may quote a tag or two."""
    return len(_HTML_TAG.findall(_bom_text(data))) >= 2
