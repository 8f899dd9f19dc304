"""Download a QwenLong GGUF into the models folder, only when the user asks for it.

The app is offline first: nothing here runs unless the user clicks Download or runs
``python -m app models --download QUANT``. Standard library only (urllib), so a bundled
app needs nothing more. A 20 GB file over a home connection takes a while and gets cut,
so the download:

- streams to ``<models>/<file>.part`` and resumes it with an HTTP Range request (a server
  that ignores Range and answers 200 restarts it cleanly);
- is cancellable between blocks; a cancelled or cut download keeps its ``.part``;
- checks free disk space before writing;
- verifies the SHA-256 when one is known (the catalogue, the caller's, or the server's
  ``X-Linked-Etag``/``ETag`` when it is a 64-hex SHA-256, as Hugging Face sends for LFS
  files); a mismatch renames the file ``.corrupt``;
- checks the GGUF magic, then moves the file into place with os.replace, so a model in the
  folder is always whole.

An access token (``HF_TOKEN``) is sent only to Hugging Face hosts, as an unredirected
header (never forwarded to the CDN a download is redirected to), and never logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import shutil
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from app import paths, private
from app.errors import Cancelled, ModelError, UserError
from app.llm.backend import CancelToken
from app.llm.gguf import HASH_BLOCK, HASH_CACHE_NAME, MAGIC, _cache_key, _load_cache
from app.llm.hardware import QWENLONG_QUANTS, gb, human_size
from app.units import human_duration

log = logging.getLogger(__name__)

# -- catalogue ----------------------------------------------------------------------------
# The Hugging Face repository holding the GGUF builds. Tongyi-Zhiwen publishes
# QwenLong-L1.5-30B-A3B as safetensors only; GGUF conversions are community uploads whose
# names we could not check from here (no network). Override it without a new release:
# QWENLONG_READER_GGUF_REPO=owner/name, or pass --url for one file.
REPO_ENV = "QWENLONG_READER_GGUF_REPO"
DEFAULT_REPO = "mradermacher/QwenLong-L1.5-30B-A3B-GGUF"
HF_ENDPOINT = "https://huggingface.co"
URL_PATTERN = "{endpoint}/{repo}/resolve/main/{file}"
TOKEN_ENV = "HF_TOKEN"
HF_HOSTS = ("huggingface.co", "hf.co")


@dataclass(frozen=True)
class CatalogueEntry:
    """One recommended quantization. ``sha256`` stays empty until someone has checked a
    published value: the download is then verified against the server's X-Linked-Etag
    (the LFS object's SHA-256, which Hugging Face sends) or a ``sha256`` the user gives."""

    quant: str
    file_name: str
    size: int  # published size in bytes, for the disk-space check and "which one?"
    sha256: str = ""

    def url(self, repo: str | None = None) -> str:
        return URL_PATTERN.format(
            endpoint=HF_ENDPOINT,
            repo=repo or gguf_repo(),
            file=urllib.parse.quote(self.file_name),
        )


CATALOGUE: dict[str, CatalogueEntry] = {
    quant: CatalogueEntry(quant, f"QwenLong-L1.5-30B-A3B.{quant}.gguf", size)
    for quant, size in QWENLONG_QUANTS.items()
}


def gguf_repo() -> str:
    return os.environ.get(REPO_ENV, "").strip().strip("/") or DEFAULT_REPO


# -- progress and cancel ------------------------------------------------------------------
@dataclass(frozen=True)
class DownloadProgress:
    file_name: str
    done: int  # bytes of the file on disk so far, resumed part included
    total: int | None  # None while the server has not said
    rate: float  # bytes per second over the last few seconds (0 when checking)
    resumed_from: int = 0
    phase: str = "downloading"  # "checking" while the kept .part is hashed, then "downloading"

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None

    @property
    def eta_s(self) -> float | None:
        if not self.total or self.rate <= 0:
            return None
        return max(self.total - self.done, 0) / self.rate

    def describe(self) -> str:
        """One line: 'Q4_K_M.gguf: 42% 7.9 GB of 18.7 GB, 12.3 MB/s, 14 min left'."""
        if self.phase == "checking":
            of = f" of {human_size(self.done)}" if self.total is None else ""
            return f"{self.file_name}: checking the partial download{of}..."
        size = human_size(self.done)
        if self.total:
            size = f"{self.done * 100 // self.total}% {size} of {human_size(self.total)}"
        line = f"{self.file_name}: {size}, {human_size(self.rate)}/s"
        eta = self.eta_s
        if eta is not None:
            line += f", {human_duration(eta)} left"
        return line


ProgressCallback = Callable[[DownloadProgress], None]


class DownloadCancelled(Cancelled):
    """The user cancelled; the ``.part`` is kept and the next download resumes it."""

    def __init__(self, part: Path, done: int, total: int | None) -> None:
        super().__init__(f"download cancelled, {part.name} kept")
        self.part = part
        self.done = done
        self.total = total


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    size: int
    sha256: str  # "" when the file was already there and not hashed again
    verified_by: str  # "catalogue" | "--sha256" | "server ETag" | "" (nothing to compare)
    downloaded: int  # bytes fetched by this call
    resumed_from: int  # bytes of .part that were kept
    already_present: bool = False


# -- the download -------------------------------------------------------------------------
BLOCK_SIZE = 1024 * 1024
TIMEOUT_S = 30.0  # per socket operation: connect, and each read
DISK_MARGIN = 256 * 1024 * 1024  # left free after the download: logs, database, OS
PROGRESS_INTERVAL_S = 0.2
RATE_WINDOW_S = 5.0
USER_AGENT = "QwenLongReader/0.1 (+urllib)"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def download_model(
    quant: str | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    dest_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | CancelToken | None = None,
    token: str | None = None,
    timeout: float = TIMEOUT_S,
) -> DownloadResult:
    """Download ``quant`` from the catalogue (or ``url``) into ``dest_dir`` (the models
    folder). Blocking: run it on a worker thread. ``progress`` is called from that thread;
    ``cancel`` is checked between blocks and raises DownloadCancelled. UserError (or
    ModelError) with a hint on every expected failure; the ``.part`` is kept unless its
    content is known to be wrong.

    ``token`` defaults to the HF_TOKEN environment variable, which is sent only to
    Hugging Face; a token passed explicitly is sent to ``url``'s host, whatever it is."""
    entry = _entry(quant)
    if url:
        source, name = url, _file_name(url)
        expected, verified_by = _expected_sha256(sha256, None)  # the catalogue's is not url's
    elif entry is not None:
        source, name = entry.url(), entry.file_name
        expected, verified_by = _expected_sha256(sha256, entry)
    else:
        raise UserError("Nothing to download: give a quantization or a URL.")
    folder = dest_dir or paths.models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if target.exists():
        return _already_there(target, expected, verified_by)
    if token is None:
        env_token = os.environ.get(TOKEN_ENV, "").strip()
        token = env_token if env_token and _is_hf(source) else None
    with _claim(target):
        return _Download(
            source,
            target,
            expected=expected,
            verified_by=verified_by,
            size_hint=entry.size if entry and not url else None,
            progress=progress,
            cancel=cancel,
            token=token or None,
            timeout=timeout,
        ).run()


_active: set[Path] = set()
_active_lock = threading.Lock()


@contextlib.contextmanager
def _claim(target: Path) -> Iterator[None]:
    """One download per file in this process: two would write the same .part."""
    key = target.resolve()
    with _active_lock:
        if key in _active:
            raise UserError(f"{target.name} is already being downloaded.")
        _active.add(key)
    try:
        yield
    finally:
        with _active_lock:
            _active.discard(key)


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


def _file_name(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UserError(f"Not a download URL: {url}", hint="Give an http:// or https:// URL.")
    name = urllib.parse.unquote(parsed.path.rstrip("/").rsplit("/", 1)[-1])
    if not name.lower().endswith(".gguf") or "/" in name or "\\" in name or name.startswith("."):
        raise UserError(
            f"{url} does not end in a .gguf file name.",
            hint="Give the file's own URL, e.g. https://huggingface.co/OWNER/REPO/resolve/"
            "main/MODEL.Q4_K_M.gguf (the 'download' link on the model page).",
        )
    return name


def _expected_sha256(given: str | None, entry: CatalogueEntry | None) -> tuple[str, str]:
    if given:
        value = given.strip().lower()
        if not SHA256_RE.match(value):
            raise UserError(
                f"{given!r} is not a SHA-256: it should be 64 hexadecimal characters.",
                hint="Copy it from the model page's file details (the 'SHA256' line).",
            )
        return value, "--sha256"
    if entry is not None and entry.sha256:
        return entry.sha256, "catalogue"
    return "", ""


def _is_hf(url: str) -> bool:
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in HF_HOSTS)


def _already_there(target: Path, expected: str, verified_by: str) -> DownloadResult:
    _check_magic(target, corrupt_on_failure=False)
    size = target.stat().st_size
    digest = ""
    if expected:
        from app.llm.gguf import file_sha256  # cached by (path, size, mtime)

        digest = file_sha256(target)
        if digest != expected:
            raise ModelError(
                f"{target.name} is already in the models folder but its SHA-256 is "
                f"{digest}, not {expected}.",
                hint=f"Delete {target} and download it again.",
            )
    log.info("download: %s already present", target)
    return DownloadResult(target, size, digest, verified_by if digest else "", 0, 0, True)


class _RecordRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects as urllib does, remembering the headers of each redirect:
    Hugging Face puts X-Linked-Etag (the file's SHA-256) and X-Linked-Size on its 302 to
    the CDN, not on the CDN's answer."""

    def __init__(self) -> None:
        self.headers: list[Message] = []

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        self.headers.append(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Restart(Exception):
    """The server did not continue where the .part ends: download from byte 0."""


class _Download:
    def __init__(
        self,
        url: str,
        target: Path,
        *,
        expected: str,
        verified_by: str,
        size_hint: int | None,
        progress: ProgressCallback | None,
        cancel: threading.Event | CancelToken | None,
        token: str | None,
        timeout: float,
    ) -> None:
        self.url = url
        self.target = target
        self.part = target.with_name(target.name + ".part")
        self.corrupt = target.with_name(target.name + ".corrupt")
        self.expected = expected
        self.verified_by = verified_by
        self.size_hint = size_hint
        self.progress = progress
        self.cancel = cancel
        self.token = token
        self.timeout = timeout
        self.host = urllib.parse.urlsplit(url).hostname or url
        self.total: int | None = None
        self.server_sha = ""
        self.downloaded = 0
        self.resumed_from = 0

    # -- the steps ----------------------------------------------------------------------
    def run(self) -> DownloadResult:
        offset = self.part.stat().st_size if self.part.exists() else 0
        if self.size_hint:
            self._check_disk(self.size_hint - offset, self.size_hint)
        log.info("download: %s -> %s (resume at %d)", _safe_url(self.url), self.part, offset)
        for _attempt in range(2):
            try:
                digest = self._fetch(offset)
                break
            except _Restart:
                offset = 0
        else:  # pragma: no cover - a second restart means a broken server
            raise UserError(f"{self.host} keeps changing the file; try again later.")
        return self._finish(digest)

    def _fetch(self, offset: int) -> str:
        """One GET from ``offset``; appends to .part and returns the whole file's SHA-256."""
        if _is_cancelled(self.cancel):
            raise DownloadCancelled(self.part, offset, self.total)
        redirects = _RecordRedirects()
        opener = urllib.request.build_opener(redirects)
        request = urllib.request.Request(self.url, headers={"User-Agent": USER_AGENT})
        request.add_header("Accept-Encoding", "identity")  # byte offsets must be the file's
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        if self.token:
            # Unredirected: urllib does not copy it onto the redirect to the CDN.
            request.add_unredirected_header("Authorization", f"Bearer {self.token}")
        try:
            response = opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            with contextlib.closing(error):
                if error.code == 416 and offset:
                    return self._range_not_satisfiable(error, offset)
                raise self._http_error(error.code, error.reason, offset) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise self._network_error(error, offset) from None
        with response:
            headers = response.headers
            self.server_sha = _sha_from_headers([*redirects.headers, headers])
            status = response.status
            if status == 206:
                start, total = _content_range(headers.get("Content-Range", ""))
                if start != offset:
                    log.info("download: asked for byte %d, got %s; restarting", offset, start)
                    self.part.unlink(missing_ok=True)
                    raise _Restart
                self.total = total
            elif status == 200:
                if offset:
                    log.info("download: %s ignored the Range request; restarting", self.host)
                offset = 0
                self.total = _int(headers.get("Content-Length"))
            else:
                raise self._http_error(status, response.reason, offset)
            if self.total is None:
                self.total = _linked_size([*redirects.headers, headers])
            if self.total is not None:
                self._check_disk(self.total - offset, self.total)
            self.resumed_from = offset
            digest = self._hash_part(offset)
            return self._stream(response, offset, digest)

    def _stream(self, response: Any, offset: int, digest: Any) -> str:
        done = offset
        rate = _Rate(done)
        last_report = 0.0
        block = self._read(response, done)
        if not offset and len(block) >= 4 and block[:4] != MAGIC:
            self._not_gguf(response, block)  # before writing: a web page never lands on disk
        with self.part.open("ab" if offset else "wb") as out:
            try:
                while block:
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    self.downloaded += len(block)
                    now = time.monotonic()
                    if now - last_report >= PROGRESS_INTERVAL_S:
                        last_report = now
                        self._report(done, rate.update(done, now))
                    if _is_cancelled(self.cancel):  # after the report: its callback may cancel
                        log.info("download: cancelled at %d bytes", done)
                        raise DownloadCancelled(self.part, done, self.total)
                    block = self._read(response, done)
            finally:
                out.flush()
                with contextlib.suppress(OSError):
                    os.fsync(out.fileno())
        self._report(done, rate.update(done, time.monotonic()))
        if self.total is not None and done < self.total:
            raise self._cut(done, None)
        if self.total is not None and done > self.total:
            os.replace(self.part, self.corrupt)
            raise UserError(
                f"{self.host} sent {done:,} bytes for a {self.total:,}-byte file; "
                f"kept as {self.corrupt.name}.",
                hint=f"Delete {self.corrupt} and download again.",
            )
        return str(digest.hexdigest())

    def _read(self, response: Any, done: int) -> bytes:
        try:
            return bytes(response.read(BLOCK_SIZE))
        except (OSError, http.client.HTTPException) as error:
            raise self._cut(done, error) from None

    def _finish(self, digest: str) -> DownloadResult:
        expected, by = self.expected, self.verified_by
        if not expected and self.server_sha:
            expected, by = self.server_sha, "server ETag"
        if expected and digest != expected:
            os.replace(self.part, self.corrupt)
            log.info("download: SHA-256 mismatch for %s (%s)", self.target.name, by)
            source = {
                "--sha256": "the --sha256 you gave",
                "catalogue": "the published one",
                "server ETag": f"the one {self.host} announced",
            }[by]
            raise ModelError(
                f"The downloaded {self.target.name} is corrupt: its SHA-256 is {digest}, "
                f"not {expected} ({source}). It was renamed {self.corrupt.name}.",
                hint=f"Delete {self.corrupt} and download again; if that fails too, check "
                "the checksum on the model page, or download in a browser and use Import.",
            )
        _check_magic(self.part, corrupt_on_failure=True)
        if self.total is None:  # no length to compare: the GGUF's own tensor table tells
            _check_whole(self.part, self._resume_hint())
        os.replace(self.part, self.target)  # atomic: the models folder never has half a file
        _remember_hash(self.target, digest)
        size = self.target.stat().st_size
        log.info("download: %s complete, %d bytes, sha256 %s (%s)", self.target, size, digest, by)
        return DownloadResult(
            self.target, size, digest, by if expected else "", self.downloaded, self.resumed_from
        )

    # -- helpers ------------------------------------------------------------------------
    def _hash_part(self, offset: int) -> Any:
        """A SHA-256 fed with the kept .part, so resuming never reads the file twice."""
        digest = hashlib.sha256()
        if not offset:
            return digest
        done = 0
        self._report(0, 0.0, phase="checking")
        with self.part.open("rb") as f:
            while done < offset and (block := f.read(min(HASH_BLOCK, offset - done))):
                if _is_cancelled(self.cancel):
                    raise DownloadCancelled(self.part, offset, self.total)
                digest.update(block)
                done += len(block)
        return digest

    def _report(self, done: int, rate: float, phase: str = "downloading") -> None:
        if self.progress is not None:
            self.progress(
                DownloadProgress(self.target.name, done, self.total, rate, self.resumed_from, phase)
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

    def _cut(self, done: int, error: BaseException | None) -> UserError:
        total = f" of {human_size(self.total)}" if self.total else ""
        why = f" ({_reason(error)})" if error is not None else ""
        log.info("download: connection lost at %d bytes%s", done, why)
        return UserError(
            f"The connection to {self.host} was lost after {human_size(done)}{total}{why}.",
            hint=self._resume_hint(),
        )

    def _http_error(self, code: int, reason: str, offset: int) -> UserError:
        log.info("download: HTTP %d %s from %s", code, reason, self.host)
        if code == 404:
            return UserError(
                f"{self.target.name} was not found at {_safe_url(self.url)} (HTTP 404).",
                hint=f"The repository may have moved or renamed its files. Find the GGUF on "
                f"huggingface.co and pass its link with --url, or set {REPO_ENV}=owner/name; "
                "or download it in a browser and use Import.",
            )
        if code in (401, 403) and self.token:
            return UserError(
                f"{self.host} refused the download (HTTP {code}) with the access token given.",
                hint="The model may be gated: open its page in a browser, log in with the "
                "token's account and accept its terms; or download the .gguf there and add it "
                "with Import (`python -m app models --import FILE`).",
            )
        if code in (401, 403):
            return UserError(
                f"{self.host} refused the download (HTTP {code}): the model is gated or "
                "needs you to log in.",
                hint="Open the model page in a browser, log in and accept its terms, download "
                "the .gguf there and add it with Import (`python -m app models --import "
                f"FILE`); or create an access token and set {TOKEN_ENV}.",
            )
        if code == 429:
            return UserError(
                f"{self.host} is limiting downloads (HTTP 429).",
                hint="Wait a few minutes. " + self._resume_hint(),
            )
        if code >= 500:
            return UserError(
                f"{self.host} had an error (HTTP {code} {reason}).",
                hint="Try again later. " + self._resume_hint(),
            )
        return UserError(
            f"{self.host} answered HTTP {code} {reason} for {_safe_url(self.url)}.",
            hint="Check the URL; " + self._resume_hint(),
        )

    def _network_error(self, error: BaseException, offset: int) -> UserError:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        log.info("download: cannot reach %s: %s", self.host, _reason(reason))
        if isinstance(reason, socket.gaierror):
            return UserError(
                f"Cannot find {self.host}: no network connection, or DNS is not working.",
                hint="Check the connection (and any proxy: HTTPS_PROXY), then run the download "
                "again (it continues from what is already downloaded); or download the file "
                "on another machine and use Import.",
            )
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return UserError(
                f"{self.host} did not answer within {self.timeout:g} s.",
                hint="The network may be slow or blocked. " + self._resume_hint(),
            )
        if isinstance(reason, ssl.SSLError):
            return UserError(
                f"A secure connection to {self.host} failed ({_reason(reason)}).",
                hint="A proxy or firewall may be intercepting HTTPS; download the file in a "
                "browser and use Import.",
            )
        if isinstance(reason, ConnectionRefusedError):
            return UserError(
                f"{self.host} refused the connection.",
                hint="Check the URL, proxy and firewall. " + self._resume_hint(),
            )
        return UserError(
            f"Cannot download from {self.host}: {_reason(reason)}.",
            hint="Check the network connection. " + self._resume_hint(),
        )

    def _range_not_satisfiable(self, error: urllib.error.HTTPError, offset: int) -> str:
        """416: the .part is as long as the file (a download cut between the last byte and
        the rename) or longer (a different file): finish it, or start over."""
        _, total = _content_range(error.headers.get("Content-Range", ""))
        self.server_sha = _sha_from_headers([error.headers])
        if total == offset:
            self.total = total
            self.resumed_from = offset
            return str(self._hash_part(offset).hexdigest())
        log.info("download: .part (%d bytes) does not fit the file (%s); restarting", offset, total)
        self.part.unlink(missing_ok=True)
        raise _Restart

    def _not_gguf(self, response: Any, block: bytes) -> None:
        kind = response.headers.get("Content-Type", "unknown type")
        self.part.unlink(missing_ok=True)
        raise ModelError(
            f"{self.host} did not send a GGUF model for {self.target.name} (it sent {kind}, "
            f"starting {block[:16]!r}).",
            hint="The link may point to a web page (use the file's 'download' link, with "
            "/resolve/ in it), or a login or proxy page answered instead; download it in a "
            "browser and use Import.",
        )


class _Rate:
    """Bytes per second over the last RATE_WINDOW_S."""

    def __init__(self, done: int) -> None:
        self.samples: deque[tuple[float, int]] = deque([(time.monotonic(), done)])

    def update(self, done: int, now: float) -> float:
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= RATE_WINDOW_S:
            self.samples.popleft()
        t0, d0 = self.samples[0]
        return (done - d0) / (now - t0) if now > t0 else 0.0


def _is_cancelled(cancel: threading.Event | CancelToken | None) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, CancelToken):
        return cancel.cancelled
    return cancel.is_set()


def _check_magic(path: Path, *, corrupt_on_failure: bool) -> None:
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


def _check_whole(part: Path, hint: str) -> None:
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


def _sha_from_headers(all_headers: list[Any]) -> str:
    """The SHA-256 a server announces: Hugging Face's X-Linked-Etag for LFS files, or a
    plain ETag that is 64 hex digits (weak or quoted forms included). Anything else (an
    MD5, a git blob id) is not a SHA-256 and is ignored."""
    for name in ("X-Linked-Etag", "ETag"):
        for headers in reversed(all_headers):
            value = (headers.get(name) or "").strip()
            value = value.removeprefix("W/").strip('"').lower()
            if SHA256_RE.match(value):
                return value
    return ""


def _linked_size(all_headers: list[Any]) -> int | None:
    for headers in reversed(all_headers):
        size = _int(headers.get("X-Linked-Size"))
        if size is not None:
            return size
    return None


def _content_range(value: str) -> tuple[int | None, int | None]:
    """'bytes 100-199/1000' -> (100, 1000); 'bytes */1000' -> (None, 1000)."""
    match = re.match(r"^\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*$", value or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _reason(error: object) -> str:
    text = str(error) or type(error).__name__
    return text.removeprefix("<urlopen error ").removesuffix(">")


def _safe_url(url: str) -> str:
    """The URL without a query or credentials, for logs and messages (signed CDN URLs
    and user:password@ never reach a log)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _remember_hash(path: Path, digest: str) -> None:
    """Seed file_sha256's cache: `models` then lists the file without reading 20 GB."""
    import json

    cache_file = paths.cache_dir() / HASH_CACHE_NAME
    with contextlib.suppress(OSError):
        cache = _load_cache(cache_file)
        cache[_cache_key(path)] = digest
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        # 0600: it names every model file on the machine (app/private.py).
        with open(tmp, "w", encoding="utf-8", opener=private.opener) as out:
            out.write(json.dumps(cache, indent=1, sort_keys=True))
        os.replace(tmp, cache_file)
