"""A collection: an ordered set of documents read as one, as the paper's memory agent
reads a corpus (CorpusQA).

The members' texts are joined in reading order, each preceded by a plain header line
("Document 3 of 12: Lease agreement - Harbor Street") inside the text the model reads, so
the memory and the citations can name the document; the prompts stay verbatim. Pages
are numbered through the whole collection (the page map stays one sorted list, which
chunking, the timeline and the evidence code already use), and each ``Member`` knows its
slice of the text and of the pages, so any offset maps back to (document, its own page).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from app.documents.model import Document, Member, SpanTable
from app.errors import DocumentError

# Files a folder contributes: what ingestion reads (documents/formats.py decides by
# content once opened; here only the names, to skip images, archives and the like).
MEMBER_SUFFIXES = {
    ".pdf", ".epub", ".xps", ".oxps", ".fb2", ".mobi", ".cbz", ".txt", ".md", ".markdown",
    ".text", ".log", ".csv", ".docx", ".html", ".htm", ".xhtml",
}  # fmt: skip


def header_line(number: int, total: int, title: str) -> str:
    return f"Document {number} of {total}: {title}"


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files in reading order (see ``scan_paths``), without the notices."""
    return scan_paths(paths)[0]


def scan_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """(files in reading order, notices): a file as given, a folder as its supported files
    (in its subfolders too) sorted by their path inside it; hidden files are skipped. What
    a folder holds but is not read (a link out of it, a broken link, an unreadable
    subfolder) is named in a notice: a collection missing a document must say so."""
    found: list[Path] = []
    notices: list[str] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            before = len(notices)
            inside = _folder_files(path, notices)
            if not inside:
                skipped = " ".join(notices[before:])
                raise DocumentError(
                    f"The folder {path} holds no document the app can read."
                    + (f" {skipped}" if skipped else ""),
                    hint="Supported: PDF, Word (.docx), HTML, EPUB, XPS, text and Markdown.",
                )
            found += sorted(inside, key=lambda p: p.relative_to(path).as_posix().lower())
        else:
            found.append(path)  # named by the user: read wherever a link leads
    seen: set[Path] = set()
    ordered = []
    for path in found:  # the same file twice would be read twice: keep its first place
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            ordered.append(path)
    return ordered, notices


def _folder_files(folder: Path, notices: list[str]) -> list[Path]:
    """The member files under ``folder``. os.walk, not rglob: rglob's is_file() follows
    links anywhere on the disk (a notes.txt linked to /etc/passwd would be read, stored
    and sent to a server) and drops broken links and unreadable folders without a word."""
    root = folder.resolve()

    def shown(path: Path) -> str:  # as the user sees it: "data-room/sub/notes.txt"
        return (Path(folder.name) / path.relative_to(folder)).as_posix()

    def unreadable(error: OSError) -> None:
        where = Path(error.filename) if error.filename else folder
        notices.append(
            f"{shown(where)} was not read: the folder cannot be opened ({error.strerror})."
        )

    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # notices in order
        for name in list(dirnames):
            if (here / name).is_symlink():  # os.walk does not enter it; say why if it leads out
                dirnames.remove(name)
                problem = _link_problem(here / name, root, folder, "folder")
                if problem:
                    notices.append(f"{shown(here / name)} was not read: {problem}.")
        for name in sorted(filenames):
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in MEMBER_SUFFIXES:
                continue
            problem = _member_problem(path, root, folder)
            if problem:
                notices.append(f"{shown(path)} was not read: {problem}.")
            else:
                files.append(path)
    return files


def _link_problem(path: Path, root: Path, folder: Path, what: str) -> str:
    """Why the link ``path`` is not followed: its target is gone, loops, or lies outside
    the chosen folder (whose resolved path is ``root``); "" when it stays inside."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        return f"it is a broken link (it points to {os.readlink(path)}, which does not exist)"
    except (OSError, RuntimeError):  # a loop: RuntimeError before Python 3.13
        return "it is a link that leads back to itself"
    if not target.is_relative_to(root):
        return f"it is a link to a {what} outside {folder.name} ({target})"
    return ""


def _member_problem(path: Path, root: Path, folder: Path) -> str:
    """Why a file found in the folder is not read, or "" to read it."""
    if path.is_symlink():
        problem = _link_problem(path, root, folder, "file")
        if problem:
            return problem
    if not path.is_file():  # a FIFO would block the read, a device would never end
        return "it is not a regular file"
    if not os.access(path, os.R_OK):
        return "it cannot be read (permission denied)"
    return ""


def collection_sha256(documents: Sequence[Document]) -> str:
    """Identity of the collection's content: its members' hashes in reading order."""
    digest = hashlib.sha256(b"qwenlong-collection-v1\n")
    for doc in documents:
        digest.update(doc.sha256.encode() + b"\n")
    return digest.hexdigest()


def build_collection(documents: Sequence[Document], name: str) -> Document:
    """One Document over ``documents`` in this order (at least two)."""
    if len(documents) < 2:
        raise DocumentError("A collection needs at least two documents.")
    total = len(documents)
    parts: list[str] = []
    page_starts: list[int] = []
    spans = SpanTable()
    members: list[Member] = []
    empty_pages: list[int] = []
    warnings: list[str] = []
    offset = 0
    for number, doc in enumerate(documents, start=1):
        header = header_line(number, total, doc.title) + "\n\n"
        first_page = len(page_starts) + 1
        text_start = offset + len(header)
        # the header belongs to the member's first page; its later pages shift with it
        page_starts.append(offset)
        page_starts += [text_start + start for start in doc.page_starts[1:]]
        shift = first_page - 1
        for i in range(len(doc.spans)):
            r = doc.spans.rects[4 * i : 4 * i + 4]
            spans.add(
                text_start + doc.spans.starts[i],
                text_start + doc.spans.ends[i],
                shift + doc.spans.pages[i],
                r[0],
                r[1],
                r[2],
                r[3],
            )
        empty_pages += [shift + page for page in doc.pages_without_text]
        warnings += [f"{doc.title}: {warning}" for warning in doc.warnings]
        body = doc.text if doc.text.endswith("\n") else doc.text + "\n"
        parts += [header, body, "\n"]
        end = text_start + len(body)
        members.append(
            Member(
                index=number - 1,
                path=doc.path,
                sha256=doc.sha256,
                title=doc.title,
                kind=doc.kind,
                start=offset,
                text_start=text_start,
                end=end,
                first_page=first_page,
                page_count=doc.page_count,
                protected=doc.protected,
            )
        )
        offset = end + 1
    return Document(
        path=str(Path(documents[0].path).parent),
        sha256=collection_sha256(documents),
        kind="collection",
        title=name,
        text="".join(parts),
        page_starts=page_starts,
        spans=spans,
        pages_without_text=empty_pages,
        warnings=warnings,
        metadata={"documents": str(total)},
        protected=any(doc.protected for doc in documents),
        members=members,
    )


def load_collection(
    paths: Iterable[str | Path],
    name: str = "",
    load: Callable[[Path], Document] | None = None,
) -> Document:
    """Read every file (``load`` is documents.ingest.load_document with the caller's
    options) and join them; a single file is returned as itself."""
    from app.documents.ingest import load_document

    files, notices = scan_paths(paths)
    if not files:
        raise DocumentError("No documents given.", hint="Name files or folders to read.")
    documents = load_members(files, load or load_document)
    if len(documents) == 1:
        document = documents[0]
        document.warnings[:0] = notices
        return document
    collection = build_collection(documents, name or default_name(files))
    collection.warnings[:0] = notices  # first: what the collection lacks
    return collection


def load_members(files: Iterable[str | Path], reader: Callable[[Path], Document]) -> list[Document]:
    """Each file read by ``reader``, in order; a failure names its member: in a 40-file
    data room "empty file" alone is useless. The error keeps its type and what it carries
    (a PasswordRequired its file, a DocumentDamaged its page counts), so the window can
    ask about that member."""
    documents = []
    for file in map(Path, files):
        try:
            documents.append(reader(file))
        except DocumentError as error:
            if not error.message.startswith(file.name):  # most messages name it already
                error.message = f"{file.name}: {error.message}"
                error.args = (error.message,)
            raise
    return documents


def default_name(files: Sequence[Path]) -> str:
    parents = {f.parent for f in files}
    if len(parents) == 1:
        return f"{next(iter(parents)).name or 'Documents'} ({len(files)} documents)"
    return f"{files[0].stem} and {len(files) - 1} more"
