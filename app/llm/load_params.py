"""What llama-cpp-python's ``Llama`` cannot pass to llama.cpp when it loads a model:
tensor buffer-type overrides (experts in RAM) and a progress callback.

Why this module exists: llama.cpp's ``llama_model_params`` has a
``tensor_buft_overrides`` field (a NULL-terminated array of {regex, buffer type}) and a
``progress_callback``; llama-server's ``--cpu-moe`` / ``--n-cpu-moe N`` fill the first
with the MoE expert tensors and ggml's CPU buffer type, which is how a 30B-A3B model runs
on a 12-24 GB card: attention, norms and the router on the GPU, the 128 experts (95% of
the bytes, but only 8 active per token) in system RAM. llama-cpp-python 0.3.36 declares
both fields but its ``Llama.__init__`` builds the params itself and never sets them, so
for the duration of one load we hand it a params struct that already carries ours
(``Llama`` only assigns the fields it knows, so ours survive). Everything that must stay
alive while llama.cpp reads it (the array, the pattern strings, the callback) is owned by
a ``LoadParams`` object that the backend keeps as long as the model.

The CPU buffer type is found through ggml's device registry (``ggml_backend_dev_by_type``
+ ``ggml_backend_dev_buffer_type``), which works whether the CPU backend is linked in or
loaded as a plugin, and whatever the library file is called (.so, .dll, .dylib): the
libraries are the ones shipped in ``llama_cpp/lib`` beside libllama.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from app.errors import ModelError
from app.llm.ggml_lib import ggml_libraries, library_dir, symbol

# llama.cpp's own pattern for the routed experts (common/common.h LLM_FFN_EXPS_REGEX);
# per layer it is prefixed with ``blk\.N`` (llm_ffn_block_regex), as --n-cpu-moe does.
EXPERTS_REGEX = r"\.ffn_(up|down|gate|gate_up)_(ch|)exps"
GGML_BACKEND_DEVICE_TYPE_CPU = 0
_OVERRIDE_LINE = re.compile(r"tensor (\S+) \(.*\) buffer type overridden to (\S+)")
_load_lock = threading.Lock()  # one load at a time patches llama_model_default_params


class _BuftOverride(ctypes.Structure):
    # llama.h: struct llama_model_tensor_buft_override { const char * pattern; buft; }
    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


def expert_patterns(n_cpu_moe: int, n_layers: int) -> list[str]:
    """Regexes for the expert tensors to keep in RAM: all layers' (``n_cpu_moe`` < 0 or
    >= ``n_layers``) as --cpu-moe, else the first ``n_cpu_moe`` layers' as --n-cpu-moe N
    (llama.cpp offloads the last layers first, so the first ones are the CPU's)."""
    if n_cpu_moe == 0:
        return []
    if n_cpu_moe < 0 or (n_layers and n_cpu_moe >= n_layers):
        return [EXPERTS_REGEX]
    # "blk\.1\.ffn_..." cannot match blk.10: the layer number is followed by "\.".
    return [rf"blk\.{i}{EXPERTS_REGEX}" for i in range(n_cpu_moe)]


def validate_n_cpu_moe(n_cpu_moe: int, n_layers: int, is_moe: bool) -> None:
    """A clear ModelError for a value llama.cpp would silently ignore."""
    if n_cpu_moe < -1:
        raise ModelError(
            f"Experts in RAM: {n_cpu_moe} is not a layer count.",
            hint="Use 0 (none), -1 (all layers' experts, like --cpu-moe) or a number of "
            "layers from 1 up to the model's layer count.",
        )
    if n_cpu_moe and not is_moe:
        raise ModelError(
            "Experts in RAM only applies to mixture-of-experts models; this model has no "
            "expert tensors.",
            hint="Set experts in RAM to 0, or use GPU layers to split a dense model.",
        )
    if n_layers and n_cpu_moe > n_layers:
        raise ModelError(
            f"Experts in RAM: the model has {n_layers} layers, so {n_cpu_moe} layers' "
            "experts cannot be kept in RAM.",
            hint=f"Use a number from 1 to {n_layers}, or -1 for all of them.",
        )


def cpu_buffer_type() -> int:
    """The address of ggml's CPU buffer type (what llama.cpp compares overrides with)."""
    libraries = ggml_libraries()
    by_type = symbol(libraries, "ggml_backend_dev_by_type", ctypes.c_void_p, ctypes.c_int)
    dev_buft = symbol(libraries, "ggml_backend_dev_buffer_type", ctypes.c_void_p, ctypes.c_void_p)
    if by_type is not None and dev_buft is not None:
        device = by_type(GGML_BACKEND_DEVICE_TYPE_CPU)
        if device:
            buft = dev_buft(device)
            if buft:
                return int(buft)
    direct = symbol(libraries, "ggml_backend_cpu_buffer_type", ctypes.c_void_p)
    if direct is not None:
        buft = direct()
        if buft:
            return int(buft)
    raise ModelError(
        "This llama.cpp build does not expose ggml's CPU buffer type, so the experts cannot "
        f"be kept in RAM (looked in {library_dir()}).",
        hint="Set experts in RAM to 0, or run the model through llama-server --cpu-moe.",
    )


@dataclass
class LoadParams:
    """Overrides and a progress callback for one model load; keep it as long as the
    model (llama.cpp keeps the override array's pointer in the model)."""

    n_cpu_moe: int = 0
    n_layers: int = 0
    progress: Callable[[float], bool] | None = None  # False stops the load
    patterns: list[str] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)  # llama.cpp's log during the load
    _keep: list[Any] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.patterns = expert_patterns(self.n_cpu_moe, self.n_layers)

    def overridden(self) -> dict[str, str]:
        """Tensor name -> buffer type, as llama.cpp reported each override while loading."""
        found: dict[str, str] = {}
        for line in "".join(self.log_lines).splitlines():
            match = _OVERRIDE_LINE.search(line)
            if match:
                found[match.group(1)] = match.group(2)
        return found

    def _apply(self, params: Any, llama_cpp: Any) -> None:
        if self.patterns:
            buft = cpu_buffer_type()
            array = (_BuftOverride * (len(self.patterns) + 1))()
            encoded = [p.encode() for p in self.patterns]
            for slot, pattern in zip(array, encoded, strict=False):
                slot.pattern, slot.buft = pattern, buft
            # the last slot stays {NULL, NULL}: the terminator llama.cpp looks for
            self._keep += [array, encoded]
            params.tensor_buft_overrides = ctypes.cast(array, ctypes.c_void_p).value
        if self.progress is not None:
            report = self.progress

            def on_progress(value: float, _data: Any) -> bool:
                try:
                    return bool(report(float(value)))
                except BaseException:  # an exception cannot cross into C: stop the load
                    return False

            callback = llama_cpp.llama_progress_callback(on_progress)
            self._keep.append(callback)
            params.progress_callback = callback

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """While a ``Llama`` is constructed: its params carry our fields, and llama.cpp's
        log is captured (it reports each override) instead of printed."""
        import llama_cpp._logger as llama_logger
        import llama_cpp.llama_cpp as llama_cpp

        original = llama_cpp.llama_model_default_params
        lines = self.log_lines

        def with_ours() -> Any:
            params = original()
            self._apply(params, llama_cpp)
            return params

        def capture(level: int, text: bytes, _data: Any) -> None:
            lines.append(text.decode("utf-8", errors="replace"))

        log_callback = llama_cpp.llama_log_callback(capture)
        self._keep.append(log_callback)
        with _load_lock:
            llama_cpp.llama_model_default_params = with_ours
            llama_cpp.llama_log_set(log_callback, ctypes.c_void_p(0))
            try:
                yield
            finally:
                llama_cpp.llama_model_default_params = original
                llama_cpp.llama_log_set(llama_logger.llama_log_callback, ctypes.c_void_p(0))

    def loaded_buffers(self) -> dict[str, float]:
        """Buffer name -> MiB from llama.cpp's "model buffer size" lines of this load."""
        sizes: dict[str, float] = {}
        for line in "".join(self.log_lines).splitlines():
            match = re.search(r"(\S+) model buffer size =\s*([\d.]+) MiB", line)
            if match:
                sizes[match.group(1)] = sizes.get(match.group(1), 0.0) + float(match.group(2))
        return sizes
