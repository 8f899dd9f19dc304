"""Experts in RAM and load progress through the real llama.cpp loader, on the qwen3moe
fixture: llama.cpp itself reports which buffer each overridden tensor went to."""

from __future__ import annotations

import pytest

from app.errors import Cancelled, ModelError
from app.llm.backend import CancelToken, Sampling, complete
from app.llm.load_params import EXPERTS_REGEX, expert_patterns
from app.llm.local import LocalBackend
from tests.fixtures.tiny_qwen3moe import write_tiny_qwen3moe

EXPERT_TENSORS = {
    f"blk.{layer}.ffn_{kind}_exps.weight" for layer in (0, 1) for kind in ("gate", "up", "down")
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_qwen3moe(tmp_path_factory.mktemp("tiny") / "tiny-qwen3moe.gguf")


def test_patterns_match_llama_cpp_flags():
    assert expert_patterns(0, 48) == []
    assert expert_patterns(-1, 48) == [EXPERTS_REGEX]  # --cpu-moe
    assert expert_patterns(48, 48) == [EXPERTS_REGEX]
    assert expert_patterns(2, 48) == [rf"blk\.0{EXPERTS_REGEX}", rf"blk\.1{EXPERTS_REGEX}"]


@pytest.mark.parametrize(
    ("n_cpu_moe", "expected"),
    [
        (0, set()),
        (-1, EXPERT_TENSORS),
        (1, {t for t in EXPERT_TENSORS if t.startswith("blk.0.")}),
        (2, EXPERT_TENSORS),
    ],
)
def test_override_takes_effect(tiny, n_cpu_moe, expected):
    backend = LocalBackend(tiny, n_ctx=512, n_cpu_moe=n_cpu_moe)
    try:
        overridden = backend.load_params.overridden()
        assert set(overridden) == expected
        assert all(buffer.startswith("CPU") for buffer in overridden.values())
        assert backend.identity.details["n_cpu_moe"] == str(n_cpu_moe)
        # the model still generates with its experts placed by the override
        messages = [{"role": "user", "content": "Say hi."}]
        done = complete(backend, messages, Sampling(max_tokens=4, thinking_cap=2), CancelToken())
        assert done.stats.completion_tokens >= 1
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("value", "says"),
    [(-2, "not a layer count"), (3, "has 2 layers"), (99, "from 1 to 2")],
)
def test_bad_value_is_a_clear_error(tiny, value, says):
    with pytest.raises(ModelError, match=says):
        LocalBackend(tiny, n_ctx=512, n_cpu_moe=value)


def test_dense_model_refuses_experts_in_ram(demo_model):
    with pytest.raises(ModelError, match="only applies to mixture-of-experts"):
        LocalBackend(demo_model, n_ctx=512, n_cpu_moe=-1)


def test_load_progress_reaches_one(tiny):
    seen: list[float] = []
    backend = LocalBackend(tiny, n_ctx=512, progress=seen.append)
    backend.close()
    assert len(seen) >= 3
    assert seen == sorted(seen)
    assert seen[0] == 0.0 and seen[-1] == 1.0


def test_cancel_during_load_stops_it_and_the_next_load_works(tiny):
    cancel = CancelToken()
    seen: list[float] = []

    def progress(fraction: float) -> None:
        seen.append(fraction)
        cancel.cancel()  # as Ctrl-C or the window's Cancel would, mid-load

    with pytest.raises(Cancelled):
        LocalBackend(tiny, n_ctx=512, progress=progress, cancel=cancel)
    assert seen and seen[-1] < 1.0  # stopped early, not after loading everything
    again = LocalBackend(tiny, n_ctx=512, n_cpu_moe=-1)  # nothing left patched or broken
    assert set(again.load_params.overridden()) == EXPERT_TENSORS
    again.close()


def test_llama_logging_is_restored_after_a_load(tiny, capfd):
    import llama_cpp.llama_cpp as llama_cpp

    original = llama_cpp.llama_model_default_params
    backend = LocalBackend(tiny, n_ctx=512, n_cpu_moe=1)
    assert llama_cpp.llama_model_default_params is original
    assert "buffer type overridden" in "".join(backend.load_params.log_lines)
    backend.close()
    assert "buffer type overridden" not in capfd.readouterr().err  # captured, not printed


def test_unreadable_and_broken_link_model_files_are_clear_errors(tmp_path, tiny, monkeypatch):
    from pathlib import Path

    from app.llm.gguf import check_model_file

    link = tmp_path / "model.gguf"
    link.symlink_to(tmp_path / "gone.gguf")
    with pytest.raises(ModelError, match="broken link"):
        check_model_file(link)
    # Permissions cannot be taken away from root (CI runs as root): make open() fail as
    # it does for a user without read permission.
    real_open = Path.open

    def denied(self, *args, **kwargs):
        if self == Path(tiny):
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(ModelError, match="cannot be read: Permission denied"):
        check_model_file(tiny)
