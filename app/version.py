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
    """What a run records: the app, Python, and the installed llama-cpp-python (the same
    for every run of this install, whether this process has loaded it or not; a remote
    run's server is named by its model)."""
    try:
        llama = metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:  # an install without its metadata
        llama = str(getattr(sys.modules.get("llama_cpp"), "__version__", ""))
    return {"app": app_version(), "python": platform.python_version(), "llama_cpp_python": llama}
