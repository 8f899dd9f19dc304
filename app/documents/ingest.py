"""Opening any supported file as a Document, with clear errors and a content-hash cache."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.documents import cache
from app.documents.docx import docx_document
from app.documents.formats import TEXT_EXTENSIONS, choose_format
from app.documents.html import HTML_EXTENSIONS, html_document
from app.documents.model import Document
from app.documents.pdf import needs_password, pdf_document, refuse_drm
from app.documents.text import text_document
from app.errors import DocumentError, PasswordRequired

# Formats PyMuPDF opens natively besides PDF. Which reader opens a file is decided by its
# content (formats.py: an HTML page named .pdf is read as HTML); this list is what the
# file dialog and drag-and-drop offer.
PYMUPDF_FORMATS = {".pdf", ".epub", ".xps", ".oxps", ".fb2", ".mobi", ".cbz"}
SUPPORTED_FORMATS = sorted(PYMUPDF_FORMATS | {".docx"} | HTML_EXTENSIONS | TEXT_EXTENSIONS)


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes:
    if path.is_symlink() and not path.exists():
        # Named as the link the user chose, not as its missing target (resolve() would).
        raise DocumentError(
            f"{path} is a broken link: it points to {os.readlink(path)}, which does not exist.",
            hint="The file it pointed to was moved or deleted; open the file itself.",
        )
    path = path.resolve()
    if not path.exists():
        raise DocumentError(f"File not found: {path}", hint="Check the path and try again.")
    if path.is_dir():
        raise DocumentError(f"{path} is a folder.", hint="Choose a file inside it.")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DocumentError(
            f"{path} cannot be read: {error.strerror}.", hint="Check the file's permissions."
        ) from error
    if not data:
        raise DocumentError(
            f"{path.name} is empty (0 bytes).",
            hint="It may not have finished downloading or copying.",
        )
    return data


def load_document(
    path: Path | str,
    *,
    password: str | None = None,
    drop_headers_footers: bool = False,
    ocr: bool = False,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    use_cache: bool = True,
    accept_damaged: bool = False,
) -> Document:
    path = Path(path).expanduser()
    data = _read(path)
    path = path.resolve()
    sha = file_sha256(data)
    options = f"hf{int(drop_headers_footers)}-ocr{int(ocr)}"
    fmt = choose_format(path.name, path.suffix.lower(), data, ocr=ocr)  # by content
    is_pdf = fmt.kind == "pdf"
    pymupdf_format = fmt.reader == "pymupdf"
    if pymupdf_format:
        refuse_drm(path, data)
        # Checked on every open, before the cache: a protected file is never answered
        # without its password (pdf_document verifies it), and never cached.
        if needs_password(str(path)):
            use_cache = False
            cache.forget(sha)
    if use_cache:
        cached = cache.load(sha, options)
        if cached is not None:
            cached.path = str(path)
            cached.warnings = [*fmt.notices, *cached.warnings]  # they name this file
            return cached
    if pymupdf_format:
        document = pdf_document(
            str(path),
            sha,
            path.stem,
            password=password,
            drop_headers_footers=drop_headers_footers,
            ocr=ocr,
            progress=progress,
            cancel=cancel,
            accept_damaged=accept_damaged,
        )
        if not is_pdf:
            document.kind = fmt.kind
    elif fmt.reader == "docx":
        document = docx_document(
            str(path), sha, path.stem, data, drop_headers_footers=drop_headers_footers
        )
    elif fmt.reader == "html":
        document = html_document(str(path), sha, path.stem, data)
    else:
        document = text_document(str(path), sha, path.stem, data)
    if use_cache:
        cache.store(document, options)  # skips protected and damaged documents
    document.warnings[:0] = fmt.notices  # after caching: they name this file
    return document


def load_with_passwords(
    path: Path | str, passwords: Sequence[str] = (), **options: Any
) -> Document:
    """``load_document`` with each of ``passwords`` in turn: the first that opens the file
    wins. A collection's protected members may each have their own password, and every one
    given is tried on each; an unprotected file opens with the first try (a password is
    ignored there). When none fits, the PasswordRequired names the file and says whether
    no password was given or the given ones were wrong."""
    tried = list(dict.fromkeys(p for p in passwords if p))  # in order, each once
    if not tried:
        return load_document(path, **options)
    last: PasswordRequired | None = None
    for password in tried:
        try:
            return load_document(path, password=password, **options)
        except PasswordRequired as error:
            last = error
    assert last is not None
    if len(tried) == 1:
        raise last  # "The password for X is wrong."
    title = Path(path).stem
    raise PasswordRequired(
        f"None of the {len(tried)} passwords given opens {title}.",
        hint="Give its own password too (CLI: one more --password); passwords are case-sensitive.",
        path=last.path or str(path),
    ) from last
