"""Which reader opens a file, decided by what its bytes are (sniff.py), not by its name;
a notice when the two disagree, and one clear sentence for what cannot be read.

ingest.py asks ``choose_format`` once per open and dispatches on ``Format.reader``.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.documents.model import DamagedFile
from app.documents.pdf import ocr_available
from app.documents.sniff import IMAGE_KINDS, Sniffed, looks_like_markup, sniff
from app.documents.text import decode_text
from app.errors import DocumentError

# Document kinds without fixed pages: the viewer shows them in its Text tab only.
REFLOWED_KINDS = frozenset({"text", "docx", "html"})

TEXT_EXTENSIONS = {".txt", ".md", ".markdown", ".text", ".log", ".csv"}
# What a name promises, for the notice when the content is something else.
_NAMED = {
    ".pdf": ("pdf", "a PDF"),
    ".docx": ("docx", "a Word document"),
    ".html": ("html", "a web page"),
    ".htm": ("html", "a web page"),
    ".xhtml": ("html", "a web page"),
    ".xht": ("html", "a web page"),
    ".epub": ("epub", "an EPUB e-book"),
    ".xps": ("xps", "an XPS document"),
    ".oxps": ("xps", "an XPS document"),
    ".fb2": ("fb2", "a FictionBook e-book"),
    ".mobi": ("mobi", "a MOBI e-book"),
    ".azw": ("mobi", "a Kindle e-book"),
    ".azw3": ("mobi", "a Kindle e-book"),
    ".prc": ("mobi", "a MOBI e-book"),
    ".cbz": ("cbz", "a comic book archive"),
    **{ext: ("text", "a text file") for ext in TEXT_EXTENSIONS},
}
_PYMUPDF_KINDS = {"pdf", "epub", "xps", "fb2", "mobi", "cbz"}
_READERS = {"docx": "docx", "html": "html", "text": "text"} | {k: "pymupdf" for k in _PYMUPDF_KINDS}
# Containers whose own kind is vague: a ZIP without an EPUB "mimetype" entry, an OLE file
# (rights-managed XPS), XML without a FictionBook root. There the name decides, and the
# reader (PyMuPDF, and pdf.refuse_drm before it) says what is wrong if it is not so.
_VAGUE = {"zip", "ole", "encrypted-office", "text"}
_BINARY_KINDS = {"pdf", "docx", "epub", "mobi", "cbz", "xps"}

_SAVE_AS = "Open it in Word or LibreOffice and save it as .docx or PDF, then open that."
_REFUSALS: dict[str, tuple[str, str]] = {
    "doc": ("which this app cannot read", _SAVE_AS),
    "rtf": ("which this app cannot read", _SAVE_AS),
    "ole": ("which this app cannot read", _SAVE_AS),
    "encrypted-office": (
        "its content is encrypted",
        "Open it in Word or Excel with its password, remove the password (File > Info > "
        "Protect Document), save it as .docx or PDF, then open that.",
    ),
    "xlsx": (
        "which this app does not read",
        "Save the sheets you need as PDF or CSV (File > Save As), then open that.",
    ),
    "xls": (
        "which this app does not read",
        "Save the sheets you need as PDF or CSV (File > Save As), then open that.",
    ),
    "pptx": ("which this app does not read", "Save it as PDF (File > Save As), then open that."),
    "ppt": ("which this app does not read", "Save it as PDF (File > Save As), then open that."),
    "odf": (
        "which this app does not read",
        "Save it from LibreOffice as PDF or .docx, then open that.",
    ),
    "exe": ("not a document", "Open the document itself: a PDF, Word, web page, e-book or text."),
}
_ARCHIVES = {"zip", "gzip", "7z", "rar", "bzip2", "xz", "tar"}


@dataclass(frozen=True)
class Format:
    reader: str  # "pymupdf", "docx", "html" or "text"
    kind: str  # Document.kind
    notices: tuple[str, ...] = ()


def _refuse(name: str, sniffed: Sniffed, ocr: bool) -> DocumentError:
    if sniffed.kind in IMAGE_KINDS:
        hint = (
            "Tesseract is installed: turn on OCR in Settings to read the text in it."
            if ocr_available()
            else "Install Tesseract (tesseract-ocr) and turn on OCR in Settings to read the "
            "text in it, or open a PDF of it that has a text layer."
        )
        if ocr and sniffed.kind == "heic":
            hint = "OCR cannot open HEIC: save it as PNG or JPEG first."
        return DocumentError(f"{name} is {sniffed.what}: it has no text layer to read.", hint=hint)
    if sniffed.kind in _ARCHIVES:
        return DocumentError(
            f"{name} is {sniffed.what}, not a document.",
            hint="Extract it and open the documents inside.",
        )
    why, hint = _REFUSALS.get(sniffed.kind, ("which this app does not read", _SAVE_AS))
    return DocumentError(f"{name} is {sniffed.what}, {why}.", hint=hint)


def choose_format(name: str, suffix: str, data: bytes, *, ocr: bool) -> Format:
    """The reader for ``data`` (the whole file); ``name`` and ``suffix`` (lower case, with
    the dot) are the file's, for messages and for telling a mislabelled file."""
    sniffed = sniff(data)
    named = _NAMED.get(suffix)
    if named is not None and named[0] in _BINARY_KINDS and sniffed.kind == "text":
        # Text bytes under a binary format's name: a mislabelled text file, read as text;
        # bytes that are not text either mean a broken file, which is what to say.
        try:
            decode_text(data[:65536], name)
        except DocumentError:
            raise DamagedFile(  # zeros from an interrupted copy, more often than a lie
                f"{name} is damaged or not {named[1]}: its content does not start the way "
                "such a file does.",
                hint="Re-download or re-export it.",
            ) from None
        return Format("text", "text", (_notice(name, suffix, sniffed, "text"),))
    if named is not None and named[0] in _PYMUPDF_KINDS and sniffed.kind in _VAGUE:
        return Format("pymupdf", named[0])
    html_named = named is not None and named[0] == "html"
    if html_named and sniffed.kind == "text" and looks_like_markup(data):
        return Format("html", "html")  # a page fragment: tags, but no <html> to sniff
    if named is not None and named[0] == "docx" and sniffed.kind == "zip":
        return Format("docx", "docx")  # a package without its main part: docx.py says so
    if sniffed.kind in IMAGE_KINDS and sniffed.kind != "heic" and ocr and ocr_available():
        # PyMuPDF opens an image as a one-page document, which OCR then reads.
        return Format("pymupdf", sniffed.kind)
    reader = _READERS.get(sniffed.kind)
    if reader is None:
        raise _refuse(name, sniffed, ocr)
    notices: tuple[str, ...] = ()
    if named is not None and named[0] != sniffed.kind:
        notices = (_notice(name, suffix, sniffed, sniffed.kind),)
    return Format(reader, sniffed.kind, notices)


_READ_AS = {"pdf": "a PDF", "docx": "a Word document", "html": "HTML", "text": "plain text"}


def _notice(name: str, suffix: str, sniffed: Sniffed, kind: str) -> str:
    return (
        f"{name} is {sniffed.what}, although its name ends in {suffix}: it was read as "
        f"{_READ_AS.get(kind, sniffed.what)}."
    )
