"""Download a QwenLong GGUF into the models folder, only when the user asks for it.

The app is offline first: nothing here runs unless the user clicks Download or runs
``python -m app models --download QUANT``; huggingface_hub is imported only then.

Why huggingface_hub: it lists a repository's files (so the file of the quantization the
user picked is found, not guessed), builds Hub URLs for ``HF_ENDPOINT`` (an on-prem
mirror), sends ``HF_TOKEN`` only to the Hub, turns the Hub's errors (gated, not found)
into typed exceptions, and its ``http_get`` resumes a dropped connection in place with a
Range request (and copes with a server that answers 200 to one). Its ``hf_hub_download``
is not used: in huggingface_hub 2 each attempt writes a fresh ``<etag>.<uuid>.incomplete``
and deletes it on any failure, and a 20 GB file over a home connection must continue
where it stopped (a cancel, a closed laptop, the next day). So
this module keeps ``<models>/<file>.part`` itself, hands it to ``http_get`` to append to,
and checks what the library does not: free disk space first, the SHA-256 the Hub lists
for the file (the library only compares sizes), the GGUF magic, then an os.replace into
place, so a model in the folder is always whole.

Nothing is sent that the user did not ask for: telemetry is off (it also stops the user
agent from fetching a registry from the Hub), a token saved by ``hf auth login`` is never
read implicitly (only ``HF_TOKEN``), the HTTP client is the app's own
(OS trust store, no environment proxies; the proxy in Settings if one is set), and
``HF_HUB_OFFLINE=1`` is honoured with a message saying so.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, BinaryIO, cast

from app import paths
from app.errors import Cancelled, ModelError, NetworkError, UserError
from app.llm.backend import CancelToken
from app.llm.download_checks import (
    HashingFile,
    already_there,
    check_magic,
    check_whole,
    expected_sha256,
)
from app.llm.download_errors import TOKEN_ENV, host_of, hub_error, network_error
from app.llm.download_progress import (
    DownloadCancelled,
    DownloadProgress,
    DownloadResult,
    ProgressCallback,
    RateMeter,
)
from app.llm.httpclient import safe_url
from app.llm.hub_client import cancel_reaches_blocked_reads, claim, configured_hub
from app.llm.model_hash import remember_hash, sha256_of
from app.llm.model_sources import (
    CATALOGUE,
    CatalogueEntry,
    Source,
    candidate_repos,
    file_name_of,
    find_source,
    hub_endpoint,
    url_source,
)
from app.units import gb, human_size

log = logging.getLogger(__name__)

# -- the download -------------------------------------------------------------------------
TIMEOUT_S = 30.0  # per socket operation: connect, and each read (Hub API and transfer)
DISK_MARGIN = 256 * 1024 * 1024  # left free after the download: logs, database, OS
PROGRESS_INTERVAL_S = 0.2


def download_model(
    quant: str | None = None,
    *,
    url: str | None = None,
    repo: str | None = None,
    sha256: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    timeout: float = TIMEOUT_S,
    proxy: str | None = None,
) -> DownloadResult:
    """Download ``quant`` from the first repository that has it (``repo``, else
    QWENLONG_READER_GGUF_REPO, else KNOWN_REPOS in order), or the file at ``url``, into
    the models folder. Blocking: run it on a worker thread. ``progress`` is called from
    that thread; a ``cancel`` raises DownloadCancelled within a second, also on a stalled
    connection. UserError (or ModelError) with a hint on every expected failure;
    the ``.part`` is kept unless its content is known to be wrong.

    HF_TOKEN, if set, is sent only to the Hub (``HF_ENDPOINT``). ``proxy``
    defaults to the one in Settings."""
    entry = _entry(quant)
    if not url and entry is None:
        raise UserError("Nothing to download: give a quantization or a URL.")
    expected, verified_by = expected_sha256(sha256)
    if proxy is None:
        from app.settings import load_settings

        proxy = load_settings().proxy_url
    hub = configured_hub(proxy, timeout)
    if hub.constants.is_offline_mode():
        raise UserError(
            "Downloads are switched off: HF_HUB_OFFLINE is set in the environment.",
            hint="Unset HF_HUB_OFFLINE (or set it to 0) and run the download again; or "
            "download the file on another machine and use Import.",
        )
    endpoint = hub_endpoint()
    token = os.environ.get(TOKEN_ENV, "").strip() or None
    folder = paths.models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if url:
        named = folder / file_name_of(url)
        if named.exists():  # nothing to ask the server
            return already_there(named, expected, verified_by, "")
    with cancel_reaches_blocked_reads(cancel):
        try:
            if url:
                source = url_source(hub, url, endpoint, token, timeout)
            else:
                assert entry is not None
                if progress is not None:
                    progress(DownloadProgress(entry.quant, 0, None, 0.0, phase="looking"))
                repos = candidate_repos(repo)
                source = find_source(hub, entry.quant, repos, endpoint, token, timeout, cancel)
        except Cancelled:
            raise DownloadCancelled(None, 0, None) from None  # nothing fetched yet
        target = folder / source.name
        if not expected and source.sha256:
            expected, verified_by = source.sha256, source.sha_from
        if target.exists():
            return already_there(target, expected, verified_by, source.repo)
        with claim(target):
            return _Download(hub, source, target, expected, verified_by, progress, cancel).run()


def _entry(quant: str | None) -> CatalogueEntry | None:
    if quant is None:
        return None
    entry = CATALOGUE.get(quant.upper())
    if entry is None:
        raise UserError(
            f"Unknown quantization {quant!r}.",
            hint=f"Choose one of {', '.join(CATALOGUE)}, or pass --url.",
        )
    return entry


class _Download:
    def __init__(
        self,
        hub: Any,
        source: Source,
        target: Path,
        expected: str,
        verified_by: str,
        progress: ProgressCallback | None,
        cancel: CancelToken | None,
    ) -> None:
        self.hub = hub
        self.source = source
        self.target = target
        self.part = target.with_name(target.name + ".part")
        self.about = target.with_name(target.name + ".part.json")  # what the .part is of
        self.corrupt = target.with_name(target.name + ".corrupt")
        self.expected = expected
        self.verified_by = verified_by
        self.progress = progress
        self.cancel = cancel
        self.host = host_of(source.url)
        self.total = source.size
        self.offset = 0
        self.file: HashingFile | None = None
        self.rate = RateMeter(0)
        self.last_report = 0.0

    def run(self) -> DownloadResult:
        self.offset = self._kept()
        if self.total is not None:
            self._check_disk(self.total - self.offset, self.total)
        log.info(
            "download: %s -> %s (resume at %d)", safe_url(self.source.url), self.part, self.offset
        )
        digest = self._hash_kept()
        self.rate = RateMeter(self.offset)
        # Unbuffered: each block reaches the OS as it is written, so the hash and the
        # size are of what is on disk, and a full disk fails that write, not a later flush.
        with self.part.open("ab", buffering=0) as out:
            self.file = HashingFile(out, digest, self.offset)
            try:
                self._get()
            finally:
                with contextlib.suppress(OSError):
                    os.fsync(out.fileno())
        self._report()
        return self._finish(self.file.digest.hexdigest())

    def _kept(self) -> int:
        """Bytes of a .part that belongs to this same file; a stale one is dropped."""
        if not self.part.exists():
            self._describe_part()
            return 0
        try:
            about = json.loads(self.about.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            about = {}
        kept = self.part.stat().st_size
        # No note (a .part from an older version): keep it, the checksum has the last word.
        same = not about or (about.get("etag"), about.get("size")) == (self.source.etag, self.total)
        if not same or (self.total is not None and kept > self.total):
            log.info("download: the kept %s is of another version; starting over", self.part)
            self.part.unlink()
            self._describe_part()
            return 0
        return kept

    def _describe_part(self) -> None:
        with contextlib.suppress(OSError):
            self.about.write_text(
                json.dumps(
                    {"etag": self.source.etag, "size": self.total, "repo": self.source.repo}
                ),
                encoding="utf-8",
            )

    def _hash_kept(self) -> Any:
        if not self.offset:
            return hashlib.sha256()
        self._report(phase="checking")
        try:
            return sha256_of(self.part, self.offset, cancel=self.cancel)
        except Cancelled:
            raise DownloadCancelled(self.part, self.offset, self.total) from None

    def _get(self) -> None:
        import httpx2
        from huggingface_hub.file_download import http_get
        from huggingface_hub.utils import HfHubHTTPError

        try:
            http_get(
                self.source.url,
                cast(BinaryIO, self.file),
                resume_size=self.offset,
                headers=dict(self.source.headers),
                expected_size=self.total,
                displayed_filename=self.target.name,
                # http_get calls ``tqdm_class(**kwargs)`` and enters it: its progress bar is
                # this object, whose update() reports and stops on a cancel.
                tqdm_class=cast(Any, lambda **_: contextlib.nullcontext(self)),
            )
        except Cancelled:
            log.info("download: cancelled at %d bytes", self._done())
            raise DownloadCancelled(self.part, self._done(), self.total) from None
        except HfHubHTTPError as error:
            raise hub_error(error, self.source.url, self.source.repo, self._resume_hint()) from None
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):  # filled up by something else
                raise UserError(
                    f"The disk filled up while downloading {self.target.name}: "
                    f"{self.target.parent} has no space left ({human_size(self._done())} "
                    "of it was written and is kept).",
                    hint="Free some space, then run the same download again: it continues "
                    "from what is already downloaded.",
                ) from None
            if "Consistency check failed" in str(error):
                raise self._cut(None) from None
            raise self._cut(error) from None
        except httpx2.HTTPError as error:  # after http_get's own retries
            raise network_error(error, self.source.url, 0, self._resume_hint()) from None

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.cancelled

    def update(self, _n: int) -> None:
        """http_get's progress bar: called before each block is written."""
        if self._cancelled():
            raise Cancelled()
        self._report()

    def _done(self) -> int:
        return self.file.size if self.file is not None else self.offset

    def _report(self, phase: str = "downloading") -> None:
        now = time.monotonic()
        if phase == "downloading" and now - self.last_report < PROGRESS_INTERVAL_S:
            return
        self.last_report = now
        if self.progress is not None:
            done = self.offset if phase == "checking" else self._done()
            rate = 0.0 if phase == "checking" else self.rate.update(done, now)
            self.progress(
                DownloadProgress(self.target.name, done, self.total, rate, self.offset, phase)
            )

    def _finish(self, digest: str) -> DownloadResult:
        expected, by = self.expected, self.verified_by
        size = self.part.stat().st_size
        if self.total is not None and size != self.total:
            raise self._cut(None)
        if expected and digest != expected:
            os.replace(self.part, self.corrupt)
            self.about.unlink(missing_ok=True)
            log.info("download: SHA-256 mismatch for %s (%s)", self.target.name, by)
            source = {
                "--sha256": "the --sha256 you gave",
                "Hub": f"the one {self.host} lists for it",
                "server ETag": f"the one {self.host} announced",
            }[by]
            raise ModelError(
                f"The downloaded {self.target.name} is corrupt: its SHA-256 is {digest}, "
                f"not {expected} ({source}). It was renamed {self.corrupt.name}.",
                hint=f"Delete {self.corrupt} and download again; if that fails too, check "
                "the checksum on the model page, or download in a browser and use Import.",
            )
        check_magic(self.part, corrupt_on_failure=True)
        if self.total is None:  # no length to compare: the GGUF's own tensor table tells
            check_whole(self.part, self._resume_hint())
        os.replace(self.part, self.target)  # atomic: the models folder never has half a file
        self.about.unlink(missing_ok=True)
        remember_hash(self.target, digest)
        log.info("download: %s complete, %d bytes, sha256 %s (%s)", self.target, size, digest, by)
        return DownloadResult(
            self.target,
            size,
            digest,
            by if expected else "",
            size - self.offset,
            self.offset,
            repo=self.source.repo,
        )

    def _check_disk(self, needed: int, total: int) -> None:
        free = shutil.disk_usage(self.target.parent).free
        if needed + DISK_MARGIN > free:
            raise UserError(
                f"Not enough disk space for {self.target.name}: it needs {gb(needed)} more "
                f"({gb(total)} in all), and {self.target.parent} has {gb(free)} free.",
                hint="Free some space (or choose a smaller quantization), then run the "
                "download again: it continues from what is already downloaded.",
            )

    def _resume_hint(self) -> str:
        kept = self.part.stat().st_size if self.part.exists() else 0
        if kept:
            return (
                f"The {human_size(kept)} downloaded so far is kept in {self.part.name}: run "
                "the same download again to continue from there, or download in a browser "
                "and use Import."
            )
        return "Run the download again, or download in a browser and use Import."

    def _cut(self, error: BaseException | None) -> NetworkError:
        done = self.part.stat().st_size if self.part.exists() else 0
        total = f" of {human_size(self.total)}" if self.total else ""
        why = f" ({error})" if error is not None else ""
        log.info("download: connection lost at %d bytes%s", done, why)
        return NetworkError(
            f"The connection to {self.host} was lost after {human_size(done)}{total}{why}.",
            hint=self._resume_hint(),
        )
