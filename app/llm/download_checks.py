"""Is a downloaded model file whole and the right one: the SHA-256 (hashed as it is written),
the GGUF magic, and the tensor table when the server gave no length."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from app.errors import ModelError, UserError
from app.llm.download_progress import DownloadResult
from app.llm.gguf import MAGIC
from app.llm.model_hash import file_sha256, sha256_of
from app.llm.model_sources import SHA256_RE

log = logging.getLogger("app.llm.download")


def expected_sha256(given: str | None) -> tuple[str, str]:
    """The SHA-256 the user gave (``--sha256``), checked; else none yet (the Hub's list
    or the server's ETag may give one)."""
    if given:
        value = given.strip().lower()
        if not SHA256_RE.match(value):
            raise UserError(
                f"{given!r} is not a SHA-256: it should be 64 hexadecimal characters.",
                hint="Copy it from the model page's file details (the 'SHA256' line).",
            )
        return value, "--sha256"
    return "", ""


def already_there(target: Path, expected: str, verified_by: str, repo: str) -> DownloadResult:
    check_magic(target, corrupt_on_failure=False)
    size = target.stat().st_size
    digest = ""
    if expected:
        digest = file_sha256(target)  # cached by (path, size, mtime)
        if digest != expected:
            raise ModelError(
                f"{target.name} is already in the models folder but its SHA-256 is "
                f"{digest}, not {expected}.",
                hint=f"Delete {target} and download it again.",
            )
    log.info("download: %s already present", target)
    return DownloadResult(target, size, digest, verified_by if digest else "", 0, 0, True, repo)


class HashingFile:
    """The .part as http_get writes to it: hashes what is appended, so the file is read
    only once. http_get rewinds and truncates it when a server ignores Range; the hash
    then starts again from what is left."""

    def __init__(self, file: Any, digest: Any, size: int) -> None:
        self.file = file
        self.digest = digest
        self.size = size

    def write(self, data: bytes) -> int:
        """Write all of ``data`` to the unbuffered file; only what the OS took is hashed
        and counted when a write fails part-way (a full disk)."""
        view = memoryview(data)
        while view:
            written = self.file.write(view)
            self.digest.update(view[:written])
            self.size += written
            view = view[written:]
        return len(data)

    def tell(self) -> int:
        return int(self.file.tell())

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self.file.seek(offset, whence))

    def truncate(self, size: int | None = None) -> int:
        end = int(self.file.truncate(size))
        if end != self.size:  # only a rewind to 0 happens (see http_get); rehash otherwise
            self.file.flush()
            self.digest = sha256_of(Path(self.file.name), end)
            self.size = end
        return end


def check_magic(path: Path, *, corrupt_on_failure: bool) -> None:
    with path.open("rb") as f:
        magic = f.read(4)
    if magic == MAGIC:
        return
    where = path
    if corrupt_on_failure:
        where = path.with_name(path.name.removesuffix(".part") + ".corrupt")
        os.replace(path, where)
    raise ModelError(
        f"{path.name.removesuffix('.part')} is not a GGUF model file (it starts {magic!r})"
        + (f"; it was renamed {where.name}." if corrupt_on_failure else "."),
        hint=f"Delete {where} and download the .gguf file itself, or download it in a browser "
        "and use Import.",
    )


def check_whole(part: Path, hint: str) -> None:
    """A download without a Content-Length may have been cut silently: parse the header
    and tensor table, which say how long the file must be. The .part is kept."""
    from app.llm.gguf import read_gguf_info

    try:
        read_gguf_info(part)
    except ModelError as error:
        raise ModelError(
            f"The download of {part.name.removesuffix('.part')} is incomplete: {error.message}",
            hint=hint,
        ) from None
