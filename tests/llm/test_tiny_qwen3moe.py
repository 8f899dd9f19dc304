"""QwenLong's architecture (qwen3moe) and thinking template through the real llama.cpp
path, on a tiny random-weight model: loads, renders, runs a memory-update step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.agent import prompts
from app.llm.backend import CancelToken, Sampling, complete
from app.llm.gguf import read_gguf_info
from app.llm.local import LocalBackend
from tests.fixtures.tiny_qwen3moe import write_tiny_qwen3moe

REPO = Path(__file__).resolve().parents[2]
# The memory prompt is ~2,400 tokens with this byte-level vocabulary: 1024 is too small.
N_CTX = 4096


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_qwen3moe(tmp_path_factory.mktemp("tiny") / "tiny-qwen3moe.gguf")


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


def test_loads_and_renders_the_thinking_template(backend):
    assert backend.identity.details["general.architecture"] == "qwen3moe"
    rendered = backend.render([{"role": "user", "content": "hi"}])
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n"
    # <think> / </think> are single tokens, as in Qwen3's vocabulary
    assert len(backend.llm.tokenize(b"<think></think>", add_bos=False, special=True)) == 2


def test_memory_step_without_cap(backend):
    # thinking_cap=0: never forced; the fixture's model never closes </think> itself
    c = complete(backend, memory_messages(), Sampling(max_tokens=24, thinking_cap=0), CancelToken())
    assert c.prompt_tokens > 2000
    assert c.completion_tokens == 24
    assert c.stop_reason == "length"
    assert "</think>" not in c.raw


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
evaluated = [int(t) for t in llm._input_ids[c.prompt_tokens:llm.n_tokens]]
in_kv = any(evaluated[i:i + len(forced)] == forced for i in range(len(evaluated)))
print(json.dumps({"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                  "notes": list(c.notes), "raw": c.raw, "forced_in_kv": in_kv}))
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
