"""Which software produced a result: the app's version (from its package metadata, which
the frozen bundles carry too) and the llama-cpp-python a run used. Stored with every run,
so a review months later knows what answered, not only which model file."""

from __future__ import annotations

import platform
import sys
from importlib import metadata


def app_version() -> str:
    """The installed app's version, or "" when no metadata is found."""
    try:
        return metadata.version("qwenlong-reader")
    except metadata.PackageNotFoundError:
        return ""


def software() -> dict[str, str]:
    """What a run records: the app, Python, and llama-cpp-python when it is loaded (a
    remote run never loads it; the server is named by the run's model instead)."""
    llama = sys.modules.get("llama_cpp")
    return {
        "app": app_version(),
        "python": platform.python_version(),
        "llama_cpp_python": str(getattr(llama, "__version__", "")),
    }
