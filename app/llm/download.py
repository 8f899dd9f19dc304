"""Download a QwenLong GGUF into the models folder, only when the user asks for it.

The app is offline first: nothing here runs unless the user clicks Download or runs
``python -m app models --download QUANT``; huggingface_hub is imported only then.

Why huggingface_hub: it lists a repository's files (so the file of the quantization the
user picked is found, not guessed), builds Hub URLs for ``HF_ENDPOINT`` (an on-prem
mirror), sends ``HF_TOKEN`` only to the Hub, turns the Hub's errors (gated, not found)
into typed exceptions, and its ``http_get`` resumes a dropped connection in place with a
Range request (and copes with a server that answers 200 to one). Its ``hf_hub_download``
is not used: since huggingface_hub 2 it deletes the partial file of a cancelled or cut
download, and a 20 GB file over a home connection must continue where it stopped. So
this module keeps ``<models>/<file>.part`` itself, hands it to ``http_get`` to append to,
and checks what the library does not: free disk space first, the SHA-256 the Hub lists
for the file (the library only compares sizes), the GGUF magic, then an os.replace into
place, so a model in the folder is always whole.

Nothing is sent that the user did not ask for: telemetry is off (it also stops the user
agent from fetching a registry from the Hub), a token saved by ``hf auth login`` is never
read implicitly (only ``HF_TOKEN`` or an explicit one), the HTTP client is the app's own
(OS trust store, no environment proxies; the proxy in Settings if one is set), and
``HF_HUB_OFFLINE=1`` is honoured with a message saying so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from app import paths, private
from app.errors import Cancelled, ModelError, UserError
from app.llm.backend import CancelToken
from app.llm.gguf import HASH_BLOCK, HASH_CACHE_NAME, MAGIC, _cache_key, _load_cache
from app.llm.qwenlong import QWENLONG_QUANTS
from app.units import gb, human_duration, human_size

log = logging.getLogger(__name__)

# -- catalogue ----------------------------------------------------------------------------
# Tongyi-Zhiwen publishes QwenLong-L1.5-30B-A3B as safetensors only; GGUF conversions are
# community uploads. These repository names follow each publisher's usual naming but could
# not be checked from here (no network): they are tried in order, and the first that has
# the quantization wins. Another one: QWENLONG_READER_GGUF_REPO=owner/name, the dialog's
# repository field, or download_model(repo=...).
REPO_ENV = "QWENLONG_READER_GGUF_REPO"
KNOWN_REPOS = (
    "mradermacher/QwenLong-L1.5-30B-A3B-GGUF",
    "bartowski/Tongyi-Zhiwen_QwenLong-L1.5-30B-A3B-GGUF",
    "unsloth/QwenLong-L1.5-30B-A3B-GGUF",
)
DEFAULT_REPO = KNOWN_REPOS[0]
DEFAULT_ENDPOINT = "https://huggingface.co"
TOKEN_ENV = "HF_TOKEN"
REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class CatalogueEntry:
    """One recommended quantization. ``file_name`` is the usual name, shown before the
    repository is asked; the real one is found in its file list. ``sha256`` stays empty:
    the Hub's file list gives each file's SHA-256."""

    quant: str
    file_name: str
    size: int  # published size in bytes, for "which one?" before asking the Hub
    sha256: str = ""

    def url(self, repo: str | None = None) -> str:
        """The usual file's address, for showing (the download looks the file up)."""
        return (
            f"{hub_endpoint()}/{repo or gguf_repo()}/resolve/main/"
            f"{urllib.parse.quote(self.file_name)}"
        )


CATALOGUE: dict[str, CatalogueEntry] = {
    quant: CatalogueEntry(quant, f"QwenLong-L1.5-30B-A3B.{quant}.gguf", size)
    for quant, size in QWENLONG_QUANTS.items()
}


def gguf_repo() -> str:
    """The repository a download tries first."""
    return os.environ.get(REPO_ENV, "").strip().strip("/") or DEFAULT_REPO


def candidate_repos(repo: str | None = None) -> list[str]:
    """The repositories to try, in order: the user's own choice alone, else the known ones."""
    chosen = (repo or os.environ.get(REPO_ENV, "")).strip().strip("/")
    if chosen:
        if not REPO_RE.match(chosen):
            raise UserError(
                f"{chosen!r} is not a Hugging Face repository name.",
                hint="Write it as owner/name, e.g. bartowski/Tongyi-Zhiwen_QwenLong-L1.5-"
                "30B-A3B-GGUF (the part of the model page's address after the host).",
            )
        return [chosen]
    return list(KNOWN_REPOS)


def hub_endpoint() -> str:
    """HF_ENDPOINT (an on-prem mirror) or huggingface.co, read at each call."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip().rstrip("/")


def pick_file(files: list[str], quant: str) -> str | None:
    """The single-file GGUF of ``quant`` among a repository's files (any folder, any
    publisher's naming: ``X.Q4_K_M.gguf``, ``X-Q4_K_M.gguf``, ``Q4_K_M/X.gguf``)."""
    token = re.compile(rf"(?<![A-Za-z0-9]){re.escape(quant)}(?![A-Za-z0-9])", re.IGNORECASE)
    found = [
        f
        for f in files
        if f.lower().endswith(".gguf")
        and token.search(f)
        and "mmproj" not in f.lower()
        and not re.search(r"-\d{5}-of-\d{5}\.gguf$", f)
    ]
    return min(found, key=lambda f: (f.count("/"), len(f))) if found else None


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
        if self.phase == "looking":
            return f"{self.file_name}: looking for the file..."
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
    verified_by: str  # "catalogue" | "--sha256" | "Hub" | "server ETag" | "" (nothing to compare)
    downloaded: int  # bytes fetched by this call
    resumed_from: int  # bytes of .part that were kept
    already_present: bool = False
    repo: str = ""  # the repository it came from ("" for a plain URL)


# -- the download -------------------------------------------------------------------------
BLOCK_SIZE = 256 * 1024  # http_get's read size: a cancel is seen after one block (1 s at 256 KB/s)
TIMEOUT_S = 30.0  # per socket operation: connect, and each read
DISK_MARGIN = 256 * 1024 * 1024  # left free after the download: logs, database, OS
PROGRESS_INTERVAL_S = 0.2
RATE_WINDOW_S = 5.0
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


_client_config: tuple[str, float] | None = None


def _hub(proxy: str, timeout: float) -> Any:
    """huggingface_hub, configured: set the environment before its first import (its
    constants are read then), and route it through the app's HTTP client."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    import httpx2
    import huggingface_hub
    from huggingface_hub import constants

    from app.llm.httpclient import make_client

    hooks: list[Any] = []
    with contextlib.suppress(ImportError):  # the offline-mode check and request ids
        from huggingface_hub.utils._http import hf_request_event_hook

        hooks.append(hf_request_event_hook)
    constants.DOWNLOAD_CHUNK_SIZE = BLOCK_SIZE  # 10 MB by default: a slow cancel
    client_timeout = httpx2.Timeout(timeout)
    global _client_config
    with _active_lock:
        # Setting a factory closes the library's shared client: never under a download.
        if _client_config == (proxy, timeout) or _active:
            return huggingface_hub
        _client_config = (proxy, timeout)
    huggingface_hub.set_client_factory(
        lambda: make_client(
            proxy=proxy,
            timeout=client_timeout,
            follow_redirects=True,  # the Hub sends files from its CDN
            event_hooks={"request": hooks},
        )
    )
    return huggingface_hub


def download_model(
    quant: str | None = None,
    *,
    url: str | None = None,
    repo: str | None = None,
    sha256: str | None = None,
    dest_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | CancelToken | None = None,
    token: str | None = None,
    timeout: float = TIMEOUT_S,
    proxy: str | None = None,
) -> DownloadResult:
    """Download ``quant`` from the first repository that has it (``repo``, else
    QWENLONG_READER_GGUF_REPO, else KNOWN_REPOS in order), or the file at ``url``, into
    ``dest_dir`` (the models folder). Blocking: run it on a worker thread. ``progress``
    is called from that thread; ``cancel`` is checked on every block and raises
    DownloadCancelled. UserError (or ModelError) with a hint on every expected failure;
    the ``.part`` is kept unless its content is known to be wrong.

    ``token`` defaults to HF_TOKEN, sent only to the Hub (``HF_ENDPOINT``). ``proxy``
    defaults to the one in Settings."""
    entry = _entry(quant)
    if not url and entry is None:
        raise UserError("Nothing to download: give a quantization or a URL.")
    expected, verified_by = _expected_sha256(sha256, None if url else entry)
    if proxy is None:
        from app.settings import load_settings

        proxy = load_settings().proxy_url
    hub = _hub(proxy, timeout)
    if hub.constants.is_offline_mode():
        raise UserError(
            "Downloads are switched off: HF_HUB_OFFLINE is set in the environment.",
            hint="Unset HF_HUB_OFFLINE (or set it to 0) and run the download again; or "
            "download the file on another machine and use Import.",
        )
    endpoint = hub_endpoint()
    if token is None:
        token = os.environ.get(TOKEN_ENV, "").strip() or None
    folder = dest_dir or paths.models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    done = _Done(cancel)
    if url:
        named = folder / _file_name(url)
        if named.exists():  # nothing to ask the server
            return _already_there(named, expected, verified_by, "")
        source = _url_source(hub, url, endpoint, token, timeout)
    else:
        assert entry is not None
        if progress is not None:
            progress(DownloadProgress(entry.quant, 0, None, 0.0, phase="looking"))
        source = _find(hub, entry.quant, candidate_repos(repo), endpoint, token, timeout, done)
    target = folder / source.name
    if not expected and source.sha256:
        expected, verified_by = source.sha256, source.sha_from
    if target.exists():
        return _already_there(target, expected, verified_by, source.repo)
    with _claim(target):
        return _Download(hub, source, target, expected, verified_by, progress, done).run()


@dataclass(frozen=True)
class _Source:
    """One file to fetch, as the Hub (or a plain server) describes it."""

    url: str  # where the bytes are (after the Hub's redirect to its CDN)
    name: str  # the file name in the models folder
    size: int | None
    sha256: str
    sha_from: str  # "Hub" | "server ETag" | ""
    headers: dict[str, str]  # the token only when ``url`` is on the Hub's host
    repo: str = ""
    etag: str = ""


class _Done:
    """The cancel flag, whichever kind the caller passed."""

    def __init__(self, cancel: threading.Event | CancelToken | None) -> None:
        self.cancel = cancel

    def __bool__(self) -> bool:
        if self.cancel is None:
            return False
        if isinstance(self.cancel, CancelToken):
            return self.cancel.cancelled
        return self.cancel.is_set()


def _find(
    hub: Any,
    quant: str,
    repos: list[str],
    endpoint: str,
    token: str | None,
    timeout: float,
    cancelled: _Done,
) -> _Source:
    """The first repository with a single-file GGUF of ``quant``, asked in order."""
    import httpx2
    from huggingface_hub.utils import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    api = hub.HfApi(endpoint=endpoint, token=token or False)
    tried: list[str] = []
    gated: list[str] = []
    for repo in repos:
        if cancelled:
            raise Cancelled()
        try:
            info = api.model_info(repo, files_metadata=True, timeout=timeout)
        except GatedRepoError:
            log.info("download: %s is gated", repo)
            gated.append(repo)
            continue
        except RepositoryNotFoundError:
            log.info("download: %s not found (or private)", repo)
            tried.append(f"{repo} (not found)")
            continue
        except HfHubHTTPError as error:
            raise _hub_error(error, endpoint, repo) from None
        except (httpx2.HTTPError, OSError) as error:  # OfflineModeIsEnabled is an OSError
            raise _network_error(error, endpoint, timeout) from None
        siblings = {s.rfilename: s for s in info.siblings or []}
        name = pick_file(sorted(siblings), quant)
        if name is None:
            log.info("download: %s has no single-file %s GGUF", repo, quant)
            tried.append(f"{repo} (no {quant} file)")
            continue
        sibling = siblings[name]
        lfs = getattr(sibling, "lfs", None)
        sha = str(getattr(lfs, "sha256", "") or "").lower()
        size = getattr(lfs, "size", None) or getattr(sibling, "size", None)
        file_url = hub.hf_hub_url(repo, name, endpoint=endpoint)
        meta = _metadata(hub, file_url, endpoint, token, timeout, repo)
        etag = (meta.etag or "").lower()
        if not SHA256_RE.match(sha) and SHA256_RE.match(etag):
            sha = etag
        location = urllib.parse.urljoin(file_url, meta.location or file_url)
        return _Source(
            url=location,
            name=name.rsplit("/", 1)[-1],
            size=meta.size or size,
            sha256=sha if SHA256_RE.match(sha) else "",
            sha_from="Hub" if SHA256_RE.match(sha) else "",
            headers=_auth(token, location, endpoint),
            repo=repo,
            etag=etag,
        )
    if gated and not tried:
        raise _gated(gated[0], token)
    where = "; ".join(tried + [f"{g} (gated)" for g in gated])
    raise UserError(
        f"No {quant} GGUF of QwenLong-L1.5-30B-A3B was found on {_host(endpoint)}: {where}.",
        hint="Find a GGUF repository of it on the Hub and enter it as owner/name (the "
        f"dialog's Repository field, or set {REPO_ENV}=owner/name); or download the file "
        "in a browser and use Import.",
    )


def _metadata(
    hub: Any, url: str, endpoint: str, token: str | None, timeout: float, repo: str
) -> Any:
    import httpx2
    from huggingface_hub.utils import GatedRepoError, HfHubHTTPError

    try:
        return hub.get_hf_file_metadata(url, token=token or False, timeout=timeout)
    except GatedRepoError:
        raise _gated(repo, token) from None
    except HfHubHTTPError as error:
        raise _hub_error(error, endpoint, repo) from None
    except (httpx2.HTTPError, OSError) as error:
        raise _network_error(error, url, timeout) from None


def _url_source(hub: Any, url: str, endpoint: str, token: str | None, timeout: float) -> _Source:
    """A file given by its address: a Hub ``/resolve/`` link, or any other server's."""
    name = _file_name(url)
    on_hub = _same_host(url, endpoint)
    meta = _metadata(hub, url, endpoint, token if on_hub else None, timeout, "")
    etag = (meta.etag or "").lower()
    location = urllib.parse.urljoin(url, meta.location or url)
    sha = etag if SHA256_RE.match(etag) else ""
    return _Source(
        url=location,
        name=name,
        size=meta.size,
        sha256=sha,
        sha_from="server ETag" if sha else "",
        headers=_auth(token if on_hub else None, location, endpoint),
        etag=etag,
    )


def _auth(token: str | None, url: str, endpoint: str) -> dict[str, str]:
    """The token goes only to the Hub's own host, never to the CDN it redirects to."""
    return {"authorization": f"Bearer {token}"} if token and _same_host(url, endpoint) else {}


def _same_host(url: str, endpoint: str) -> bool:
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(endpoint)
    return (a.hostname or "").lower() == (b.hostname or "").lower() and a.port == b.port


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc.rpartition("@")[2] or url


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


def _already_there(target: Path, expected: str, verified_by: str, repo: str) -> DownloadResult:
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
    return DownloadResult(target, size, digest, verified_by if digest else "", 0, 0, True, repo)


class _HashingFile:
    """The .part as http_get writes to it: hashes what is appended, so the file is read
    only once. http_get rewinds and truncates it when a server ignores Range; the hash
    then starts again from what is left."""

    def __init__(self, file: Any, digest: Any, size: int) -> None:
        self.file = file
        self.digest = digest
        self.size = size

    def write(self, data: bytes) -> int:
        self.file.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return int(self.file.tell())

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self.file.seek(offset, whence))

    def truncate(self, size: int | None = None) -> int:
        end = int(self.file.truncate(size))
        if end != self.size:  # only a rewind to 0 happens (see http_get); rehash otherwise
            self.file.flush()
            self.digest = _sha256_of(Path(self.file.name), end)
            self.size = end
        return end


def _sha256_of(path: Path, length: int, cancelled: _Done | None = None) -> Any:
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as f:
        while done < length and (block := f.read(min(HASH_BLOCK, length - done))):
            if cancelled:
                raise Cancelled()
            digest.update(block)
            done += len(block)
    return digest


class _Download:
    def __init__(
        self,
        hub: Any,
        source: _Source,
        target: Path,
        expected: str,
        verified_by: str,
        progress: ProgressCallback | None,
        cancelled: _Done,
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
        self.cancelled = cancelled
        self.host = _host(source.url)
        self.total = source.size
        self.offset = 0
        self.file: _HashingFile | None = None
        self.rate = _Rate(0)
        self.last_report = 0.0

    def run(self) -> DownloadResult:
        self.offset = self._kept()
        if self.total is not None:
            self._check_disk(self.total - self.offset, self.total)
        log.info(
            "download: %s -> %s (resume at %d)", _safe_url(self.source.url), self.part, self.offset
        )
        digest = self._hash_kept()
        self.rate = _Rate(self.offset)
        with self.part.open("ab") as out:
            self.file = _HashingFile(out, digest, self.offset)
            try:
                self._get()
            finally:
                out.flush()
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
            return _sha256_of(self.part, self.offset, self.cancelled)
        except Cancelled:
            raise DownloadCancelled(self.part, self.offset, self.total) from None

    def _get(self) -> None:
        import httpx2
        from huggingface_hub.utils import HfHubHTTPError

        assert self.file is not None
        download = self

        class Progress:
            """http_get's progress bar: reports, and stops the download on a cancel."""

            def __init__(self, **_: Any) -> None:
                pass

            def __enter__(self) -> Progress:
                return self

            def __exit__(self, *_: Any) -> None:
                pass

            def update(self, n: int) -> None:  # called before each block is written
                if download.cancelled:
                    raise Cancelled()
                download._report()

        from huggingface_hub.file_download import http_get

        try:
            http_get(
                self.source.url,
                cast(BinaryIO, self.file),
                resume_size=self.offset,
                headers=dict(self.source.headers),
                expected_size=self.total,
                displayed_filename=self.target.name,
                tqdm_class=Progress,
            )
        except Cancelled:
            log.info("download: cancelled at %d bytes", self._done())
            raise DownloadCancelled(self.part, self._done(), self.total) from None
        except HfHubHTTPError as error:
            raise _hub_error(
                error, self.source.url, self.source.repo, self._resume_hint()
            ) from None
        except OSError as error:
            if "Consistency check failed" in str(error):
                raise self._cut(None) from None
            raise self._cut(error) from None
        except httpx2.HTTPError as error:  # after http_get's own retries
            raise _network_error(error, self.source.url, 0, self._resume_hint()) from None

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
                "catalogue": "the published one",
                "Hub": f"the one {self.host} lists for it",
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
        self.about.unlink(missing_ok=True)
        _remember_hash(self.target, digest)
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

    def _cut(self, error: BaseException | None) -> UserError:
        done = self.part.stat().st_size if self.part.exists() else 0
        total = f" of {human_size(self.total)}" if self.total else ""
        why = f" ({error})" if error is not None else ""
        log.info("download: connection lost at %d bytes%s", done, why)
        return UserError(
            f"The connection to {self.host} was lost after {human_size(done)}{total}{why}.",
            hint=self._resume_hint(),
        )


# -- messages -----------------------------------------------------------------------------
def _gated(repo: str, token: str | None) -> UserError:
    if token:
        return UserError(
            f"{repo} is gated and refused the access token given.",
            hint="Open its page in a browser, log in with the token's account and accept its "
            "terms; or download the .gguf there and add it with Import (`python -m app "
            "models --import FILE`).",
        )
    return UserError(
        f"{repo} is gated: it needs you to log in and accept its terms.",
        hint="Open its page in a browser, log in and accept the terms, then create an access "
        f"token and set {TOKEN_ENV}; or download the .gguf there and use Import (`python -m "
        "app models --import FILE`).",
    )


def _hub_error(error: Any, url: str, repo: str, resume: str = "") -> UserError:
    from huggingface_hub.utils import EntryNotFoundError, GatedRepoError, RepositoryNotFoundError

    status = getattr(getattr(error, "response", None), "status_code", 0) or 0
    host = _host(url)
    resume = resume or "Run the download again, or download in a browser and use Import."
    log.info("download: HTTP %s from %s: %s", status, host, str(error).splitlines()[0])
    if isinstance(error, GatedRepoError):
        return _gated(repo or host, None)
    if isinstance(error, (RepositoryNotFoundError, EntryNotFoundError)) or status == 404:
        return UserError(
            f"{repo or _safe_url(url)} was not found on {host} (HTTP 404).",
            hint=f"The repository may have moved or renamed its files. Enter another one as "
            f"owner/name (or set {REPO_ENV}), pass the file's link with --url, or download "
            "it in a browser and use Import.",
        )
    if status in (401, 403):
        return UserError(
            f"{host} refused the download (HTTP {status}): the model is gated or needs you "
            "to log in.",
            hint="Open the model page in a browser, log in and accept its terms; create an "
            f"access token and set {TOKEN_ENV}; or download the .gguf there and use Import.",
        )
    if status == 429:
        return UserError(
            f"{host} is limiting downloads (HTTP 429).", hint="Wait a few minutes. " + resume
        )
    if status >= 500:
        return UserError(f"{host} had an error (HTTP {status}).", hint="Try again later. " + resume)
    return UserError(f"{host} answered HTTP {status} for {_safe_url(url)}.", hint=resume)


def _network_error(error: BaseException, url: str, timeout: float, resume: str = "") -> UserError:
    import httpx2

    host = _host(url)
    resume = resume or "Run the download again, or download in a browser and use Import."
    text = str(error) or type(error).__name__
    log.info("download: cannot reach %s: %s", host, text)
    if type(error).__name__ == "OfflineModeIsEnabled":
        return UserError(
            "Downloads are switched off: HF_HUB_OFFLINE is set.",
            hint="Unset HF_HUB_OFFLINE and try again, or download elsewhere and use Import.",
        )
    proxy_hint = "If this network needs a proxy, enter it in Settings (environment proxy "
    proxy_hint += "variables are not used). "
    if any(s in text for s in ("Name or service", "nodename", "getaddrinfo", "No address")):
        return UserError(
            f"Cannot find {host}: no network connection, or DNS is not working.",
            hint=f"Check the connection. {proxy_hint}{resume}",
        )
    if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
        return UserError(
            f"A secure connection to {host} failed ({text}).",
            hint="A proxy or firewall may be intercepting HTTPS: its certificate must be "
            f"installed in the system's certificate store. {resume}",
        )
    if isinstance(error, httpx2.TimeoutException):
        return UserError(
            f"{host} did not answer in time{f' ({timeout:g} s)' if timeout else ''}.",
            hint=f"The network may be slow or blocked. {proxy_hint}{resume}",
        )
    if "refused" in text.lower():
        return UserError(f"{host} refused the connection.", hint=f"{proxy_hint}{resume}")
    return UserError(f"Cannot download from {host}: {text}.", hint=f"{proxy_hint}{resume}")


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
    cache_file = paths.cache_dir() / HASH_CACHE_NAME
    with contextlib.suppress(OSError):
        cache = _load_cache(cache_file)
        cache[_cache_key(path)] = digest
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        # 0600: it names every model file on the machine (app/private.py).
        with open(tmp, "w", encoding="utf-8", opener=private.opener) as out:
            out.write(json.dumps(cache, indent=1, sort_keys=True))
        os.replace(tmp, cache_file)
