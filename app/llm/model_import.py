"""Import a GGUF from disk or a USB stick into the models folder: validated first, copied
through a .part file so an interrupted copy never looks like a model."""

from __future__ import annotations

import errno
import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from app import paths
from app.errors import ModelError
from app.llm.gguf import read_gguf_info
from app.llm.model_hash import HASH_BLOCK, remember_hash
from app.units import gb, human_size


def import_model(
    source: Path, out: TextIO, progress: Callable[[int, int], None] | None = None
) -> Path:
    """Copy a validated GGUF into the models folder, through a .part file so an
    interrupted copy never looks like a model."""
    info = read_gguf_info(source)  # ModelError for a missing, foreign or truncated file
    if not info.has_chat_template:
        raise ModelError(f"{source.name} has no chat template.", hint="Use an instruct/chat build.")
    target = paths.models_dir() / source.name
    if target.exists() and target.stat().st_size == info.file_size:
        out.write(f"{target.name} is already in the models folder.\n")
        return target
    free = shutil.disk_usage(target.parent).free
    if free < info.file_size:
        raise ModelError(
            f"Not enough disk space to import {source.name}: it needs {gb(info.file_size)}, "
            f"{gb(free)} is free in {target.parent}."
        )
    part = target.with_name(target.name + ".part")
    done = 0
    digest = hashlib.sha256()  # hashed as it is copied: its first load need not read it again
    try:
        with source.open("rb") as src, part.open("wb") as dst:
            while block := src.read(HASH_BLOCK):
                dst.write(block)
                digest.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, info.file_size)
        read_gguf_info(part)  # the copy is whole
        part.replace(target)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise ModelError(
            f"The disk filled up while copying {source.name} into {target.parent}; the "
            "partial copy was removed.",
            hint="Free some space and import again, or choose the file where it is in "
            "Settings (it need not be copied).",
        ) from None
    finally:
        part.unlink(missing_ok=True)
    remember_hash(target, digest.hexdigest())
    out.write(f"Copied {human_size(info.file_size)}: {info.describe()}\n")
    return target
