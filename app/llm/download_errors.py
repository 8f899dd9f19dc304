"""What went wrong with a model download, in words that say what to do next."""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any

from app.errors import NetworkError, UserError
from app.llm.httpclient import safe_url

log = logging.getLogger("app.llm.download")

# The environment variables the hints name (read in app.llm.model_sources and download).
REPO_ENV = "QWENLONG_READER_GGUF_REPO"

TOKEN_ENV = "HF_TOKEN"


def gated_error(repo: str, token: str | None) -> UserError:
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


def hub_error(error: Any, url: str, repo: str, resume: str = "") -> UserError:
    from huggingface_hub.utils import EntryNotFoundError, GatedRepoError, RepositoryNotFoundError

    status = getattr(getattr(error, "response", None), "status_code", 0) or 0
    host = host_of(url)
    resume = resume or "Run the download again, or download in a browser and use Import."
    log.info("download: HTTP %s from %s: %s", status, host, str(error).splitlines()[0])
    if isinstance(error, GatedRepoError):
        return gated_error(repo or host, None)
    if isinstance(error, (RepositoryNotFoundError, EntryNotFoundError)) or status == 404:
        return UserError(
            f"{repo or safe_url(url)} was not found on {host} (HTTP 404).",
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
        return NetworkError(
            f"{host} is limiting downloads (HTTP 429).", hint="Wait a few minutes. " + resume
        )
    if status >= 500:
        return NetworkError(
            f"{host} had an error (HTTP {status}).", hint="Try again later. " + resume
        )
    return UserError(f"{host} answered HTTP {status} for {safe_url(url)}.", hint=resume)


def network_error(error: BaseException, url: str, timeout: float, resume: str = "") -> UserError:
    from app.llm.httpclient import failure_kind

    host = host_of(url)
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
    kind = failure_kind(error)
    if kind == "dns":
        return NetworkError(
            f"Cannot find {host}: no network connection, or DNS is not working.",
            hint=f"Check the connection. {proxy_hint}{resume}",
        )
    if kind == "tls":
        return NetworkError(
            f"A secure connection to {host} failed ({text}).",
            hint="A proxy or firewall may be intercepting HTTPS: its certificate must be "
            f"installed in the system's certificate store. {resume}",
        )
    if kind == "timeout":
        return NetworkError(
            f"{host} did not answer in time{f' ({timeout:g} s)' if timeout else ''}.",
            hint=f"The network may be slow or blocked. {proxy_hint}{resume}",
        )
    if kind == "proxy":
        return NetworkError(
            f"The proxy refused the connection to {host} ({text}).",
            hint=f"Check the proxy in Settings (leave it empty to connect directly). {resume}",
        )
    if kind == "refused":
        return NetworkError(f"{host} refused the connection.", hint=f"{proxy_hint}{resume}")
    return NetworkError(f"Cannot download from {host}: {text}.", hint=f"{proxy_hint}{resume}")


def host_of(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc.rpartition("@")[2] or url
