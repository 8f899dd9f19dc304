"""The HTTP policy shared by the remote backend and model downloads: which certificates are
trusted and which proxy is used; and what kind of failure a transport error was.

httpx2 (the maintained continuation of httpx, and what huggingface_hub 2 is built on) is
the one HTTP stack, so a frozen app carries one. Two rules hold for every client made here:

* TLS is checked against the operating system's trust store, so a company CA installed
  there works, also in the frozen app whose bundled OpenSSL knows no CA of its own. This
  is httpx2's own default (``truststore`` on Windows and macOS, the system bundle on
  Linux, where truststore would re-add the verify paths on every handshake with OpenSSL
  < 3.4); the app only builds it once and without SSL_CERT_FILE/SSL_CERT_DIR.
* ``trust_env=False``: HTTP(S)_PROXY, SSL_CERT_FILE and ~/.netrc in the environment are
  ignored. A proxy is used only when the user entered one in Settings; an environment
  variable set for something else must not route a team's LAN server, or its API key,
  through a proxy by surprise.
"""

from __future__ import annotations

import ssl
import urllib.parse
from functools import lru_cache
from typing import Any

import httpx2

USER_AGENT = "QwenLongReader/0.1"
CONNECT_S = 10.0


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """One context for the process: building one reads the whole trust store."""
    return httpx2.create_ssl_context(trust_env=False)


def check_proxy(proxy: str) -> str:
    """The proxy URL as httpx2 takes it, or "" for none; ValueError with a reason."""
    proxy = proxy.strip()
    if proxy and not proxy.startswith(("http://", "https://")):
        raise ValueError("the proxy must be an http:// or https:// URL, e.g. http://proxy:3128")
    return proxy


def make_client(
    *,
    proxy: str = "",
    timeout: httpx2.Timeout | float = 30.0,
    follow_redirects: bool = False,
    event_hooks: dict[str, list[Any]] | None = None,
    auth: tuple[str, str] | None = None,
) -> httpx2.Client:
    return httpx2.Client(
        auth=auth,
        verify=tls_context(),
        trust_env=False,
        proxy=check_proxy(proxy) or None,
        timeout=timeout,
        follow_redirects=follow_redirects,
        headers={"User-Agent": USER_AGENT},
        event_hooks=event_hooks,
    )


def ssl_cause(error: BaseException) -> ssl.SSLError | None:
    """The TLS failure behind a transport error, however deep httpx2 wrapped it."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def failure_kind(error: BaseException) -> str:
    """What went wrong on the wire, for both callers' messages: "tls", "proxy", "timeout",
    "dns", "refused", "dropped" (closed without an answer) or "other"."""
    text = str(error)
    if ssl_cause(error) is not None or "CERTIFICATE_VERIFY" in text.upper():
        return "tls"
    if isinstance(error, httpx2.ProxyError):
        return "proxy"
    if isinstance(error, httpx2.TimeoutException):
        return "timeout"
    if any(s in text for s in ("Name or service", "nodename", "getaddrinfo", "No address")):
        return "dns"
    if "refused" in text.lower():
        return "refused"
    if isinstance(error, httpx2.RemoteProtocolError):
        return "dropped"
    return "other"


def safe_url(url: str) -> str:
    """The URL without a query or credentials, for logs, messages and what is stored
    (signed CDN URLs and user:password@ never reach a log, a run record or an export)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def url_credentials(url: str) -> tuple[str, str] | None:
    """The user and password written into a URL (http://user:pw@host), for HTTP basic
    auth; None without."""
    parts = urllib.parse.urlsplit(url)
    if not parts.username:
        return None
    unquote = urllib.parse.unquote
    return unquote(parts.username), unquote(parts.password or "")
