"""The remote backend: an OpenAI-compatible server shared by a team (llama-server, vLLM,
or llama-cpp-python's own server).

Only the URL the user configured is ever contacted (no proxies, no redirects). Each
request is one HTTP/1.1 exchange on its own socket, written here on the standard library
rather than http.client: a socket read there cannot be resumed after a timeout, and a
short timeout is the only portable way to notice a cancel while the server is silent
(prompt processing of a long chunk can take minutes). Here the socket is read with a
0.5 s timeout in a loop, so a cancel closes the connection, and with it the server's
generation, within about a second.

Differences from the local backend, all recorded in ``Completion.notes``:
* the thinking cap cannot force ``</think>`` on a server (llama-server rejects an
  assistant prefill while thinking is enabled), so a capped call stops with
  ``stop_reason='thinking_cap'`` and an empty ``content``;
* ``prompt_ms``/``generation_ms``/``cached_tokens`` come from llama-server's ``timings``;
  other servers report 0.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.errors import BackendError, Cancelled
from app.llm.backend import (
    THINK_END,
    CancelToken,
    Completion,
    ModelIdentity,
    Piece,
    Sampling,
    split_thinking,
)
from app.llm.loopguard import RepetitionGuard

log = logging.getLogger("app.llm")

KEYRING_SERVICE = "QwenLongReader"
POLL_S = 0.5  # socket read timeout: how often a silent connection checks for a cancel
CHARS_PER_TOKEN = 3.5  # the estimate used when the server has no tokenize endpoint
DEFAULT_N_CTX = 4096
URL_HINT = "Check the URL; it should be the server's base URL, e.g. http://host:8080"


class _ConnectionLost(Exception):
    """The server could not be reached or dropped the connection: worth a retry as long
    as no output was received yet."""


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    host_header: str
    prefix: str  # a path the server is mounted under (behind a reverse proxy), or ""


def normalize_url(base_url: str) -> str:
    """The server's base URL without a trailing ``/`` or ``/v1`` (people often paste the
    OpenAI base ``http://host:8000/v1``; llama-server's /props and /tokenize live at the
    root)."""
    url = base_url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def _parse_url(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendError(
            f"{url or '(empty)'} is not a server URL.",
            hint="Enter the server's base URL in Settings, e.g. http://host:8080",
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise BackendError(f"{url} has an invalid port: {error}", hint=URL_HINT) from None
    netloc = parts.netloc.rpartition("@")[2]
    return _Target(parts.scheme, parts.hostname, port, netloc, parts.path.rstrip("/"))


class _Exchange:
    """One request and its response on a socket of its own (``Connection: close``)."""

    def __init__(self, target: _Target, cancel: CancelToken | None, idle_timeout_s: float) -> None:
        self.target = target
        self.cancel = cancel
        self.idle_timeout_s = idle_timeout_s
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.status = 0
        self.headers: dict[str, str] = {}

    def send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], connect_s: float
    ) -> None:
        t = self.target
        where = f"{t.host}:{t.port}"
        try:
            sock = socket.create_connection((t.host, t.port), timeout=connect_s)
        except socket.gaierror as error:
            raise _ConnectionLost(f"the host {t.host} was not found ({error})") from None
        except ConnectionRefusedError:
            raise _ConnectionLost(f"nothing answers at {where} (connection refused)") from None
        except TimeoutError:
            raise _ConnectionLost(f"{where} did not answer within {connect_s:g} s") from None
        except OSError as error:
            raise _ConnectionLost(f"{where} cannot be reached ({error})") from None
        try:
            if t.scheme == "https":
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=t.host)
            lines = [f"{method} {t.prefix}{path} HTTP/1.1", f"Host: {t.host_header}"]
            lines += [f"{k}: {v}" for k, v in headers.items()]
            lines += [f"Content-Length: {len(body or b'')}", "Connection: close", "", ""]
            # sendall's timeout bounds the whole send; a big prompt on a slow link needs long
            sock.settimeout(self.idle_timeout_s)
            sock.sendall("\r\n".join(lines).encode("latin-1") + (body or b""))
            sock.settimeout(POLL_S)
        except ssl.SSLError as error:
            sock.close()
            raise BackendError(
                f"The secure connection to {t.host} failed: {error.reason or error}",
                hint="Check whether the server speaks http or https, and its certificate.",
            ) from None
        except OSError as error:
            sock.close()
            raise _ConnectionLost(f"sending the request failed ({error})") from None
        self.sock = sock

    def _fill(self) -> bool:
        """Read more bytes into the buffer; False when the server closed the connection."""
        assert self.sock is not None
        deadline = time.monotonic() + self.idle_timeout_s
        while True:
            if self.cancel is not None and self.cancel.cancelled:
                raise Cancelled()
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise BackendError(
                        f"The server sent nothing for {self.idle_timeout_s:g} s.",
                        hint="It may be overloaded or still reading a very long prompt; try "
                        "again later or use smaller chunks.",
                    ) from None
                continue
            except OSError as error:
                raise _ConnectionLost(f"the connection broke ({error})") from None
            if not data:
                return False
            self.buf += data
            return True

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\n")) < 0:
            if not self._fill():
                raise _ConnectionLost("the server closed the connection")
        line = bytes(self.buf[: end + 1])
        del self.buf[: end + 1]
        return line.rstrip(b"\r\n")

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise _ConnectionLost("the server closed the connection")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_head(self) -> None:
        status = self._line().decode("latin-1")
        try:
            self.status = int(status.split()[1])
        except (IndexError, ValueError):
            raise BackendError(
                f"The server did not answer in HTTP: {status[:80]!r}", hint=URL_HINT
            ) from None
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def body(self) -> Iterator[bytes]:
        """The response body as it arrives (chunked, sized, or up to the close)."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            while True:
                size = int(self._line().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self._line():  # trailers
                        pass
                    return
                yield self._exact(size)
                self._line()
        elif "content-length" in self.headers:
            yield self._exact(int(self.headers["content-length"]))
        else:
            while self.buf or self._fill():
                data = bytes(self.buf)
                self.buf.clear()
                yield data

    def read_all(self) -> bytes:
        return b"".join(self.body())

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()  # for a stream this is what tells the server to stop
            self.sock = None


def _error_text(body: bytes) -> str:
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


def _http_error(status: int, path: str, body: bytes) -> BackendError:
    message = _error_text(body)
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


class RemoteBackend:
    """A model served over HTTP. Thread-safe: every call opens its own connection, so
    several questions can stream at once (see ``supports_parallel``)."""

    def __init__(
        self,
        base_url: str,
        model: str = "",
        *,
        api_key: str | None = None,
        n_ctx: int = 0,
        timeout_s: float = 600,
        connect_timeout_s: float = 10,
        retries: int = 2,
    ) -> None:
        self.base_url = normalize_url(base_url)
        self._target = _parse_url(self.base_url)
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.retries = retries
        # Learnt on the first answer with a bare `</think>`: the chat template opens the
        # thinking itself, so later streams can flag pieces before `</think>` as thinking.
        self._opens_thinking = False
        details: dict[str, str] = {}
        # /v1/models first: it checks the URL and the key before anything else.
        models = self._json("GET", "/v1/models") or {}
        served = [m for m in models.get("data") or [] if isinstance(m, dict)]
        self.model = model or (str(served[0].get("id", "")) if served else "")
        props = self._json("GET", "/props", missing_ok=True) or {}
        self._slots = int(props.get("total_slots") or 1)
        if props:
            details["server"] = "llama-server"
        elif served and served[0].get("owned_by") == "vllm":
            details["server"] = "vLLM"
        self.n_ctx = n_ctx or self._server_n_ctx(props, served)
        if not self.n_ctx:
            self.n_ctx = DEFAULT_N_CTX
            details["n_ctx"] = (
                f"assumed {DEFAULT_N_CTX}: the server does not report its context size; "
                "set it in Settings"
            )
            log.warning("server %s does not report n_ctx; assuming %d", self.base_url, self.n_ctx)
        self._tokenizer = self._probe_tokenizer()
        details["tokenizer"] = self._tokenizer[0] if self._tokenizer else "estimate"
        self.identity = ModelIdentity(
            backend="remote", name=self.model, path=self.base_url, n_ctx=self.n_ctx, details=details
        )

    # -- HTTP -------------------------------------------------------------------------
    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
        }
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _retrying(self, attempt: Callable[[], Any], cancel: CancelToken | None) -> Any:
        """Run ``attempt``, retrying with backoff while the server cannot be reached."""
        for n in range(self.retries + 1):
            try:
                return attempt()
            except _ConnectionLost as error:
                if n == self.retries:
                    raise BackendError(
                        f"Could not reach the server at {self.base_url}: {error}.",
                        hint="Check that the server is running and that the URL and port "
                        "in Settings are right.",
                    ) from None
                log.info("server %s: %s; retrying", self.base_url, error)
                deadline = time.monotonic() + 0.5 * 2**n
                while time.monotonic() < deadline:
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    time.sleep(0.05)
        raise AssertionError("unreachable")

    def _open(
        self, method: str, path: str, payload: Any, cancel: CancelToken | None, stream: bool
    ) -> _Exchange:
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        exchange = _Exchange(self._target, cancel, self.timeout_s)
        try:
            exchange.send(method, path, body, self._headers(stream), self.connect_timeout_s)
            exchange.read_head()
        except BaseException:
            exchange.close()
            raise
        return exchange

    def _json(
        self, method: str, path: str, payload: Any = None, *, missing_ok: bool = False
    ) -> Any:
        """A JSON request; None for a 4xx when ``missing_ok`` (probing what a server has)."""

        def attempt() -> tuple[int, bytes]:
            exchange = self._open(method, path, payload, None, stream=False)
            try:
                return exchange.status, exchange.read_all()
            finally:
                exchange.close()

        status, body = self._retrying(attempt, None)
        if missing_ok and 400 <= status < 500 and status not in (401, 403):
            return None
        if status != 200:
            raise _http_error(status, path, body)
        try:
            return json.loads(body)
        except ValueError:
            raise BackendError(
                f"The server answered {path} with something that is not JSON.",
                hint=f"Is {self.base_url} an OpenAI-compatible server (llama-server, vLLM)? "
                + URL_HINT,
            ) from None

    # -- what the server offers ---------------------------------------------------------
    @staticmethod
    def _server_n_ctx(props: dict[str, Any], served: list[dict[str, Any]]) -> int:
        settings = props.get("default_generation_settings") or {}
        for value in (
            settings.get("n_ctx"),  # llama-server: per slot, which is what one call gets
            props.get("n_ctx"),
            served[0].get("max_model_len") if served else None,  # vLLM
        ):
            if isinstance(value, int) and value > 0:
                return value
        return 0

    def _tokenize_requests(self) -> list[tuple[str, str, Callable[[str], dict[str, Any]]]]:
        return [
            ("llama-server /tokenize", "/tokenize", lambda t: {"content": t}),
            (
                "vLLM /tokenize",
                "/tokenize",
                lambda t: {"model": self.model, "prompt": t, "add_special_tokens": False},
            ),
            ("llama-cpp-python /extras/tokenize", "/extras/tokenize", lambda t: {"input": t}),
        ]

    def _probe_tokenizer(self) -> tuple[str, str, Callable[[str], dict[str, Any]], int] | None:
        """The first tokenize endpoint that counts a sample, and the tokens it adds to any
        text (llama-cpp-python's adds BOS for models that use one)."""
        for name, path, body in self._tokenize_requests():
            # A llama-server asked in vLLM's format answers 200 with no tokens: only a
            # non-empty count for a non-empty sample proves the format is understood.
            sample = self._count_with(path, body("Hello world, how are you?"))
            if sample:
                overhead = self._count_with(path, body("")) or 0
                log.info("server %s tokenizes with %s", self.base_url, name)
                return name, path, body, overhead
        log.warning("server %s has no tokenize endpoint: estimating tokens", self.base_url)
        return None

    def _count_with(self, path: str, payload: dict[str, Any]) -> int | None:
        data = self._json("POST", path, payload, missing_ok=True)
        if not isinstance(data, dict):
            return None
        if isinstance(data.get("count"), int):
            return int(data["count"])
        tokens = data.get("tokens")
        return len(tokens) if isinstance(tokens, list) else None

    def supports_parallel(self) -> int:
        """How many requests the server runs at once (llama-server's slots), else 1."""
        return self._slots

    # -- protocol ---------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        if self._tokenizer is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        _, path, body, overhead = self._tokenizer
        count = self._count_with(path, body(text))
        if count is None:
            raise BackendError(f"The server's {path} stopped answering.", hint=URL_HINT)
        return max(0, count - overhead)

    def _chat_body(self, messages: list[dict[str, str]], sampling: Sampling) -> dict[str, Any]:
        # Every value explicit: servers' defaults differ and are wrong for Qwen3 thinking.
        return {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "min_p": sampling.min_p,
            "presence_penalty": sampling.presence_penalty,
            "frequency_penalty": 0.0,
            "repeat_penalty": sampling.repeat_penalty,  # llama.cpp's name
            "repetition_penalty": sampling.repeat_penalty,  # vLLM's name
            "seed": sampling.seed,
        }

    def _events(self, exchange: _Exchange) -> Iterator[dict[str, Any]]:
        """The JSON events of a server-sent-event stream, up to ``[DONE]``."""
        pending = b""
        for data in exchange.body():
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw_line in lines:
                field, _, value = raw_line.rstrip(b"\r").decode("utf-8", "replace").partition(":")
                value = value.strip()
                if field not in ("data", "error"):
                    continue  # blank separators, comments (": ping"), event names
                if value == "[DONE]":
                    return
                try:
                    event = json.loads(value)
                except ValueError:
                    event = None
                if not isinstance(event, dict):
                    raise BackendError(
                        f"The server sent a malformed stream: {value[:80]!r}",
                        hint=f"Is {self.base_url} an OpenAI-compatible server "
                        "(llama-server, vLLM)?",
                    )
                if field == "error" or event.get("error"):  # "error:" is llama-server's
                    raise BackendError(
                        f"The server stopped with an error: {_error_text(value.encode())}",
                        hint="Its log says more; try again, or use smaller chunks.",
                    )
                yield event
        raise _ConnectionLost("the server closed the connection before the end of the answer")

    def _start(
        self, messages: list[dict[str, str]], sampling: Sampling, cancel: CancelToken
    ) -> tuple[_Exchange, Iterator[dict[str, Any]], dict[str, Any] | None]:
        """Send the request and wait for the first event, retrying while nothing came."""

        def attempt() -> tuple[_Exchange, Iterator[dict[str, Any]], dict[str, Any] | None]:
            path = "/v1/chat/completions"
            exchange = self._open("POST", path, self._chat_body(messages, sampling), cancel, True)
            try:
                if exchange.status != 200:
                    raise _http_error(exchange.status, path, exchange.read_all())
                events = self._events(exchange)
                return exchange, events, next(events, None)
            except BaseException:
                exchange.close()
                raise

        result: tuple[_Exchange, Iterator[dict[str, Any]], dict[str, Any] | None]
        result = self._retrying(attempt, cancel)
        return result

    def stream(
        self, messages: list[dict[str, str]], sampling: Sampling, cancel: CancelToken
    ) -> Iterator[Piece | Completion]:
        started = time.perf_counter()
        cancel.raise_if_cancelled()
        exchange, events, first = self._start(messages, sampling, cancel)
        try:
            yield from self._read(messages, sampling, cancel, exchange, events, first, started)
        except _ConnectionLost as error:
            raise BackendError(
                f"The connection to the server broke in the middle of an answer: {error}.",
                hint="Check that the server is still running, then resume: finished steps "
                "are saved, so only this one is repeated.",
            ) from None
        finally:
            exchange.close()

    def _read(
        self,
        messages: list[dict[str, str]],
        sampling: Sampling,
        cancel: CancelToken,
        exchange: _Exchange,
        events: Iterator[dict[str, Any]],
        first: dict[str, Any] | None,
        started: float,
    ) -> Iterator[Piece | Completion]:
        guard = RepetitionGuard()
        reasoning: list[str] = []  # thinking sent apart by a reasoning parser
        content: list[str] = []  # everything else, possibly with an inline `</think>`
        notes: list[str] = []
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        finish = ""
        stop_reason = ""
        deltas = thinking_tokens = 0
        inline_thinking = self._opens_thinking
        for event in itertools.chain([first] if first is not None else [], events):
            cancel.raise_if_cancelled()
            usage = event.get("usage") or usage
            timings = event.get("timings") or timings
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                finish = choice.get("finish_reason") or finish
                think = delta.get("reasoning_content") or delta.get("reasoning")
                text = delta.get("content")
                if think:
                    reasoning.append(think)
                    piece = Piece(think, True)
                elif text:
                    if not content and text.lstrip().startswith("<think>"):
                        inline_thinking = True
                    content.append(text)
                    tail = "".join(content[-3:])  # the tag may straddle two deltas
                    if inline_thinking and THINK_END in tail:
                        inline_thinking = False
                    piece = Piece(text, inline_thinking and not reasoning)
                else:
                    continue
                deltas += 1
                yield piece
                if piece.thinking:
                    thinking_tokens += 1
                    if thinking_tokens >= sampling.thinking_cap > 0:
                        stop_reason = "thinking_cap"
                        notes.append(
                            f"thinking capped at {sampling.thinking_cap:,} tokens: a server "
                            "cannot be made to close its thinking, so this output has no answer"
                        )
                if not stop_reason and guard.feed(piece.text):
                    stop_reason = "loop"
                    notes.append("stopped: the output started repeating itself (loop guard)")
                if stop_reason:
                    break
            if stop_reason:
                break
        # Closing now, not when the caller drops this generator: it stops the server's
        # generation after a loop or capped thinking.
        exchange.close()
        stop_reason = stop_reason or ("length" if finish == "length" else "stop")
        if stop_reason == "length":
            notes.append(f"output reached its limit of {sampling.max_tokens:,} tokens")
        thought_raw, content_raw = "".join(reasoning), "".join(content)
        if stop_reason == "thinking_cap":
            raw = (thought_raw or content_raw) + THINK_END
        else:
            raw = f"{thought_raw}{THINK_END}{content_raw}" if thought_raw else content_raw
        if not thought_raw and THINK_END in content_raw and "<think>" not in content_raw:
            self._opens_thinking = True
        thinking, answer = split_thinking(raw)
        prompt_tokens = usage.get("prompt_tokens") or (
            (timings.get("prompt_n") or 0) + (timings.get("cache_n") or 0)
        )
        if not prompt_tokens:
            notes.append("prompt tokens counted without the chat template (server sent none)")
            prompt_tokens = sum(self.count_tokens(m.get("content") or "") for m in messages)
        details = usage.get("prompt_tokens_details") or {}
        # Without usage, count deltas: about one token each, but a server may merge the
        # tokens of one multi-byte character, so a length stop says more.
        generated = sampling.max_tokens if finish == "length" else deltas
        yield Completion(
            raw=raw,
            thinking=thinking,
            content=answer,
            prompt_tokens=int(prompt_tokens),
            completion_tokens=int(
                usage.get("completion_tokens") or timings.get("predicted_n") or generated
            ),
            cached_tokens=int(timings.get("cache_n") or details.get("cached_tokens") or 0),
            prompt_ms=float(timings.get("prompt_ms") or 0.0),
            generation_ms=float(timings.get("predicted_ms") or 0.0),
            wall_ms=(time.perf_counter() - started) * 1000,
            stop_reason=stop_reason,
            notes=tuple(notes),
        )

    def close(self) -> None:
        """Nothing to release: no connection outlives its request."""


# -- API keys: kept in the system keyring, never in settings files ----------------------
def api_key_from_keyring(url: str) -> str | None:
    """The API key stored for this server, or None (also when no keyring is available)."""
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(KEYRING_SERVICE, normalize_url(url)) or None
    except (KeyringError, RuntimeError) as error:
        log.warning("could not read the API key from the keyring: %s", error)
        return None


def store_api_key(url: str, key: str) -> None:
    """Save the key for this server in the system keyring; an empty key deletes it."""
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    account = normalize_url(url)
    try:
        if key:
            keyring.set_password(KEYRING_SERVICE, account, key)
        else:
            with contextlib.suppress(PasswordDeleteError):  # nothing stored: fine
                keyring.delete_password(KEYRING_SERVICE, account)
    except (KeyringError, RuntimeError) as error:
        raise BackendError(
            f"The API key could not be saved in the system keyring: {error}",
            hint="Install or unlock a keyring (GNOME Keyring, KWallet, macOS Keychain, "
            "Windows Credential Manager).",
        ) from None
