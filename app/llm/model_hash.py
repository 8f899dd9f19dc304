"""The SHA-256 of a model file, read once: streamed in 8 MB blocks (progress and cancel
between blocks) and cached by (path, size, mtime), so listing the models folder never
reads 20 GB again. A download seeds the cache with the hash it computed while writing."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import paths, private
from app.errors import ModelError
from app.llm.backend import CancelToken

log = logging.getLogger(__name__)

HASH_BLOCK = 8 * 1024 * 1024
HASH_CACHE_NAME = "model-hashes.json"
# How many bytes were actually hashed, this process: lets tests see a cache hit.
hash_stats = {"bytes_hashed": 0, "cache_hits": 0}


def sha256_of(
    path: Path,
    length: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> Any:
    """The running hash of the first ``length`` bytes (all of them: None), to continue
    with ``update``. ``cancel`` raises app.errors.Cancelled between blocks."""
    total = path.stat().st_size if length is None else length
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as f:
        while done < total and (block := f.read(min(HASH_BLOCK, total - done))):
            if cancel is not None:
                cancel.raise_if_cancelled()
            digest.update(block)
            done += len(block)
            hash_stats["bytes_hashed"] += len(block)
            if progress is not None:
                progress(done, total)
    return digest


def file_sha256(
    path: str | Path,
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
) -> str:
    """Hex SHA-256 of a file (~10 s for 20 GB on an SSD); only the first call reads it.
    ``progress(done, total)`` is called per block."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelError(f"Model file not found: {file}")
    cached = cached_sha256(file)
    if cached:
        hash_stats["cache_hits"] += 1
        return cached
    result: str = sha256_of(file, progress=progress, cancel=cancel).hexdigest()
    remember_hash(file, result)
    return result


def cached_sha256(path: Path) -> str | None:
    """The file's hash when the cache has it for its present size and mtime."""
    try:
        return _load_cache().get(_cache_key(path)) or None
    except OSError:
        return None


def remember_hash(path: Path, digest: str) -> None:
    """Add one file's hash to the cache, re-read first (another process may have added
    entries). A cache that cannot be written is logged, not raised. 0600: the cache
    names every model file on the machine (app/private.py)."""
    try:
        cache = _load_cache()
        cache[_cache_key(path)] = digest
        private.write_file(_cache_file(), json.dumps(cache, indent=1, sort_keys=True).encode())
    except OSError as error:  # a read-only or full disk: the hash is still right
        log.warning("could not cache the SHA-256 of %s: %s", path.name, error)


def _cache_file() -> Path:
    return paths.cache_dir() / HASH_CACHE_NAME


def _cache_key(path: Path) -> str:
    st = path.stat()
    # Size and mtime_ns change when a file is replaced or re-downloaded in place.
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _load_cache() -> dict[str, str]:
    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class HashAlongside:
    """A model file's SHA-256 read on a thread of its own while llama.cpp loads the same
    file (the page cache serves the second reader), not before it: a first load takes
    about the longer of the two, not their sum. Cached: nothing is read."""

    def __init__(self, path: Path, cancel: CancelToken | None) -> None:
        self.cancel = cancel
        self.stop = CancelToken()  # the load failed or was cancelled: stop reading
        self.fraction = 1.0
        self.sha256 = cached_sha256(path) or ""
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        if not self.sha256:
            self.fraction = 0.0
            self.thread = threading.Thread(
                target=self._run, args=(path,), name="model-hash", daemon=True
            )
            self.thread.start()

    def _run(self, path: Path) -> None:
        try:
            self.sha256 = file_sha256(path, progress=self._progress, cancel=self.stop)
        except BaseException as error:  # noqa: BLE001 - raised on the caller's thread
            self.error = error

    def _progress(self, done: int, total: int) -> None:
        self.fraction = done / max(total, 1)
        if self.cancel is not None and self.cancel.cancelled:
            self.stop.cancel()  # the next block stops the reading

    def wait(self, tick: Callable[[], None] | None = None) -> str:
        """The hash, once read (``tick`` every 0.1 s meanwhile); app.errors.Cancelled
        when the load's cancel comes first."""
        while self.thread is not None and self.thread.is_alive():
            self.thread.join(0.1)
            if self.cancel is not None and self.cancel.cancelled:
                self.stop.cancel()
            if tick is not None:
                tick()
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        if self.error is not None:
            raise self.error
        return self.sha256

    def abandon(self) -> None:
        self.stop.cancel()
