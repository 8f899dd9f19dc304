"""A scripted model for unit tests of the loop's logic (real-model tests sit beside them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from app.llm.backend import (
    CancelToken,
    Completion,
    ModelIdentity,
    Piece,
    Sampling,
    split_thinking,
)
from app.records import CallStats

Script = Callable[[str], str]  # prompt -> raw output


def memory_output(memory: str, plan: str, thinking: str = "") -> str:
    think = f"{thinking}</think>\n" if thinking else ""
    return f"{think}Updated memory:\n<memory>\n{memory}\n</memory>\n<plan>\n{plan}\n</plan>"


class FakeBackend:
    """Counts one token per whitespace-separated word; answers with ``script(prompt)``.

    ``cancel_after`` cancels the given token after that many calls, to test cancels."""

    def __init__(self, script: Script, n_ctx: int = 4096) -> None:
        self.script = script
        self.n_ctx = n_ctx
        self.identity = ModelIdentity(backend="fake", name="scripted", n_ctx=n_ctx)
        self.prompts: list[str] = []
        self.on_call: Callable[[int], None] | None = None

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(
        self, messages: list[dict[str, str]], sampling: Sampling, cancel: CancelToken
    ) -> Iterator[Piece | Completion]:
        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        if self.on_call:
            self.on_call(len(self.prompts))
        cancel.raise_if_cancelled()
        raw = self.script(prompt)
        for word in raw.split(" "):
            cancel.raise_if_cancelled()
            yield Piece(word + " ", False)
        thinking, content = split_thinking(raw)
        stats = CallStats(
            raw_output=raw,
            thinking=thinking,
            prompt_tokens=self.count_tokens(prompt),
            completion_tokens=self.count_tokens(raw),
            prompt_ms=1.0,
            generation_ms=1.0,
            wall_ms=2.0,
        )
        yield Completion(content, stats)

    def close(self) -> None:
        pass


class MemoryKeyring(KeyringBackend):
    """A system keyring in memory: tests never read or write the real one."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.data.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.data[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.data.pop((service, username), None) is None:
            raise PasswordDeleteError(username)
