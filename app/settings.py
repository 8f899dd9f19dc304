"""Typed, validated, versioned settings, persisted as JSON in the config directory."""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.parse
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from app import paths
from app.errors import UserError
from app.records import Mode

log = logging.getLogger("app")

SCHEMA_VERSION = 1
MODEL_ENV = "QWENLONG_READER_MODEL"

MODES = tuple(m.value for m in Mode)  # a default mode is stored as its plain string
PLACEMENTS = ("auto", "manual")
KV_TYPES = ("f16", "q8_0", "q4_0")
# The server waits' bounds in seconds (validate below; the Settings dialog's spin boxes).
FIRST_TOKEN_RANGE_S = (5.0, 7200.0)  # remote_timeout_s
SILENCE_RANGE_S = (5.0, 3600.0)  # remote_silence_s


def _is_server_url(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url.strip())
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


# The fields a model load reads, per backend (Settings.load_key).
LOCAL_LOAD_FIELDS = (
    "model_path", "n_ctx", "max_ctx", "placement", "n_gpu_layers", "flash_attn",
    "kv_cache_type", "n_threads", "n_batch", "cpu_moe", "n_cpu_moe",
)  # fmt: skip
REMOTE_LOAD_FIELDS = (
    "remote_url", "remote_model", "remote_parallel", "remote_timeout_s", "remote_silence_s",
    "proxy_url", "n_ctx",
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    # Model: a GGUF path for the local backend, or an OpenAI-compatible server.
    backend: str = "local"  # "local" | "remote"
    model_path: str = ""  # empty: the bundled demo model
    remote_url: str = ""
    remote_model: str = ""
    remote_parallel: int = 1
    # Remote server waits (app.llm.remote) and the proxy for it and for model downloads.
    remote_timeout_s: float = 120.0  # the longest wait for the first token (prompt reading)
    remote_silence_s: float = 60.0  # the longest gap between tokens, keep-alives ignored
    proxy_url: str = ""  # empty: connect directly (environment proxies are never used)
    # Context and budgets (0 = derive from n_ctx, see agent.budgets). n_ctx 0: the
    # placement plan's, the largest up to max_ctx that fits this machine (app.llm.fit).
    n_ctx: int = 0
    max_ctx: int = 131_072  # the paper's full-context limit; up to the native 262,144
    chunk_tokens: int = 0
    memory_tokens: int = 0
    max_new_tokens: int = 0
    thinking_cap: int = 0
    mode: str = "auto"
    # llama.cpp. placement "auto": GPU layers, experts in RAM, KV type and flash attention
    # come from the plan for this model and machine; "manual": the values below.
    placement: str = "auto"
    n_gpu_layers: int = 0
    flash_attn: bool = False
    kv_cache_type: str = "f16"
    n_threads: int = 0  # 0: llama.cpp's default
    n_batch: int = 512
    cpu_moe: bool = False  # keep every layer's MoE experts in RAM (--cpu-moe)
    n_cpu_moe: int = 0  # keep the experts of the first N layers in RAM (--n-cpu-moe N)
    # Sampling (Qwen3 thinking models' card: never greedy).
    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 20
    min_p: float = 0.0
    presence_penalty: float = 0.0
    seed: int = 0
    # Documents
    drop_headers_footers: bool = False
    ocr: bool = False
    # Window
    theme: str = "system"  # system | light | dark
    recent_files: tuple[str, ...] = field(default_factory=tuple)

    def validate(self) -> list[str]:
        """Reasons this configuration cannot be used; empty when it is fine."""
        problems = []
        if self.theme not in ("system", "light", "dark"):
            problems.append("theme must be system, light or dark")
        if self.backend not in ("local", "remote"):
            problems.append("backend must be 'local' or 'remote'")
        if self.backend == "remote" and not _is_server_url(self.remote_url):
            problems.append(
                "the server URL must be http:// or https:// and a host, e.g. http://host:8080"
            )
        if self.n_ctx and not 512 <= self.n_ctx <= 1_048_576:
            problems.append("context size must be 0 (automatic) or 512 to 1,048,576 tokens")
        if not 4096 <= self.max_ctx <= 1_048_576:
            problems.append("the largest automatic context must be 4,096 to 1,048,576 tokens")
        ctx = self.n_ctx or self.max_ctx
        if self.chunk_tokens and not 64 <= self.chunk_tokens <= ctx // 2:
            problems.append("chunk size must be between 64 tokens and half the context size")
        if self.memory_tokens and not 32 <= self.memory_tokens <= ctx // 4:
            problems.append("memory budget must be between 32 tokens and a quarter of the context")
        if self.placement not in PLACEMENTS:
            problems.append("placement must be 'auto' or 'manual'")
        if self.n_cpu_moe < -1:
            problems.append("experts in RAM must be -1 (all), 0 (none) or a layer count")
        if self.mode not in MODES:
            problems.append(f"mode must be one of {', '.join(MODES)}")
        if self.kv_cache_type not in KV_TYPES:
            problems.append(f"KV cache type must be one of {', '.join(KV_TYPES)}")
        if self.kv_cache_type != "f16" and not self.flash_attn:
            problems.append("a quantized KV cache needs flash attention turned on")
        if not 0.0 < self.temperature <= 2.0:
            problems.append("temperature must be above 0 (greedy decoding loops) and at most 2")
        if not 0.0 < self.top_p <= 1.0:
            problems.append("top_p must be in (0, 1]")
        if self.top_k < 0 or self.n_gpu_layers < -1 or self.n_threads < 0 or self.n_batch < 1:
            problems.append("top_k, GPU layers, threads and batch size must not be negative")
        if not 0.0 <= self.presence_penalty <= 2.0:
            problems.append("presence penalty must be between 0 and 2")
        first_low, first_high = FIRST_TOKEN_RANGE_S
        silence_low, silence_high = SILENCE_RANGE_S
        if not (
            first_low <= self.remote_timeout_s <= first_high
            and silence_low <= self.remote_silence_s <= silence_high
        ):
            problems.append(
                "the server waits must be between 5 s and 2 hours (first token) or 1 hour (silence)"
            )
        if self.proxy_url and not self.proxy_url.startswith(("http://", "https://")):
            problems.append("the proxy must be an http:// or https:// URL, e.g. http://proxy:3128")
        return problems

    def checked(self) -> Settings:
        problems = self.validate()
        if problems:
            raise UserError("Invalid settings: " + "; ".join(problems))
        return self

    @property
    def experts_in_ram(self) -> int:
        """The manual experts-in-RAM value as llama.cpp's loader takes it: -1 all layers."""
        return -1 if self.cpu_moe else self.n_cpu_moe

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recent_files"] = list(self.recent_files)
        return data

    def load_key(self) -> tuple[Any, ...]:
        """What loading the model depends on: settings that differ only elsewhere
        (sampling, budgets, mode, reading, the look) apply without loading it again,
        which for a 30B model costs minutes."""
        names = REMOTE_LOAD_FIELDS if self.backend == "remote" else LOCAL_LOAD_FIELDS
        return (self.backend, *(getattr(self, name) for name in names))

    def for_record(self) -> dict[str, Any]:
        """What a run stores of these settings, and its exported report shares: not the
        recent files (other documents' paths), not a password written into the server URL
        (it is sent as basic auth, never recorded)."""
        data = self.to_dict()
        del data["recent_files"]
        data["remote_url"] = re.sub(r"//[^/@]*@", "//", data["remote_url"])
        return data


def settings_path() -> Path:
    return paths.config_dir() / "settings.json"


# What load_settings had to tell the user (a damaged file set aside): the window shows it
# once, the CLI prints it on stderr (take_notices empties it).
_notices: list[str] = []


def take_notices() -> list[str]:
    """The notices recorded since the last call, each given out once."""
    taken = list(_notices)
    _notices.clear()
    return taken


def _set_aside(path: Path, problem: str) -> None:
    """Keep a settings file that cannot be used beside it (settings.json.bad-<time>),
    so nothing the user set is lost unseen, and record a notice saying so."""
    bad = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.replace(path, bad)
        kept = f"it was kept as {bad}"
    except OSError as error:
        kept = f"it could not be moved aside ({error})"
    log.warning("settings file %s set aside: %s", path, problem)
    _notices.append(
        f"The settings file {path} could not be used ({problem}); {kept}, and the default "
        "settings are used. Open Settings to set them again."
    )


def load_settings(path: Path | None = None) -> Settings:
    """Saved settings, with the model from QWENLONG_READER_MODEL if set. Unknown keys
    (from a newer version) are ignored; a broken file is set aside (see take_notices)
    and the defaults are used."""
    path = path or settings_path()
    values: dict[str, Any] = {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(Settings)}
        values = {k: v for k, v in raw.get("settings", {}).items() if k in known}
        if "recent_files" in values:
            values["recent_files"] = tuple(values["recent_files"])
        settings = Settings(**values)
        problems = settings.validate()
    except FileNotFoundError:
        settings, problems = Settings(), []
    except OSError as error:  # unreadable (permissions): left where it is
        settings, problems = Settings(), []
        _notices.append(f"The settings file {path} cannot be read ({error}); defaults are used.")
    except (ValueError, AttributeError, TypeError) as error:
        settings, problems = Settings(), []
        _set_aside(path, f"not valid settings: {error}")
    if problems:
        settings = Settings()
        _set_aside(path, "; ".join(problems))
    if os.environ.get(MODEL_ENV):
        settings = replace(settings, model_path=os.environ[MODEL_ENV], backend="local")
    return settings


def save_settings(settings: Settings, path: Path | None = None) -> None:
    settings.checked()
    path = path or settings_path()
    tmp = path.with_suffix(".tmp")
    payload = {"schema_version": SCHEMA_VERSION, "settings": settings.to_dict()}
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    os.replace(tmp, path)
