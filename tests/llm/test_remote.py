"""The remote backend against a real llama-cpp-python server on loopback, and against a
stub that replays canned server-sent events for what the real one cannot produce
(reasoning deltas, llama-server's timings, malformed streams, a silent server)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import keyring
import pytest

from app.errors import BackendError, Cancelled
from app.llm.backend import CancelToken, Completion, Piece, Sampling, complete
from app.llm.remote import RemoteBackend
from app.llm.remote_keys import API_KEY_ENV, api_key_for, api_key_from_keyring, store_api_key
from tests.fakes import MemoryKeyring

from .conftest import free_port

HELLO = [{"role": "user", "content": "Say hello."}]
STORY = [{"role": "user", "content": "Write a long story about a dragon named Ember."}]


def run(backend: RemoteBackend, sampling: Sampling, messages=HELLO, cancel=None):
    items = list(backend.stream(messages, sampling, cancel or CancelToken()))
    pieces = [i for i in items if isinstance(i, Piece)]
    assert isinstance(items[-1], Completion) and len(pieces) == len(items) - 1
    return pieces, items[-1]


# -- the real server ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def remote(llama_server) -> RemoteBackend:
    return RemoteBackend(llama_server.url + "/v1/")  # the OpenAI-style base works too


def test_streams_pieces_then_a_completion(remote):
    pieces, done = run(remote, Sampling(max_tokens=8))
    assert pieces and done.stats.completion_tokens > 0 and done.stats.prompt_tokens > 0
    assert done.stats.raw_output == "".join(p.text for p in pieces) and done.content
    assert done.stats.stop_reason in ("stop", "length") and done.stats.wall_ms > 0


def test_identity_asks_the_server(remote, llama_server, demo_model):
    assert remote.identity.backend == "remote"
    assert remote.identity.name == str(demo_model)  # llama_cpp.server's model id
    assert remote.identity.path == llama_server.url
    assert remote.n_ctx == 4096 and "assumed" in remote.identity.details["n_ctx"]
    assert remote.identity.details["tokenizer"] == "llama-cpp-python /extras/tokenize"
    assert remote.supports_parallel() == 1
    assert RemoteBackend(llama_server.url, "mine", n_ctx=2048).identity.n_ctx == 2048


def test_count_tokens_matches_the_local_tokenizer(remote, demo_backend):
    for text in ("Hello world.", "The dragon Ember flew over the sea of Azov in 1854.\n" * 5):
        assert remote.count_tokens(text) == demo_backend.count_tokens(text)
    assert remote.count_tokens("") == 0


def test_cancel_mid_stream_is_prompt(remote):
    cancel = CancelToken()
    cancelled_at: list[float] = []

    def cancel_soon() -> None:
        cancelled_at.append(time.monotonic())
        cancel.cancel()

    timer = threading.Timer(0.3, cancel_soon)
    timer.start()
    with pytest.raises(Cancelled):
        for _ in remote.stream(STORY, Sampling(max_tokens=400), cancel):
            pass
    assert time.monotonic() - cancelled_at[0] < 1.0
    # The closed connection stopped that generation: the server answers the next one.
    _, done = run(remote, Sampling(max_tokens=4))
    assert done.stats.completion_tokens > 0


def test_a_dead_port_says_what_to_do():
    started = time.monotonic()
    with pytest.raises(BackendError) as error:
        RemoteBackend(f"http://127.0.0.1:{free_port()}", retries=1)
    assert "connection refused" in str(error.value) and "server is running" in str(error.value)
    assert time.monotonic() - started < 5


def test_a_wrong_base_path_gives_a_404_hint(llama_server):
    with pytest.raises(BackendError, match="base URL"):
        RemoteBackend(llama_server.url + "/nope")


def test_not_a_url():
    with pytest.raises(BackendError, match="not a server URL"):
        RemoteBackend("gpu-server:8080")


def test_server_killed_mid_stream(doomed_server):
    backend = RemoteBackend(doomed_server.url, retries=0)
    received = 0
    with pytest.raises(BackendError, match="middle of an answer"):
        for _ in backend.stream(STORY, Sampling(max_tokens=400), CancelToken()):
            received += 1
            if received == 3:
                doomed_server.process.kill()
    assert received >= 3


# -- a stub server for what the real one cannot show ----------------------------------------
@dataclass
class Reply:
    status: int = 200
    json: Any = None
    events: list[Any] = field(default_factory=list)  # data: dict or str; bytes: a raw line
    delay_s: float = 0.0
    drop: bool = False  # close the connection without a word
    done: bool = True  # end the stream with [DONE]
    write: Callable[[Any], None] | None = None  # writes the body itself (hostile servers)


Route = Callable[[dict[str, Any]], Reply]


class QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-reply (a cancel, a timeout under test) is expected
    here: no ConnectionResetError / BrokenPipeError traceback in the test output."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Stub:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.hangups = 0  # streams the client closed while the server was still writing
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.answer({})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.answer(json.loads(self.rfile.read(length) or b"{}"))

            def answer(self, body: dict[str, Any]) -> None:
                stub.requests.append((self.path, dict(self.headers), body))
                route = stub.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                reply = route(body)
                time.sleep(reply.delay_s)
                if reply.drop:
                    return
                self.send_response(reply.status)
                if reply.write is not None:
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    self.wfile.flush()
                    try:
                        reply.write(self.wfile)
                    except OSError:  # the client hung up: what a cancel should cause
                        stub.hangups += 1
                    return
                if reply.events:
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()  # HTTP/1.0: the body runs to the close
                    for event in reply.events:
                        if isinstance(event, bytes):  # a raw line, as is
                            self.wfile.write(event)
                            continue
                        data = event if isinstance(event, str) else json.dumps(event)
                        self.wfile.write(f"data: {data}\n\n".encode())
                    if reply.done:
                        self.wfile.write(b"data: [DONE]\n\n")
                    return
                payload = json.dumps(reply.json).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.routes["/v1/models"] = lambda _: Reply(json={"data": [{"id": "stub-model"}]})

    def chats(self) -> list[dict[str, Any]]:
        return [body for path, _, body in self.requests if path == "/v1/chat/completions"]


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = Stub()
    thread = threading.Thread(target=server.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def chunk(finish: str | None = None, **delta: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def answer(*events: Any, **kw: Any) -> Route:
    return lambda _: Reply(events=list(events), **kw)


def test_reasoning_deltas_usage_and_timings(stub):
    stub.routes["/props"] = lambda _: Reply(
        json={"total_slots": 4, "default_generation_settings": {"n_ctx": 8192}}
    )
    stub.routes["/tokenize"] = lambda body: Reply(
        json={"tokens": list(range(len(body.get("content", "").split())))}
    )
    stub.routes["/v1/chat/completions"] = answer(
        chunk(role="assistant"),
        chunk(reasoning_content="The user wants"),
        chunk(reasoning_content=" a greeting."),
        chunk(content="Hello"),
        chunk(content="!", finish="stop") | {"timings": {"prompt_ms": 12.5, "cache_n": 10}},
        {
            "choices": [],
            "usage": {"prompt_tokens": 50, "completion_tokens": 7},
            "timings": {"prompt_n": 40, "prompt_ms": 12.5, "predicted_ms": 30.0, "cache_n": 10},
        },
    )
    backend = RemoteBackend(stub.url, api_key="sk-test")
    assert backend.n_ctx == 8192 and backend.supports_parallel() == 4
    details = {"server": "llama-server", "tokenizer": "llama-server /tokenize"}
    assert backend.identity.details == details
    assert backend.count_tokens("three small words") == 3
    sampling = Sampling(max_tokens=16, top_k=20, min_p=0.0, seed=7)
    pieces, done = run(backend, sampling)
    assert [(p.text, p.thinking) for p in pieces] == [
        ("The user wants", True),
        (" a greeting.", True),
        ("Hello", False),
        ("!", False),
    ]
    assert done.stats.thinking == "The user wants a greeting." and done.content == "Hello!"
    assert done.stats.raw_output == "The user wants a greeting.</think>Hello!"
    assert (done.stats.prompt_tokens, done.stats.completion_tokens, done.stats.cached_tokens) == (
        50,
        7,
        10,
    )
    assert (done.stats.prompt_ms, done.stats.generation_ms, done.stats.stop_reason) == (
        12.5,
        30.0,
        "stop",
    )
    path, headers, body = stub.requests[-1]
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    for name, value in (("top_k", 20), ("min_p", 0.0), ("seed", 7), ("max_tokens", 16)):
        assert body[name] == value
    for name in ("temperature", "top_p", "presence_penalty", "repeat_penalty"):
        assert name in body


def test_vllm_reasoning_field_and_tokenizer(stub):
    stub.routes["/v1/models"] = lambda _: Reply(
        json={"data": [{"id": "qwenlong", "owned_by": "vllm", "max_model_len": 32768}]}
    )
    stub.routes["/tokenize"] = lambda body: (
        Reply(json={"count": len(body["prompt"].split())})
        if "prompt" in body
        else Reply(status=400, json={"error": {"message": "prompt is required"}})
    )
    stub.routes["/v1/chat/completions"] = answer(
        chunk(reasoning="Hmm."), chunk(content="Yes.", finish="length")
    )
    backend = RemoteBackend(stub.url)
    assert (backend.model, backend.n_ctx) == ("qwenlong", 32768)
    assert backend.identity.details == {"server": "vLLM", "tokenizer": "vLLM /tokenize"}
    assert backend.count_tokens("a b c d") == 4
    _, done = run(backend, Sampling(max_tokens=2))
    assert (done.stats.thinking, done.content, done.stats.stop_reason) == ("Hmm.", "Yes.", "length")


def test_inline_think_tag_is_learnt(stub):
    stub.routes["/v1/chat/completions"] = answer(
        chunk(content="Let me think"),
        chunk(content=" about it."),
        chunk(content="</think>"),
        chunk(content="\n\nIt is 42.", finish="stop"),
    )
    backend = RemoteBackend(stub.url, "m", n_ctx=1000)
    assert backend.identity.details == {"tokenizer": "estimate"}
    assert backend.count_tokens("x" * 35) == 10
    pieces, done = run(backend, Sampling(max_tokens=16))
    assert (done.stats.thinking, done.content) == ("Let me think about it.", "It is 42.")
    assert not any(p.thinking for p in pieces)  # the first time, the tag comes as a surprise
    pieces, _ = run(backend, Sampling(max_tokens=16))
    assert [p.thinking for p in pieces] == [True, True, False, False]


def test_an_explicit_think_tag_flags_thinking_at_once(stub):
    stub.routes["/v1/chat/completions"] = answer(
        chunk(content="<think>"), chunk(content="Hm."), chunk(content="</think>Done.")
    )
    pieces, done = run(RemoteBackend(stub.url, "m", n_ctx=1000), Sampling())
    assert [p.thinking for p in pieces] == [True, True, False]
    assert (done.stats.thinking, done.content) == ("Hm.", "Done.")


def test_thinking_cap_stops_the_request(stub):
    stub.routes["/v1/chat/completions"] = answer(
        *[chunk(reasoning_content=f"step {i}. ") for i in range(20)], chunk(content="late")
    )
    pieces, done = run(RemoteBackend(stub.url, "m", n_ctx=1000), Sampling(thinking_cap=3))
    assert len(pieces) == 3 and done.stats.stop_reason == "thinking_cap"
    assert done.content == "" and done.stats.thinking == "step 0. step 1. step 2."
    assert done.stats.raw_output == "step 0. step 1. step 2. </think>"
    assert any("thinking capped" in n for n in done.stats.notes)


def test_loop_guard_stops_a_repeating_answer(stub):
    stub.routes["/v1/chat/completions"] = answer(*[chunk(content="and again ") for _ in range(200)])
    pieces, done = run(RemoteBackend(stub.url, "m", n_ctx=1000), Sampling())
    assert done.stats.stop_reason == "loop" and len(pieces) < 200


def test_malformed_stream(stub):
    stub.routes["/v1/chat/completions"] = answer(chunk(content="a"), "{not json")
    with pytest.raises(BackendError, match="malformed"):
        run(RemoteBackend(stub.url, "m", n_ctx=1000), Sampling())


@pytest.mark.parametrize("event", ["[1, 2]", "", b"data:\n\n"])
def test_events_that_are_not_objects(stub, event):
    stub.routes["/v1/chat/completions"] = answer(event)
    with pytest.raises(BackendError, match="malformed"):
        run(RemoteBackend(stub.url, "m", n_ctx=1000), Sampling())


@pytest.mark.parametrize(
    "event",
    [
        {"error": {"message": "slot crashed"}},  # vLLM, OpenAI
        b'error: {"code": 500, "message": "slot crashed", "type": "server_error"}\n\n',
    ],
)
def test_an_error_event_in_the_stream(stub, event):
    stub.routes["/v1/chat/completions"] = answer(chunk(content="a"), event)
    with pytest.raises(BackendError, match="slot crashed"):
        run(RemoteBackend(stub.url, "m", n_ctx=1000), Sampling())


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, "API key"), (403, "API key"), (500, "server failed"), (503, "loading")],
)
def test_http_errors_say_what_to_do(stub, status, words):
    stub.routes["/v1/models"] = lambda _: Reply(status=status, json={"error": {"message": "no"}})
    with pytest.raises(BackendError, match=words):
        RemoteBackend(stub.url)


def test_a_too_long_prompt_points_at_the_settings(stub):
    message = "the request exceeds the available context size"
    stub.routes["/v1/chat/completions"] = lambda _: Reply(
        status=400, json={"error": {"message": message}}
    )
    with pytest.raises(BackendError, match="exceeds") as error:
        run(RemoteBackend(stub.url, "m", n_ctx=1000), Sampling())
    assert "chunk size" in str(error.value)


def test_retries_a_dropped_connection_before_any_output(stub):
    calls: list[int] = []

    def flaky(_: dict[str, Any]) -> Reply:
        calls.append(1)
        return Reply(drop=True) if len(calls) == 1 else Reply(events=[chunk(content="ok")])

    stub.routes["/v1/chat/completions"] = flaky
    _, done = run(RemoteBackend(stub.url, "m", n_ctx=1000), Sampling())
    assert done.content == "ok" and len(calls) == 2


def test_no_retry_once_output_arrived(stub):
    stub.routes["/v1/chat/completions"] = answer(chunk(content="half an"), done=False)
    with pytest.raises(BackendError, match="middle of an answer"):
        run(RemoteBackend(stub.url, "m", n_ctx=1000), Sampling())
    assert len(stub.chats()) == 1


def test_cancel_while_the_server_is_silent(stub):
    """A long prompt can keep a server silent for minutes: the cancel must not wait."""
    stub.routes["/v1/chat/completions"] = answer(chunk(content="late"), delay_s=5)
    backend = RemoteBackend(stub.url, "m", n_ctx=1000)
    cancel = CancelToken()
    threading.Timer(0.2, cancel.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        complete(backend, HELLO, Sampling(), cancel)
    assert time.monotonic() - started < 1.5


# -- hostile servers: every wait is bounded, every point cancellable ----------------------
def pings(wfile: Any, every_s: float = 0.1, forever_s: float = 30) -> None:
    """Keep-alive comments only, as sse-starlette sends them, until the client goes."""
    end = time.monotonic() + forever_s
    while time.monotonic() < end:
        wfile.write(b": ping - 2026-01-01 00:00:00\r\n\r\n")
        wfile.flush()
        time.sleep(every_s)


def sse(wfile: Any, event: dict[str, Any]) -> None:
    wfile.write(f"data: {json.dumps(event)}\n\n".encode())
    wfile.flush()


@contextmanager
def silent_listener(backlog_full: bool = False) -> Iterator[str]:
    """A port that accepts connections and never says a word; with ``backlog_full`` it
    never even completes a connect (its accept queue is full and SYNs are dropped)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    held: list[socket.socket] = []
    if backlog_full:  # fill the accept queue: later connects hang in SYN_SENT
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with suppress(BlockingIOError):
                filler.connect(server.getsockname())
            held.append(filler)
        time.sleep(0.2)
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with suppress(OSError):
                held.append(server.accept()[0])

    if not backlog_full:
        threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        for sock in held:
            sock.close()
        server.close()


def test_a_server_that_accepts_and_never_answers_fails_in_bounded_time():
    with silent_listener() as url:
        started = time.monotonic()
        with pytest.raises(BackendError, match="did not answer .* within 1 s") as error:
            RemoteBackend(url, silence_s=1, first_token_s=1)
    assert time.monotonic() - started < 3
    assert "silence limit in Settings" in str(error.value)


def test_cancelling_the_connection_to_a_silent_server_is_prompt():
    """The window's Cancel while a server is loaded: asking a server that accepted the
    connection and says nothing must not wait out the silence limit (60 s). (A connect
    that never completes is bounded by the connect timeout, 10 s: its socket is not
    ours to shut until it exists.)"""
    with silent_listener() as url:
        cancel = CancelToken()
        threading.Timer(0.3, cancel.cancel).start()
        started = time.monotonic()
        with pytest.raises(Cancelled):
            RemoteBackend(url, silence_s=60, connect_timeout_s=30, cancel=cancel)
    assert time.monotonic() - started < 1.5


def test_no_first_token_within_the_wait(stub):
    stub.routes["/v1/chat/completions"] = answer(chunk(content="late"), delay_s=4)
    backend = RemoteBackend(stub.url, "m", n_ctx=1000, first_token_s=1)
    started = time.monotonic()
    with pytest.raises(BackendError, match="has not answered within 1 s") as error:
        run(backend, Sampling())
    assert time.monotonic() - started < 2.5
    assert "Wait for the first token" in str(error.value)


def test_keep_alive_comments_alone_are_silence(stub):
    stub.routes["/v1/chat/completions"] = lambda _: Reply(write=pings)
    backend = RemoteBackend(stub.url, "m", n_ctx=1000, first_token_s=1, silence_s=30)
    started = time.monotonic()
    with pytest.raises(BackendError, match="has sent no output within 1 s"):
        run(backend, Sampling())
    assert time.monotonic() - started < 2.5
    _wait_for(lambda: stub.hangups == 1)  # the stream was closed, not left to the server


def test_pings_after_some_output_are_silence_too(stub):
    def some_then_pings(wfile: Any) -> None:
        sse(wfile, chunk(content="Once upon"))
        pings(wfile)

    stub.routes["/v1/chat/completions"] = lambda _: Reply(write=some_then_pings)
    backend = RemoteBackend(stub.url, "m", n_ctx=1000, first_token_s=5, silence_s=1)
    pieces: list[Any] = []
    with pytest.raises(BackendError, match=r"nothing for 1 s \(only \d+ keep-alive") as error:
        for item in backend.stream(HELLO, Sampling(), CancelToken()):
            pieces.append(item)
    assert [p.text for p in pieces] == ["Once upon"]
    assert "raise the silence limit" in str(error.value)


def test_events_without_text_do_not_keep_a_stream_alive(stub):
    def empty_events(wfile: Any) -> None:
        for _ in range(100):
            sse(wfile, {"choices": [{"index": 0, "delta": {}, "finish_reason": None}]})
            time.sleep(0.1)

    stub.routes["/v1/chat/completions"] = lambda _: Reply(write=empty_events)
    backend = RemoteBackend(stub.url, "m", n_ctx=1000, first_token_s=1)
    with pytest.raises(BackendError, match="no output within 1 s"):
        run(backend, Sampling())


def test_max_tokens_is_enforced_against_a_server_that_ignores_it(stub):
    def endless(wfile: Any) -> None:
        for i in range(100_000):
            sse(wfile, chunk(content=f" w{i}"))

    stub.routes["/v1/chat/completions"] = lambda _: Reply(write=endless)
    backend = RemoteBackend(stub.url, "m", n_ctx=1000)
    started = time.monotonic()
    pieces, done = run(backend, Sampling(max_tokens=5))
    assert time.monotonic() - started < 3
    assert [p.text for p in pieces] == [" w0", " w1", " w2", " w3", " w4"]
    assert (done.stats.stop_reason, done.stats.completion_tokens) == ("length", 5)
    assert any("past max_tokens" in note for note in done.stats.notes)
    _wait_for(lambda: stub.hangups == 1)  # and the server was told to stop


def test_a_server_that_honours_max_tokens_is_not_cut(stub):
    stub.routes["/v1/chat/completions"] = answer(
        chunk(content="a"),
        chunk(content="b", finish="length"),
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
    )
    pieces, done = run(RemoteBackend(stub.url, "m", n_ctx=1000), Sampling(max_tokens=2))
    assert len(pieces) == 2 and done.stats.stop_reason == "length"
    assert (done.stats.prompt_tokens, done.stats.completion_tokens) == (
        3,
        2,
    )  # usage after the limit
    assert not any("past max_tokens" in note for note in done.stats.notes)


def _cancel_after(delay_s: float) -> tuple[CancelToken, list[float]]:
    cancel = CancelToken()
    at: list[float] = []

    def fire() -> None:
        at.append(time.monotonic())
        cancel.cancel()

    threading.Timer(delay_s, fire).start()
    return cancel, at


def _wait_for(condition: Callable[[], bool], timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_cancel_while_connecting(stub):
    backend = RemoteBackend(stub.url, "m", n_ctx=1000, first_token_s=30, connect_timeout_s=30)
    with silent_listener(backlog_full=True) as url:
        backend.base_url = url  # the server's machine stops answering SYNs
        cancel, at = _cancel_after(0.3)
        with pytest.raises(Cancelled):
            run(backend, Sampling(), cancel=cancel)
        assert time.monotonic() - at[0] < 1.0


def test_cancel_while_waiting_for_headers():
    with silent_listener() as url:
        live = Stub()
        threading.Thread(target=live.server.serve_forever, args=(0.05,), daemon=True).start()
        try:
            backend = RemoteBackend(live.url, "m", n_ctx=1000, first_token_s=30)
        finally:
            live.server.shutdown()
            live.server.server_close()
        backend.base_url = url
        cancel, at = _cancel_after(0.3)
        with pytest.raises(Cancelled):
            run(backend, Sampling(), cancel=cancel)
        assert time.monotonic() - at[0] < 1.0


def test_cancel_mid_stream_closes_the_connection(stub):
    def text_then_pings(wfile: Any) -> None:
        sse(wfile, chunk(content="Once"))
        pings(wfile)

    stub.routes["/v1/chat/completions"] = lambda _: Reply(write=text_then_pings)
    backend = RemoteBackend(stub.url, "m", n_ctx=1000, silence_s=30)
    cancel = CancelToken()
    seen: list[Any] = []
    with pytest.raises(Cancelled):
        for item in backend.stream(HELLO, Sampling(), cancel):
            seen.append(item)
            threading.Timer(0.3, cancel.cancel).start()
            started = time.monotonic()
    assert time.monotonic() - started < 1.3 and len(seen) == 1
    _wait_for(lambda: stub.hangups == 1)


def test_only_the_configured_proxy_is_used(stub, monkeypatch):
    """HTTP(S)_PROXY in the environment is ignored; the Settings proxy is used."""
    seen: list[str] = []

    class Proxy(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.requestline)
            self.send_error(502, "trap proxy")

    trap = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=trap.serve_forever, args=(0.05,), daemon=True).start()
    proxy = f"http://127.0.0.1:{trap.server_address[1]}"
    try:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        RemoteBackend(stub.url, "m", n_ctx=1000)
        assert seen == []
        with pytest.raises(BackendError, match="HTTP 502"):
            RemoteBackend(stub.url, "m", n_ctx=1000, proxy=proxy)
        assert seen == [f"GET {stub.url}/v1/models HTTP/1.1"]
    finally:
        trap.shutdown()
        trap.server_close()


def test_a_redirect_is_not_followed(stub):
    stub.routes["/v1/models"] = lambda _: Reply(status=308, json={})
    with pytest.raises(BackendError, match="redirects"):
        RemoteBackend(stub.url)


# -- API keys -----------------------------------------------------------------------------
@pytest.fixture
def use_keyring() -> Iterator[Callable[[Any], None]]:
    previous = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(previous)


def test_api_key_in_the_keyring(use_keyring):
    memory = MemoryKeyring()
    use_keyring(memory)
    assert api_key_from_keyring("http://gpu:8080") is None
    store_api_key("http://gpu:8080/v1/", "sk-1")  # the same server, spelt differently
    assert memory.data == {("QwenLongReader", "http://gpu:8080"): "sk-1"}
    assert api_key_from_keyring("http://gpu:8080") == "sk-1"
    store_api_key("http://gpu:8080", "")
    store_api_key("http://gpu:8080", "")  # deleting twice is fine
    assert api_key_from_keyring("http://gpu:8080") is None


def test_no_keyring_on_this_machine(use_keyring):
    from keyring.backends import fail

    use_keyring(fail.Keyring())
    assert api_key_from_keyring("http://gpu:8080") is None
    with pytest.raises(BackendError, match="keyring"):
        store_api_key("http://gpu:8080", "sk-1")


def test_the_environment_key_wins_over_the_saved_one(memory_keyring, monkeypatch):
    store_api_key("http://gpu:8080", "sk-saved")
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    assert api_key_for("http://gpu:8080/v1") == "sk-saved"
    monkeypatch.setenv(API_KEY_ENV, " sk-env ")
    assert api_key_for("http://gpu:8080") == "sk-env"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other-tool")  # never read
    monkeypatch.delenv(API_KEY_ENV)
    assert api_key_for("http://other:8080") is None


# -- TLS ----------------------------------------------------------------------------------
def test_an_untrusted_certificate_names_the_system_store(untrusted_https):
    """A company CA that is not in the system's store: refused, and the hint says where
    it must be installed (SSL_CERT_FILE and the like are not read)."""
    with pytest.raises(BackendError) as error:
        RemoteBackend(untrusted_https, retries=0)
    text = str(error.value)
    assert "secure connection to 127.0.0.1 failed" in text and "certificate" in text.lower()
    assert "system's certificate store" in text


def test_https_to_a_plain_http_server_says_http_or_https(stub):
    with pytest.raises(BackendError, match="secure connection") as error:
        RemoteBackend(stub.url.replace("http://", "https://"), retries=0)
    assert "http or https" in str(error.value)


def test_a_ca_file_from_the_environment_is_not_trusted(untrusted_https, tmp_path, monkeypatch):
    """SSL_CERT_FILE set for another tool must not change whom the app trusts: a CA is
    trusted when it is in the system's store (trust_env=False)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "server.pem"))  # the server's own
    with pytest.raises(BackendError, match="secure connection"):
        RemoteBackend(untrusted_https, retries=0)


def test_a_password_in_the_url_is_sent_as_basic_auth_and_never_recorded(stub, caplog):
    import base64
    import logging

    from app.settings import Settings

    caplog.set_level(logging.INFO)
    url = stub.url.replace("http://", "http://alice:S3cret%21@")
    stub.routes["/v1/chat/completions"] = answer(chunk(content="hi"), chunk("stop"))
    backend = RemoteBackend(url, retries=0)
    pieces, completion = run(backend, Sampling(max_tokens=8))
    assert completion.content == "hi"
    expected = "Basic " + base64.b64encode(b"alice:S3cret!").decode()
    assert all(headers.get("Authorization") == expected for _, headers, _ in stub.requests)
    assert backend.base_url == stub.url and backend.identity.path == stub.url
    assert "S3cret" not in caplog.text and "alice" not in caplog.text
    recorded = Settings(backend="remote", remote_url=url, recent_files=("/x/other.pdf",))
    record = recorded.for_record()
    assert record["remote_url"] == stub.url and "recent_files" not in record
    backend.close()


@pytest.mark.parametrize("url", ["http://[::1", "http://host:port", "http://u:pw@"])
def test_a_malformed_url_is_a_clear_error_that_does_not_repeat_a_password(url):
    with pytest.raises(BackendError) as error:
        RemoteBackend(url, retries=0)
    assert "pw" not in str(error.value) and error.value.hint


def test_a_server_trickling_its_headers_fails_in_bounded_time():
    """Each read gets a byte well within the read timeout, forever: the answer as a whole
    is bounded by the silence limit."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not stop.wait(0.1):
                try:
                    conn.sendall(b"a")
                except OSError:
                    return

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(BackendError, match="did not answer /v1/models within 1 s"):
            RemoteBackend(f"http://127.0.0.1:{server.getsockname()[1]}", silence_s=1, retries=0)
    finally:
        stop.set()
        server.close()
    assert time.monotonic() - started < 3


def test_a_machine_without_a_keyring_is_not_warned_about_on_every_run(caplog):
    """A headless server has no keyring: that is expected, not a warning on the console."""
    import logging

    from keyring.backends.fail import Keyring as NoKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(NoKeyring())
    try:
        with caplog.at_level(logging.INFO, logger="app.llm"):
            assert api_key_from_keyring("http://team-server:8080") is None
    finally:
        keyring.set_keyring(previous)
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert API_KEY_ENV in caplog.text


def test_a_url_with_a_user_only_takes_its_saved_password(stub):
    import base64

    from app.llm.remote_keys import store_url_password

    url = stub.url.replace("http://", "http://alice@")
    store_url_password(url, "from-keyring")
    backend = RemoteBackend(url, retries=0)
    expected = "Basic " + base64.b64encode(b"alice:from-keyring").decode()
    assert all(headers.get("Authorization") == expected for _, headers, _ in stub.requests)
    backend.close()
