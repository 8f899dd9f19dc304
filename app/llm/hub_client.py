"""huggingface_hub, configured for this app, and the downloads that use it.

Configured: telemetry and implicit tokens off (set before its first import, when its
constants are read), 256 KB reads, our read timeout, and every request through the app's
HTTP client (app.llm.httpclient: the OS trust store, no environment proxies). Its
downloads: one per file in this process, and a cancel that reaches their requests even
when a connection has stalled (huggingface_hub itself only looks between blocks).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.errors import UserError
from app.llm.abortable import aborted_on_cancel
from app.llm.backend import CancelToken

BLOCK_SIZE = 256 * 1024  # http_get's read size: progress is reported after each block

_client_config: tuple[str, float] | None = None  # what the library's client was made with
_active: set[Path] = set()  # the files being downloaded (claim)
_active_lock = threading.Lock()
_running = threading.local()  # the Abortable of the download on this thread


def configured_hub(proxy: str, timeout: float) -> Any:
    """huggingface_hub, configured: set the environment before its first import (its
    constants are read then), and route it through the app's HTTP client."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    import httpx2
    import huggingface_hub
    from huggingface_hub import constants

    from app.llm.httpclient import make_client

    hooks: list[Any] = [_trace_this_download]
    with contextlib.suppress(ImportError):  # the offline-mode check and request ids
        from huggingface_hub.utils._http import hf_request_event_hook

        hooks.append(hf_request_event_hook)
    constants.DOWNLOAD_CHUNK_SIZE = BLOCK_SIZE  # 10 MB by default: a slow cancel
    # http_get's own per-read timeout (10 s by default; it retries five times, resuming):
    constants.HF_HUB_DOWNLOAD_TIMEOUT = max(1, round(timeout))
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


def _trace_this_download(request: Any) -> None:
    """An httpx2 request hook, run on the downloading thread: a download's requests are
    Abortable, so that a cancel reaches even a read blocked on a stalled connection."""
    abortable = getattr(_running, "abortable", None)
    if abortable is not None:
        request.extensions["trace"] = abortable.trace


@contextlib.contextmanager
def cancel_reaches_blocked_reads(cancel: CancelToken | None) -> Iterator[None]:
    """A stalled connection sends nothing, so neither the progress hook nor a check
    between repositories runs, and huggingface_hub would wait out its read timeout (five
    times over, in http_get). This thread's requests are aborted on a cancel instead: the
    blocked read wakes and fails as Cancelled within about 0.1 s."""
    with aborted_on_cancel(cancel) as abortable:
        _running.abortable = abortable
        try:
            yield
        finally:
            _running.abortable = None


@contextlib.contextmanager
def claim(target: Path) -> Iterator[None]:
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
