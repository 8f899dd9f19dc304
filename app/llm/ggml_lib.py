"""ggml's shared libraries, the ones llama-cpp-python ships in ``llama_cpp/lib`` beside
libllama, for the C functions its Python bindings do not wrap: the GGUF reader
(app.llm.gguf), the device registry (app.llm.build_probe) and the CPU buffer type
(app.llm.load_params).

The folder is found without importing llama_cpp, so a build whose libllama cannot load
(a CUDA edition without its runtime) still reads model headers and can be described.
Opening a library that libllama has loaded already returns the same handle, so the
functions found here act on the same state as llama.cpp's own.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
from pathlib import Path
from typing import Any


def library_dir() -> Path | None:
    """``llama_cpp/lib`` of the installed (or frozen) llama-cpp-python; None without one."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "lib"


def ggml_libraries(names: tuple[str, ...] = ("ggml-base", "ggml", "ggml-cpu")) -> list[ctypes.CDLL]:
    """The named ggml libraries that exist and load, whatever the platform calls the file."""
    folder = library_dir()
    found: list[ctypes.CDLL] = []
    if folder is None:
        return found
    for name in names:
        for candidate in (f"lib{name}.so", f"lib{name}.dylib", f"{name}.dll", f"lib{name}.dll"):
            path = folder / candidate
            if path.exists():
                with contextlib.suppress(OSError):
                    found.append(ctypes.CDLL(str(path)))
                break
    return found


def symbol(libraries: list[ctypes.CDLL], name: str, restype: Any, *argtypes: Any) -> Any:
    """The C function ``name`` from the first library that has it, typed (``restype``
    None: void); None when none has it."""
    for library in libraries:
        with contextlib.suppress(AttributeError):
            function = getattr(library, name)
            function.restype, function.argtypes = restype, list(argtypes)
            return function
    return None
