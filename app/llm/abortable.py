"""Requests that a cancel on another thread can abort, even while they wait on a silent
server: httpcore's ``trace`` extension hands over each connection's socket, and shutting
that socket down wakes a blocked read (and tells the server the client has gone, so it
stops generating). Used by the remote backend's streams and connection, and by model
downloads (huggingface_hub's http_get looks for a cancel only between blocks)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from app.errors import Cancelled
from app.llm.backend import CancelToken


class Abortable:
    """Requests another thread can abort, through httpcore's ``trace`` extension (set
    ``request.extensions["trace"] = abortable.trace``): it keeps each connection's socket,
    and ``abort()`` shuts them down, which wakes a read blocked on a silent server and tells
    the server the client is gone. From then on the requests' next step raises ``error()``
    (a failed read included), never while a response or its body iterator is being
    closed: that must finish."""

    def __init__(self, error: Callable[[], BaseException]) -> None:
        self._error = error
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.aborted = threading.Event()

    def trace(self, name: str, info: dict[str, Any]) -> None:
        if name.endswith((".connect_tcp.complete", ".start_tls.complete")):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._sockets.append(sock)
        if self.aborted.is_set():
            self._shutdown()
            closing = name.startswith("http11.response_closed") or isinstance(
                info.get("exception"),
                GeneratorExit,  # a body iterator being closed
            )
            if not closing:
                raise self._error()

    def abort(self) -> None:
        self.aborted.set()
        self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def aborted_on_cancel(cancel: CancelToken | None) -> Iterator[Abortable | None]:
    """An Abortable that a cancel aborts (a watcher looks every 0.1 s), for the block's
    requests to carry as their ``trace``; None without a cancel. A request blocked on a
    silent server then fails as Cancelled within about 0.1 s of the cancel; a connect
    that never completes (SYNs dropped) has no socket to shut yet and ends at its connect
    timeout, or the cancel's next check after it."""
    if cancel is None:
        yield None
        return
    abortable = Abortable(Cancelled)
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.1):
            if cancel.cancelled:
                abortable.abort()
                return

    threading.Thread(target=watch, name="cancel-watch", daemon=True).start()
    try:
        yield abortable
    finally:
        stop.set()
