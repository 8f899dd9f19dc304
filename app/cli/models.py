"""``models``: what each local GGUF is, its SHA-256, and how to run it on this machine;
which QwenLong quantization to download; ``--download QUANT`` fetches one (resumable),
``--import FILE`` copies one into the models folder. Registered on the CLI's subparsers
by ``add_models_command``."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from app import paths
from app.cli.transcript import EXIT_CANCELLED
from app.errors import ModelError, UserError
from app.llm.backend import CancelToken
from app.llm.build_info import build_report
from app.llm.download import download_model
from app.llm.download_errors import REPO_ENV
from app.llm.download_progress import DownloadCancelled, DownloadProgress, DownloadResult
from app.llm.fit import DEFAULT_MAX_CTX, Machine, Plan, machine_of, plan_placement
from app.llm.gguf import GGUFInfo, format_count, read_gguf_info
from app.llm.hardware import METAL_SHARE, Hardware, detect_hardware
from app.llm.model_hash import HASH_BLOCK, file_sha256
from app.llm.model_import import import_model
from app.llm.model_sources import CATALOGUE, gguf_repo
from app.llm.qwenlong import QWENLONG_QUANTS, qwenlong_reference
from app.units import gb, human_size


def add_models_command(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "models", help="list local GGUF models and how to run them on this machine"
    )
    parser.add_argument(
        "--import",
        dest="import_file",
        metavar="FILE",
        help="copy a GGUF model into the models folder (validated first)",
    )
    parser.add_argument(
        "--download",
        metavar="QUANT",
        type=str.upper,
        choices=list(CATALOGUE),
        help=f"download a QwenLong-L1.5-30B-A3B GGUF ({', '.join(CATALOGUE)}) into the models "
        "folder; resumes an interrupted download; Ctrl-C stops it",
    )
    parser.add_argument(
        "--url",
        help="download this .gguf URL instead of the catalogue's (with or without --download)",
    )
    parser.add_argument(
        "--repo",
        metavar="OWNER/NAME",
        help="download from this Hugging Face repository instead of the known publishers",
    )
    parser.add_argument(
        "--sha256",
        metavar="HEX",
        help="the file's SHA-256 from the model page: the download is checked against it",
    )
    parser.add_argument(
        "--no-hash", action="store_true", help="skip SHA-256 (hashing 20 GB the first time is slow)"
    )
    parser.add_argument(
        "--plan",
        nargs="?",
        const="Q4_K_M",
        metavar="QUANT_OR_FILE",
        help="show the automatic placement (GPU layers, experts in RAM, context, KV cache) "
        f"for a GGUF file or a QwenLong quantization ({', '.join(QWENLONG_QUANTS)}; "
        "default Q4_K_M, from its published size and QwenLong's shape)",
    )
    parser.add_argument("--vram-gb", type=float, help="plan for this much free VRAM (GB)")
    parser.add_argument("--ram-gb", type=float, help="plan for this much free RAM (GB)")
    parser.add_argument(
        "--unified", action="store_true", help="plan for unified memory (Apple silicon)"
    )
    parser.add_argument("--max-ctx", type=int, help="largest context the plan may choose")
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    parser.set_defaults(func=cmd_models)
    return parser


def plan_machine(args: argparse.Namespace, hw: Hardware | None = None) -> Machine:
    """This machine, or the one --vram-gb/--ram-gb/--unified describe (to plan for a
    workstation other than this one)."""
    detected = machine_of(hw or detect_hardware())
    ram = int(args.ram_gb * 1e9) if args.ram_gb is not None else detected.ram_bytes
    if args.unified:
        # Metal lets the GPU wire about 70% of unified memory (recommendedMaxWorkingSetSize)
        vram = int(args.vram_gb * 1e9) if args.vram_gb is not None else int(ram * METAL_SHARE)
        return Machine(ram, vram, True, "Apple GPU (unified memory)")
    if args.vram_gb is not None:
        return Machine(ram, int(args.vram_gb * 1e9), False, f"GPU with {args.vram_gb:g} GB")
    return Machine(ram, detected.vram_bytes, detected.unified, detected.gpu_name)


def cmd_plan(args: argparse.Namespace, out: TextIO) -> int:
    """``models --plan``: the placement app.llm.fit chooses, as text or one JSON object."""
    target = args.plan
    if target.upper() in QWENLONG_QUANTS:
        info = qwenlong_reference(target.upper())
        source = f"published size of {info.path.name} and QwenLong's shape"
    else:
        info = read_gguf_info(target)
        source = str(info.path)
    machine = plan_machine(args)
    plan = plan_placement(info, machine, max_ctx=args.max_ctx or DEFAULT_MAX_CTX)
    if args.json:
        data = {
            **plan.to_json(),
            "model": info.path.name,
            "model_bytes": info.file_size,
            "machine": {
                "ram_bytes": machine.ram_bytes,
                "vram_bytes": machine.vram_bytes,
                "unified": machine.unified,
                "gpu": machine.gpu_name,
            },
        }
        out.write(json.dumps(data) + "\n")
    else:
        gpu = f"{machine.gpu_name}, {gb(machine.vram_bytes)} free" if machine.has_gpu else "no GPU"
        out.write(f"Model:     {info.describe()} ({source})\n")
        out.write(f"Machine:   {gb(machine.ram_bytes)} RAM free, {gpu}\n")
        out.write(f"Plan:      {plan.describe()}\n")
        out.write(f"Why:       {plan.reason}\n")
        if plan.fits:
            moe = f" --n-cpu-moe {plan.n_cpu_moe}" if plan.n_cpu_moe else ""
            out.write(
                f"Same by hand: --gpu-layers {plan.n_gpu_layers}{moe} --ctx {plan.n_ctx} "
                f"--kv-type {plan.kv_type} --flash-attn\n"
            )
    return 0 if plan.fits else 4


def cmd_models(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if getattr(args, "plan", None):
        return cmd_plan(args, out)
    if args.download or args.url:
        result = run_download(args, out)
        if result is None:
            return EXIT_CANCELLED
    elif args.sha256:
        raise UserError("--sha256 checks a download: use it with --download or --url.")
    if args.import_file:
        source = Path(args.import_file)
        target = import_model(source, out, progress=_progress(f"copying {source.name}"))
        out.write(f"Imported to {target}\nUse it: Settings > Model, or --model {target}\n\n")
    hw = detect_hardware()
    out.write(f"llama.cpp: {build_report(hw).message}\n")
    out.write(f"This machine: {hw.describe()}\n")
    for path, label in model_files():
        out.write(f"\n* {path.name}{label}\n")
        try:
            info = read_gguf_info(path)
        except ModelError as error:
            out.write(f"  unusable: {error.message}\n")
            continue
        print_model(info, hw, out, with_hash=not args.no_hash)
    out.write(
        "\nQwenLong-L1.5-30B-A3B quantizations on this machine (`models --download QUANT` "
        f"fetches one from huggingface.co/{gguf_repo()}; or download it in a browser and run "
        "`models --import FILE`):\n"
    )
    machine = machine_of(hw)
    for quant, size in QWENLONG_QUANTS.items():
        plan = plan_placement(qwenlong_reference(quant), machine)
        out.write(f"  {quant:<7} ~{gb(size)}  {_plan_line(plan)}\n")
    return 0


def run_download(args: argparse.Namespace, out: TextIO) -> DownloadResult | None:
    """``--download``/``--url``: progress on one stderr line; Ctrl-C stops between blocks
    and keeps the .part (None is returned). UserError for everything else."""
    cancel = CancelToken()
    if args.url:
        out.write(f"Downloading {args.url}\n")
    else:
        out.write(
            f"Downloading {CATALOGUE[args.download].url()}\n"
            f"(another repository: set {REPO_ENV}=owner/name, or pass --url)\n"
        )
    out.flush()
    printer = ProgressLine(sys.stderr)
    try:
        with _interrupt_sets(cancel):
            result = download_model(
                args.download,
                url=args.url,
                repo=getattr(args, "repo", None),
                sha256=args.sha256,
                progress=printer,
                cancel=cancel,
            )
    except DownloadCancelled as stop:
        printer.end()
        if stop.part is None:
            out.write("Cancelled before the download started.\n")
            return None
        total = f" of {human_size(stop.total)}" if stop.total else ""
        out.write(
            f"Cancelled. The {human_size(stop.done)}{total} downloaded so far is kept in "
            f"{stop.part}; run the same command again to resume.\n"
        )
        return None
    except UserError:
        printer.end()
        raise
    printer.end()
    if result.already_present:
        out.write(f"{result.path.name} is already in the models folder.\n")
    else:
        resumed = f", resumed at {human_size(result.resumed_from)}" if result.resumed_from else ""
        source = f" from {result.repo}" if result.repo else ""
        out.write(f"Downloaded {human_size(result.size)}{source} to {result.path}{resumed}\n")
    if result.sha256:
        how = f"verified against {result.verified_by}" if result.verified_by else "not verified"
        out.write(f"sha256:   {result.sha256} ({how})\n")
        if not result.verified_by:
            out.write("          (the server gave no checksum: compare it with the model page's)\n")
    try:
        out.write(f"Model:    {read_gguf_info(result.path).describe()}\n")
    except ModelError as error:
        out.write(f"Warning:  {error.message}\n")
    out.write(f"Use it: Settings > Model, or --model {result.path}\n\n")
    return result


class ProgressLine:
    """Writes DownloadProgress.describe() in place (\\r), at most a few times a second."""

    def __init__(self, stream: TextIO, interval_s: float = 0.5) -> None:
        self.stream = stream
        self.interval_s = interval_s
        self.last = 0.0
        self.width = 0

    def __call__(self, progress: DownloadProgress) -> None:
        now = time.monotonic()
        if now - self.last < self.interval_s and progress.done != progress.total:
            return
        self.last = now
        line = progress.describe()
        self.stream.write("\r" + line.ljust(self.width))
        self.width = len(line)
        self.stream.flush()

    def end(self) -> None:
        if self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


@contextlib.contextmanager
def _interrupt_sets(cancel: CancelToken) -> Iterator[None]:
    """Ctrl-C sets ``cancel`` (the download stops at the next block, keeping its .part)
    instead of raising KeyboardInterrupt wherever the program happens to be."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        sys.stderr.write("\nCancelling: keeping what is downloaded...\n")
        cancel.cancel()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def model_files() -> list[tuple[Path, str]]:
    """The current model (the demo when none is chosen), then the models folder's GGUFs."""
    from app.llm.factory import resolve_model_path
    from app.settings import load_settings

    found: list[tuple[Path, str]] = []
    try:
        current, is_demo = resolve_model_path(load_settings())
        found.append((current, " (current, bundled demo)" if is_demo else " (current)"))
    except UserError as error:
        sys.stderr.write(f"Current model: {error}\n")
    seen = {p.resolve() for p, _ in found}
    for file in sorted(paths.models_dir().glob("*.gguf")):
        if file.resolve() not in seen:
            found.append((file, ""))
    return found


def print_model(info: GGUFInfo, hw: Hardware, out: TextIO, *, with_hash: bool) -> None:
    experts = f", {info.expert_used_count} of {info.expert_count} experts" if info.is_moe else ""
    label = f" (label: {info.size_label})" if info.size_label else ""
    plan = plan_placement(info, machine_of(hw))
    lines = [
        f"name:     {info.name or '-'}",
        f"arch:     {info.architecture}{experts}",
        f"params:   {format_count(info.parameter_count)}{label}",
        f"quant:    {info.quantization}",
        f"context:  {info.context_length:,} tokens "
        f"(KV cache {info.kv_bytes_per_token() / 1024:.1f} KiB per token at f16)",
        f"size:     {human_size(info.file_size)}",
    ]
    if with_hash:
        lines.append(f"sha256:   {file_sha256(info.path, progress=_progress(info.path.name))}")
    if not info.has_chat_template:
        lines.append("warning:  no chat template: the app cannot use this file")
    lines.append(f"fit:      {_plan_line(plan)}")
    if plan.fits:
        lines.append(f"why:      {plan.reason}")
    out.write("".join(f"  {line}\n" for line in lines))


def _plan_line(plan: Plan) -> str:
    """One line of the automatic placement: what it loads with, or why nothing fits."""
    return f"Fits: {plan.describe()}." if plan.fits else plan.reason


def _progress(name: str) -> Any:
    """A progress callback writing 'hashing NAME: 42%' to stderr, in place."""

    def report(done: int, total: int) -> None:
        if total > 64 * HASH_BLOCK:  # only worth showing for big files
            end = "\n" if done >= total else ""
            sys.stderr.write(f"\r{name}: {done * 100 // max(total, 1)}%{end}")
            sys.stderr.flush()

    return report
