"""The model options every command that loads a model takes (ask, resume, quality,
bench), and the settings they give. Its own module so the CLI and the quality harness
share it without importing each other."""

from __future__ import annotations

import argparse

from app.settings import Settings, load_settings


def settings_from_args(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    changes = {
        "model_path": getattr(args, "model", None),
        "n_ctx": getattr(args, "ctx", None),
        "chunk_tokens": getattr(args, "chunk_tokens", None),
        "memory_tokens": getattr(args, "memory_tokens", None),
        "max_new_tokens": getattr(args, "max_new_tokens", None),
        "n_gpu_layers": getattr(args, "gpu_layers", None),
        "n_cpu_moe": getattr(args, "n_cpu_moe", None),
        "cpu_moe": getattr(args, "cpu_moe", None) or None,
        "kv_cache_type": getattr(args, "kv_type", None),
        "flash_attn": getattr(args, "flash_attn", None),
        "max_ctx": getattr(args, "max_ctx", None),
        "placement": getattr(args, "placement", None),
        "remote_url": getattr(args, "server", None),
        "remote_model": getattr(args, "server_model", None),
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    placed = {"n_gpu_layers", "n_cpu_moe", "cpu_moe", "kv_cache_type", "flash_attn"}
    if placed & changes.keys() and "placement" not in changes:
        changes["placement"] = "manual"  # a value given by hand is not overridden by the plan
    if changes.get("remote_url"):
        changes["backend"] = "remote"
    if changes.get("model_path"):
        changes["backend"] = "local"
    return settings.with_changes(**changes).checked()


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="GGUF model file (default: the bundled demo model)")
    parser.add_argument("--server", help="OpenAI-compatible server URL (llama-server, vLLM)")
    parser.add_argument("--server-model", help="model name on that server")
    parser.add_argument("--ctx", type=int, help="context window in tokens")
    parser.add_argument("--chunk-tokens", type=int, help="tokens per memory-agent chunk")
    parser.add_argument("--memory-tokens", type=int, help="memory budget in tokens")
    parser.add_argument("--max-new-tokens", type=int, help="cap on tokens generated per call")
    parser.add_argument("--gpu-layers", type=int, help="layers to offload to the GPU (-1: all)")
    parser.add_argument(
        "--cpu-moe",
        action="store_true",
        default=None,
        help="keep every layer's MoE experts in RAM, the rest on the GPU (as llama-server)",
    )
    parser.add_argument(
        "--n-cpu-moe", type=int, metavar="N", help="keep the experts of the first N layers in RAM"
    )
    parser.add_argument("--kv-type", choices=["f16", "q8_0", "q4_0"], help="KV cache type")
    parser.add_argument(
        "--flash-attn", action=argparse.BooleanOptionalAction, default=None, help="flash attention"
    )
    parser.add_argument(
        "--placement",
        choices=["auto", "manual"],
        help="auto (default): plan GPU layers, experts in RAM, context and KV cache for this "
        "machine; manual: use the values given (any of the flags above implies manual)",
    )
    parser.add_argument(
        "--max-ctx", type=int, help="largest context the automatic plan may choose (131072)"
    )
