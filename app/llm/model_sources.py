"""Where a QwenLong GGUF comes from: the catalogue of quantizations, the repositories that
publish them, and the one file of a repository (or a plain URL) that a download fetches.

The repository's own file list (huggingface_hub's ``model_info``) names the file of the
quantization the user picked, so no file name is guessed; the Hub's file metadata gives
its size, SHA-256 and the CDN address the bytes come from.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from app.errors import UserError
from app.llm.backend import CancelToken
from app.llm.download_errors import REPO_ENV, gated_error, host_of, hub_error, network_error
from app.llm.qwenlong import QWENLONG_QUANTS

log = logging.getLogger("app.llm.download")

# -- catalogue ----------------------------------------------------------------------------
# Tongyi-Zhiwen publishes QwenLong-L1.5-30B-A3B as safetensors only; GGUF conversions are
# community uploads. These repository names follow each publisher's usual naming but could
# not be checked from here (no network): they are tried in order, and the first that has
# the quantization wins. Another one: QWENLONG_READER_GGUF_REPO=owner/name, the dialog's
# repository field, or download_model(repo=...).

KNOWN_REPOS = (
    "mradermacher/QwenLong-L1.5-30B-A3B-GGUF",
    "bartowski/Tongyi-Zhiwen_QwenLong-L1.5-30B-A3B-GGUF",
    "unsloth/QwenLong-L1.5-30B-A3B-GGUF",
)
DEFAULT_REPO = KNOWN_REPOS[0]
DEFAULT_ENDPOINT = "https://huggingface.co"

REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class CatalogueEntry:
    """One recommended quantization. ``file_name`` is the usual name, shown before the
    repository is asked; the real one, and its SHA-256, are in the repository's file list."""

    quant: str
    file_name: str
    size: int  # published size in bytes, for "which one?" before asking the Hub

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


SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Source:
    """One file to fetch, as the Hub (or a plain server) describes it."""

    url: str  # where the bytes are (after the Hub's redirect to its CDN)
    name: str  # the file name in the models folder
    size: int | None
    sha256: str
    sha_from: str  # "Hub" | "server ETag" | ""
    headers: dict[str, str]  # the token only when ``url`` is on the Hub's host
    repo: str = ""
    etag: str = ""


def find_source(
    hub: Any,
    quant: str,
    repos: list[str],
    endpoint: str,
    token: str | None,
    timeout: float,
    cancel: CancelToken | None,
) -> Source:
    """The first repository with a single-file GGUF of ``quant``, asked in order."""
    import httpx2
    from huggingface_hub.utils import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    api = hub.HfApi(endpoint=endpoint, token=token or False)
    tried: list[str] = []
    gated: list[str] = []
    for repo in repos:
        if cancel is not None:
            cancel.raise_if_cancelled()
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
            raise hub_error(error, endpoint, repo) from None
        except (httpx2.HTTPError, OSError) as error:  # OfflineModeIsEnabled is an OSError
            raise network_error(error, endpoint, timeout) from None
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
        return Source(
            url=location,
            name=name.rsplit("/", 1)[-1],
            size=meta.size or size,
            sha256=sha if SHA256_RE.match(sha) else "",
            sha_from="Hub" if SHA256_RE.match(sha) else "",
            headers=hub_auth(token, location, endpoint),
            repo=repo,
            etag=etag,
        )
    if gated and not tried:
        raise gated_error(gated[0], token)
    where = "; ".join(tried + [f"{g} (gated)" for g in gated])
    raise UserError(
        f"No {quant} GGUF of QwenLong-L1.5-30B-A3B was found on {host_of(endpoint)}: {where}.",
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
        raise gated_error(repo, token) from None
    except HfHubHTTPError as error:
        raise hub_error(error, url, repo) from None  # the file's URL: a plain server's too
    except (httpx2.HTTPError, OSError) as error:
        raise network_error(error, url, timeout) from None


def url_source(hub: Any, url: str, endpoint: str, token: str | None, timeout: float) -> Source:
    """A file given by its address: a Hub ``/resolve/`` link, or any other server's."""
    name = file_name_of(url)
    on_hub = same_host(url, endpoint)
    meta = _metadata(hub, url, endpoint, token if on_hub else None, timeout, "")
    etag = (meta.etag or "").lower()
    location = urllib.parse.urljoin(url, meta.location or url)
    sha = etag if SHA256_RE.match(etag) else ""
    return Source(
        url=location,
        name=name,
        size=meta.size,
        sha256=sha,
        sha_from="server ETag" if sha else "",
        headers=hub_auth(token if on_hub else None, location, endpoint),
        etag=etag,
    )


def hub_auth(token: str | None, url: str, endpoint: str) -> dict[str, str]:
    """The token goes only to the Hub's own host, never to the CDN it redirects to."""
    return {"authorization": f"Bearer {token}"} if token and same_host(url, endpoint) else {}


def same_host(url: str, endpoint: str) -> bool:
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(endpoint)
    return (a.hostname or "").lower() == (b.hostname or "").lower() and a.port == b.port


def file_name_of(url: str) -> str:
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
