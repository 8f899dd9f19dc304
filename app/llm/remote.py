"""The remote backend: an OpenAI-compatible server shared by a team (llama-server, vLLM,
or llama-cpp-python's own server).

Built on httpx2 directly rather than the ``openai`` client. What this backend needs from
a server is mostly outside the OpenAI schema: llama-server's ``timings``, the
``reasoning_content``/``reasoning`` deltas, its ``error:`` stream lines, ``/props``
(n_ctx, slots) and ``/tokenize``. With ``openai`` these come back as untyped extras or
need raw calls around it anyway, and the client adds what must be avoided here: its own
retries of POSTs after a timeout (a long prompt read again), and settings taken from
OPENAI_* environment variables. httpx2 gives the plain SSE lines, one client for every
endpoint, the TLS and proxy policy of app.llm.httpclient, and a request ``trace`` hook
that hands over each connection's socket, which is what makes cancel prompt.

Cancel, time limits and retries: app.llm.remote_stream.

Differences from the local backend, all recorded in ``Completion.stats.notes``:
* the thinking cap cannot force ``</think>`` on a server (llama-server rejects an
  assistant prefill while thinking is enabled), so a capped call stops with
  ``stop_reason='thinking_cap'`` and an empty ``content``;
* ``prompt_ms``/``generation_ms``/``cached_tokens`` come from llama-server's ``timings``;
  other servers report 0.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import httpx2

from app.errors import BackendError
from app.llm.abortable import Abortable, aborted_on_cancel
from app.llm.backend import (
    THINK_END,
    CancelToken,
    Completion,
    ModelIdentity,
    Piece,
    Sampling,
    split_thinking,
)
from app.llm.httpclient import CONNECT_S, make_client, safe_url, url_credentials
from app.llm.loopguard import RepetitionGuard
from app.llm.remote_errors import (
    PROXY_HINT,
    URL_HINT,
    check_url,
    http_error,
    network_error,
    never_answered,
    normalize_url,
)
from app.llm.remote_keys import api_key_for, url_password_for
from app.llm.remote_stream import Broken, Reader
from app.records import CallStats

if TYPE_CHECKING:
    from app.settings import Settings

log = logging.getLogger("app.llm")


def _all(traces: Sequence[Callable[[str, dict[str, Any]], None]]) -> Callable[..., None]:
    """One httpcore ``trace`` that calls each of ``traces``."""

    def trace(name: str, info: dict[str, Any]) -> None:
        for each in traces:
            each(name, info)

    return trace


class _Expired(Exception):
    """Raised inside a JSON request whose whole answer took longer than the silence limit."""


FIRST_TOKEN_S = 120.0  # Settings.remote_timeout_s
SILENCE_S = 60.0  # Settings.remote_silence_s
CHARS_PER_TOKEN = 3.5  # the estimate used when the server has no tokenize endpoint
DEFAULT_N_CTX = 4096


class RemoteBackend:
    """A model served over HTTP. Thread-safe: calls share a pool of keep-alive connections
    and every stream has its own, so several questions can stream at once (see
    ``supports_parallel``)."""

    def __init__(
        self,
        base_url: str,
        model: str = "",
        *,
        api_key: str | None = None,
        n_ctx: int = 0,
        first_token_s: float = FIRST_TOKEN_S,
        silence_s: float = SILENCE_S,
        connect_timeout_s: float = CONNECT_S,
        proxy: str = "",
        retries: int = 2,
        cancel: CancelToken | None = None,
    ) -> None:
        """Connects and asks the server what it serves; ``cancel`` stops that at once,
        even while a server does not answer (app.errors.Cancelled)."""
        url = normalize_url(base_url)
        check_url(url)
        # A user:password@ in the URL is sent as basic auth, and kept out of the URL the
        # run records, the log and the messages show.
        credentials = url_credentials(url)
        if credentials is not None and not credentials[1]:  # a user, its password saved
            credentials = (credentials[0], url_password_for(url) or "")
        self.base_url = safe_url(url)
        self.api_key = api_key
        self.first_token_s = first_token_s
        self.silence_s = silence_s
        self.connect_timeout_s = connect_timeout_s
        self.proxy = proxy
        self.retries = retries
        # The client's read timeout is a backstop for the worker threads only: the stream's
        # own deadlines (first token, silence) are enforced by the caller's loop.
        timeout = httpx2.Timeout(max(first_token_s, silence_s) + 5, connect=connect_timeout_s)
        try:
            self._client = make_client(proxy=proxy, timeout=timeout, auth=credentials)
        except ValueError as error:
            raise BackendError(f"Invalid proxy {proxy!r}: {error}.", hint=PROXY_HINT) from None
        # Learnt on the first answer with a bare `</think>`: the chat template opens the
        # thinking itself, so later streams can flag pieces before `</think>` as thinking.
        self._opens_thinking = False
        # While connecting: what a cancel aborts, and what the retries' waits look at.
        self._probing: Abortable | None = None
        self._connect_cancel = cancel
        try:
            with aborted_on_cancel(cancel) as self._probing:
                self.identity = self._connect(model, n_ctx)
        except BaseException:
            self._client.close()
            raise
        finally:
            self._probing = self._connect_cancel = None

    def _connect(self, model: str, n_ctx: int) -> ModelIdentity:
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
        return ModelIdentity(
            backend="remote", name=self.model, path=self.base_url, n_ctx=self.n_ctx, details=details
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, api_key: str | None = None, cancel: CancelToken | None = None
    ) -> RemoteBackend:
        """The server, waits and proxy the user configured; the API key unless given from
        app.llm.remote_keys (QWENLONG_READER_API_KEY, else the keyring)."""
        return cls(
            settings.remote_url,
            settings.remote_model,
            api_key=api_key if api_key is not None else api_key_for(settings.remote_url),
            n_ctx=settings.n_ctx,
            first_token_s=settings.remote_timeout_s,
            silence_s=settings.remote_silence_s,
            proxy=settings.proxy_url,
            cancel=cancel,
        )

    # -- HTTP -------------------------------------------------------------------------
    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _backoff(self, attempt: int, error: BaseException, cancel: CancelToken | None) -> None:
        """Wait before another try, or raise when the tries are used up."""
        if attempt >= self.retries:
            raise network_error(error, self.base_url, proxy=self.proxy) from None
        log.info("server %s: %s; retrying", self.base_url, error or type(error).__name__)
        deadline = time.monotonic() + 0.5 * 2**attempt
        while time.monotonic() < deadline:
            if cancel is not None:
                cancel.raise_if_cancelled()
            time.sleep(0.05)

    def _too_slow(self, path: str) -> BackendError:
        return BackendError(
            f"The server at {self.base_url} did not answer {path} within {self.silence_s:g} s.",
            hint="It may be overloaded or stuck; try again later, or raise the silence limit "
            "in Settings.",
        )

    def _json(
        self, method: str, path: str, payload: Any = None, *, missing_ok: bool = False
    ) -> Any:
        """A JSON request; None for a 4xx when ``missing_ok`` (probing what a server has)."""
        url = self.base_url + path
        timeout = httpx2.Timeout(self.silence_s, connect=self.connect_timeout_s)
        for attempt in range(self.retries + 1):
            # The read timeout bounds each read; this bounds the whole answer, which a
            # server trickling its headers a byte at a time would otherwise never end.
            expiry = Abortable(_Expired)
            timer = threading.Timer(self.silence_s, expiry.abort)
            timer.daemon = True
            traces = [expiry.trace, *([self._probing.trace] if self._probing else [])]
            timer.start()
            try:
                response = self._client.request(
                    method,
                    url,
                    json=payload,
                    headers=self._headers(False),
                    timeout=timeout,
                    extensions={"trace": _all(traces)},
                )
                break
            except (httpx2.TimeoutException, _Expired) as error:
                if isinstance(error, httpx2.ConnectTimeout):
                    self._backoff(attempt, error, self._connect_cancel)
                    continue
                raise self._too_slow(path) from None
            except httpx2.TransportError as error:
                if expiry.aborted.is_set():  # the socket shut by the expiry, mid-read
                    raise self._too_slow(path) from None
                if not never_answered(error):
                    raise network_error(error, self.base_url, proxy=self.proxy) from None
                self._backoff(attempt, error, self._connect_cancel)
            finally:
                timer.cancel()
        status = response.status_code
        if missing_ok and 400 <= status < 500 and status not in (401, 403):
            return None
        if status != 200:
            raise http_error(status, path, response.content, response.headers.get("location", ""))
        try:
            return response.json()
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

    def stream(
        self, messages: list[dict[str, str]], sampling: Sampling, cancel: CancelToken
    ) -> Iterator[Piece | Completion]:
        started = time.perf_counter()
        cancel.raise_if_cancelled()
        reader = Reader(self, cancel)
        try:
            body = self._chat_body(messages, sampling)
            reader.start(
                lambda: self._client.build_request(
                    "POST",
                    self.base_url + "/v1/chat/completions",
                    json=body,
                    headers=self._headers(True),
                )
            )
            yield from self._read(messages, sampling, reader, started)
        except Broken as error:
            raise BackendError(
                f"The connection to the server broke in the middle of an answer: {error}.",
                hint="Check that the server is still running, then resume: finished steps "
                "are saved, so only this one is repeated.",
            ) from None
        finally:
            reader.close()  # also when the caller drops the generator: the server stops

    def _read(
        self,
        messages: list[dict[str, str]],
        sampling: Sampling,
        reader: Reader,
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
        for event in reader.events():
            usage = event.get("usage") or usage
            timings = event.get("timings") or timings
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                finish = choice.get("finish_reason") or finish
                think = str(delta.get("reasoning_content") or delta.get("reasoning") or "")
                text = str(delta.get("content") or "")
                if not think and not text:
                    continue
                reader.progressed()
                if 0 < sampling.max_tokens <= deltas:
                    # A delta is at most one token: this server ignores max_tokens.
                    stop_reason = "length"
                    notes.append(
                        f"the server went on past max_tokens ({sampling.max_tokens:,}); "
                        "stopped here"
                    )
                    break
                if think:
                    reasoning.append(think)
                    piece = Piece(think, True)
                else:
                    if not content and text.lstrip().startswith("<think>"):
                        inline_thinking = True
                    content.append(text)
                    tail = "".join(content[-3:])  # the tag may straddle two deltas
                    if inline_thinking and THINK_END in tail:
                        inline_thinking = False
                    piece = Piece(text, inline_thinking and not reasoning)
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
        # generation after a loop, capped thinking or an ignored max_tokens.
        reader.close()
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
        generated = sampling.max_tokens if stop_reason == "length" else deltas
        completion_tokens = usage.get("completion_tokens") or timings.get("predicted_n")
        stats = CallStats(
            raw_output=raw,
            thinking=thinking,
            prompt_tokens=int(prompt_tokens),
            completion_tokens=int(completion_tokens or generated),
            cached_tokens=int(timings.get("cache_n") or details.get("cached_tokens") or 0),
            prompt_ms=float(timings.get("prompt_ms") or 0.0),
            generation_ms=float(timings.get("predicted_ms") or 0.0),
            wall_ms=(time.perf_counter() - started) * 1000,
            stop_reason=stop_reason,
            notes=tuple(notes),
        )
        yield Completion(answer, stats)

    def close(self) -> None:
        self._client.close()
