"""One streaming request to an OpenAI-compatible server, read so that it can always be
cancelled and never waits longer than the user allows.

Cancel and time limits. A stream is read on a worker thread that puts lines on a queue;
the caller waits on the queue in 0.1 s steps, so a cancel raises ``Cancelled`` at once at
every point (connecting, waiting for headers, mid-stream), and the worker's socket is
shut down so the server sees the client go and stops generating. The same loop bounds
the waits: ``first_token_s`` for the first generated text (prompt processing of a 30B
model can take minutes) and ``silence_s`` between pieces afterwards. Only data counts:
keep-alive comments (``: ping``) and events without text do not keep a stream alive.
``max_tokens`` is enforced here too, for servers that ignore it.

Retries only where nothing can have been generated: a connection that could not be made,
or one dropped before any response byte (a stale keep-alive connection); never a timeout
and never mid-answer.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx2

from app.errors import BackendError, Cancelled
from app.llm.abortable import Abortable
from app.llm.backend import CancelToken
from app.llm.remote_errors import error_text, http_error, network_error, never_answered

if TYPE_CHECKING:
    from app.llm.remote import RemoteBackend

POLL_S = 0.1  # how often a waiting stream looks at the cancel flag and its deadline


class Broken(Exception):
    """The stream broke after the server answered: never retried."""


class _Aborted(Exception):
    """Raised inside the worker's request once the caller gave up on it."""


# -- one streaming request on a worker thread ---------------------------------------------
class StreamCall:
    """Sends one request on a daemon thread and queues what comes back:
    ``("head", response, body)`` (``body`` read only for an error status), then
    ``("line", text)`` per line, then ``("end", None)``; or ``("error", exception)``.

    ``abort`` may be called from any thread: it shuts the connection's socket down
    (app.llm.httpclient.Abortable), which wakes the worker from a blocked read and tells
    the server the client is gone."""

    def __init__(self, client: httpx2.Client, request: httpx2.Request) -> None:
        self.queue: queue.SimpleQueue[tuple[str, Any, Any]] = queue.SimpleQueue()
        self._client = client
        self._request = request
        self._abortable = Abortable(_Aborted)
        request.extensions["trace"] = self._abortable.trace
        self._thread = threading.Thread(target=self._run, name="remote-stream", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            response = self._client.send(self._request, stream=True)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            self.queue.put(("error", error, None))
            return
        try:
            body = None
            if response.status_code != 200:
                body = response.read()[:65536]
            self.queue.put(("head", response, body))
            if body is None:
                for line in response.iter_lines():
                    if self._abortable.aborted.is_set():
                        return
                    self.queue.put(("line", line, None))
                self.queue.put(("end", None, None))
        except BaseException as error:  # noqa: BLE001
            self.queue.put(("error", error, None))
        finally:
            response.close()

    def abort(self) -> None:
        self._abortable.abort()


class Reader:
    """The caller's side of a stream: retries before the server answered, then yields the
    JSON events up to ``[DONE]``, raising Cancelled, or BackendError when a deadline
    passes, from a loop that never blocks longer than POLL_S."""

    def __init__(self, backend: RemoteBackend, cancel: CancelToken) -> None:
        self.backend = backend
        self.cancel = cancel
        self.call: StreamCall | None = None
        self.answered = False  # response headers arrived
        self.got_text = False  # the first piece of output arrived
        self.comments = 0  # keep-alive comments since the last piece
        self.deadline = time.monotonic() + backend.first_token_s

    def start(self, request: Callable[[], httpx2.Request]) -> None:
        backend = self.backend
        for attempt in range(backend.retries + 1):
            self.call = StreamCall(backend._client, request())
            kind, value, body = self._next()
            if kind == "head":
                response: httpx2.Response = value
                self.answered = True
                if body is not None:
                    location = response.headers.get("location", "")
                    raise http_error(response.status_code, "/v1/chat/completions", body, location)
                return
            assert kind == "error"
            if not never_answered(value):
                raise network_error(value, backend.base_url, proxy=backend.proxy)
            self.call.abort()
            backend._backoff(attempt, value, self.cancel)

    def progressed(self) -> None:
        """Output arrived: the silence limit counts from now."""
        self.got_text = True
        self.comments = 0
        self.deadline = time.monotonic() + self.backend.silence_s

    def _next(self) -> tuple[str, Any, Any]:
        assert self.call is not None
        while True:
            if self.cancel.cancelled:
                self.close()
                raise Cancelled()
            late = time.monotonic() > self.deadline
            try:
                # Past the deadline, what is queued still counts: the caller may have been
                # busy between pieces.
                return self.call.queue.get_nowait() if late else self.call.queue.get(timeout=POLL_S)
            except queue.Empty:
                if late:
                    self.close()
                    raise self._timed_out() from None

    def _timed_out(self) -> BackendError:
        b = self.backend
        if not self.got_text:
            what = "has not answered" if not self.answered else "has sent no output"
            return BackendError(
                f"The server at {b.base_url} {what} within {b.first_token_s:g} s.",
                hint="It may be busy with other requests or still reading a very long "
                "prompt: raise 'Wait for the first token' in Settings, use smaller chunks, "
                "or check the server.",
            )
        pings = f" (only {self.comments} keep-alive comments)" if self.comments else ""
        return BackendError(
            f"The server at {b.base_url} stopped sending output: nothing for "
            f"{b.silence_s:g} s{pings}.",
            hint="It may be overloaded or stuck. Try again (finished steps are saved), or "
            "raise the silence limit in Settings.",
        )

    def events(self) -> Iterator[dict[str, Any]]:
        """The JSON events of the server-sent-event stream, up to ``[DONE]``."""
        while True:
            kind, value, _ = self._next()
            if kind == "end":
                raise Broken("the server closed the connection before the end of the answer")
            if kind == "error":
                if isinstance(value, httpx2.ReadTimeout):
                    raise self._timed_out()
                raise Broken(str(value) or type(value).__name__)
            field, _, data = str(value).partition(":")
            data = data.strip()
            if field not in ("data", "error"):
                if not field and data:
                    self.comments += 1  # ": ping": proves nothing about the generation
                continue  # blank separators, event names, ids
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except ValueError:
                event = None
            if not isinstance(event, dict):
                raise BackendError(
                    f"The server sent a malformed stream: {data[:80]!r}",
                    hint=f"Is {self.backend.base_url} an OpenAI-compatible server "
                    "(llama-server, vLLM)?",
                )
            if field == "error" or event.get("error"):  # "error:" is llama-server's
                raise BackendError(
                    f"The server stopped with an error: {error_text(data.encode())}",
                    hint="Its log says more; try again, or use smaller chunks.",
                )
            if "usage" in event or any(c.get("finish_reason") for c in event.get("choices") or []):
                self.progressed()  # the end of an answer is output too
            yield event

    def close(self) -> None:
        if self.call is not None:
            self.call.abort()
