"""What a failure talking to a server means, in words for someone looking at Settings:
transport errors (TLS, proxy, DNS, refused), HTTP statuses and servers' error bodies."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx2

from app.errors import BackendError
from app.llm.httpclient import CONNECT_S, failure_kind, ssl_cause

URL_HINT = "Check the URL; it should be the server's base URL, e.g. http://host:8080"
REACH_HINT = "Check that the server is running and that the URL and port in Settings are right."
PROXY_HINT = "Check the proxy in Settings (leave it empty to connect directly)."


def normalize_url(base_url: str) -> str:
    """The server's base URL without a trailing ``/`` or ``/v1`` (people often paste the
    OpenAI base ``http://host:8000/v1``; llama-server's /props and /tokenize live at the
    root)."""
    url = base_url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def check_url(url: str) -> None:
    """A BackendError for what is not an http(s) server URL; the message never repeats a
    password written into it."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as error:  # "Invalid IPv6 URL", a port that is not a number
        raise BackendError(f"The server URL is not valid: {error}.", hint=URL_HINT) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = url.rpartition("@")[2] if parts.password else url
        raise BackendError(
            f"{shown or '(empty)'} is not a server URL.",
            hint="Enter the server's base URL in Settings, e.g. http://host:8080",
        )


# -- errors -------------------------------------------------------------------------------
def never_answered(error: BaseException) -> bool:
    """True when the request cannot have reached a model: worth a retry."""
    if isinstance(error, (httpx2.ConnectError, httpx2.ConnectTimeout)):
        return ssl_cause(error) is None  # a TLS failure stays one
    # A keep-alive connection the server had closed, or a drop before the status line.
    return isinstance(error, httpx2.RemoteProtocolError) and "without sending" in str(error)


def network_error(error: BaseException, url: str, *, proxy: str) -> BackendError:
    """What an httpx2 transport error means for someone looking at Settings."""
    parts = urlsplit(url)
    host, where = parts.hostname or url, parts.netloc.rpartition("@")[2]
    kind = failure_kind(error)
    if kind == "tls":
        tls = ssl_cause(error) or error
        reason = getattr(tls, "verify_message", "") or getattr(tls, "reason", "") or str(tls)
        return BackendError(
            f"The secure connection to {host} failed: {reason}.",
            hint="Check whether the server speaks http or https. A company certificate must "
            "be installed in the system's certificate store to be trusted.",
        )
    if kind == "proxy":
        return BackendError(f"The proxy {proxy} refused the connection: {error}", hint=PROXY_HINT)
    why = {
        "timeout": f"{where} did not answer within {CONNECT_S:g} s",
        "refused": f"nothing answers at {where} (connection refused)",
        "dns": f"the host {host} was not found ({error})",
        "dropped": "the server closed the connection without answering",
    }.get(kind, f"{where} cannot be reached ({str(error) or type(error).__name__})")
    hint = REACH_HINT + (" " + PROXY_HINT if proxy else "")
    return BackendError(f"Could not reach the server at {url}: {why}.", hint=hint)


def error_text(body: bytes) -> str:
    """The message inside an error body of llama-server, vLLM or FastAPI."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:300]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or error)[:300]
        if isinstance(data.get("detail"), str):
            return data["detail"][:300]
        return str(error)[:300]
    return str(data)[:300]


def http_error(status: int, path: str, body: bytes, location: str = "") -> BackendError:
    message = error_text(body)
    if 300 <= status < 400:
        return BackendError(
            f"The server redirects {path} to {location or 'another address'} (HTTP {status}).",
            hint="Enter the address it redirects to as the server URL in Settings; the app "
            "only talks to the URL you entered.",
        )
    if status in (401, 403):
        return BackendError(
            f"The server refused the request (HTTP {status}: {message}).",
            hint="Check the API key in Settings.",
        )
    if status == 404:
        return BackendError(f"The server has no {path} (HTTP 404).", hint=URL_HINT)
    if status == 503:
        return BackendError(
            f"The server is busy or still loading its model (HTTP 503: {message}).",
            hint="Try again in a minute.",
        )
    if status >= 500:
        return BackendError(
            f"The server failed (HTTP {status}: {message}).",
            hint="Its log says why; try again later or tell whoever runs it.",
        )
    hint = ""
    if "context" in message.lower():
        hint = "Lower the chunk size or the context size in Settings to fit the server."
    return BackendError(f"The server rejected the request (HTTP {status}: {message}).", hint=hint)
