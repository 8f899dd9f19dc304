"""The one small protocol every model backend implements (local llama.cpp, remote server).

The engine only talks to this protocol, so the memory-agent loop runs the same against
llama-cpp-python in-process, a llama-server or vLLM endpoint, or a scripted fake in tests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from app.errors import Cancelled
from app.records import CallStats


@dataclass(frozen=True)
class Sampling:
    """Qwen3 thinking models' recommended sampling; every value is passed explicitly
    because llama-cpp-python's own defaults (temp 0.2, top_k 40, min_p 0.05) are wrong."""

    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 20
    min_p: float = 0.0
    presence_penalty: float = 0.0
    repeat_penalty: float = 1.0
    max_tokens: int = 2048
    thinking_cap: int = 1024  # tokens of thinking before the backend forces `</think>`
    seed: int = 0


@dataclass(frozen=True)
class Completion:
    """One finished model call: ``content`` is the output after the last ``</think>``;
    ``stats`` holds the whole output, its thinking, token counts, timings and notes."""

    content: str
    stats: CallStats


class CancelToken:
    """A cooperative cancel flag, checked between prompt batches and on every token."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass(frozen=True)
class ModelIdentity:
    """What a run records about the model that produced it."""

    backend: str  # "local" | "remote" | "fake"
    name: str
    path: str = ""
    sha256: str = ""
    n_ctx: int = 0
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Piece:
    """A streamed piece of output; ``thinking`` is true before ``</think>``."""

    text: str
    thinking: bool


Stream = Iterator["Piece | Completion"]  # pieces, then exactly one Completion, last


@runtime_checkable
class Backend(Protocol):
    identity: ModelIdentity
    n_ctx: int

    def count_tokens(self, text: str) -> int: ...

    def stream(
        self, messages: list[dict[str, str]], sampling: Sampling, cancel: CancelToken
    ) -> Stream:
        """Yield Pieces as they are generated and the Completion last. Raises
        app.errors.Cancelled promptly (between prompt batches, on every token)."""
        ...

    def close(self) -> None: ...


def complete(
    backend: Backend, messages: list[dict[str, str]], sampling: Sampling, cancel: CancelToken
) -> Completion:
    """Run a stream to its end and return the Completion."""
    for item in backend.stream(messages, sampling, cancel):
        if isinstance(item, Completion):
            return item
    raise RuntimeError(f"{type(backend).__name__}.stream ended without a Completion")


THINK_END = "</think>"


def split_thinking(raw: str) -> tuple[str, str]:
    """Split on the last ``</think>``: what comes before is thinking. The chat template
    opens ``<think>`` itself, so the output carries only the closing tag; a stray
    opening tag is dropped from the thinking."""
    head, sep, tail = raw.rpartition(THINK_END)
    if not sep:
        return "", raw.strip()
    thinking = head.replace("<think>", "", 1).strip()
    return thinking, tail.strip()
