"""Computed results the database could not take, kept in a file until it can.

A step that took minutes of a 30B model must outlive the process that computed it: when
its checkpoint gives up (the database stayed locked, the disk filled up, the user
cancelled the wait) the steps and answer still waiting are written here, and the next
process that opens the same database writes them first on resume instead of asking the
model again. The file lives in the app's own data folder (never beside a database the
user pointed the app at: nothing outside the app's files is modified), named by a hash
of the database's path, owner-only like the database itself, since it holds the same
excerpts. Where that folder's disk is full too, the file goes to an owner-only folder in
the system's temporary folder (often another disk), which the next process reads as
well; where it can be written nowhere, that is logged and said.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import logging
import os
import stat
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app import paths, private
from app.records import AnswerRecord, CallStats, Chunk, StepRecord

log = logging.getLogger("app.agent")

FOLDER = "unsaved"


def _key(database: Path) -> str:
    """The database's name among the side files: a hash of its resolved path."""
    return hashlib.sha256(str(database.resolve()).encode("utf-8")).hexdigest()[:16]


def side_file(database: Path, run_id: int) -> Path:
    return paths.data_dir() / FOLDER / _name(database, run_id)


def fallback_folder() -> Path:
    """Where a side file goes when the app's data folder cannot take it (its disk is
    full too): the system's temporary folder, often another disk; owner-only."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this user (no USER, no passwd entry)
        user = ""
    user = "".join(c for c in user if c.isalnum() or c in "-_") or "user"
    return Path(tempfile.gettempdir()) / f"qwenlong-reader-{user}-{FOLDER}"


def _name(database: Path, run_id: int) -> str:
    return f"{_key(database)}-run{run_id}.json"


def _folders() -> list[Path]:
    return [paths.data_dir() / FOLDER, fallback_folder()]


def _own_private_folder(folder: Path) -> Path:
    """``folder`` made owner-only; in a shared temporary folder it must be a real folder
    of this user's, not a link or someone else's that could read or swap the file."""
    private.private_dir(folder)
    if hasattr(os, "getuid"):
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise PermissionError(f"{folder} is not a private folder of this user")
    return folder


def write_unsaved(
    database: Path, run_id: int, steps: list[StepRecord], answer: AnswerRecord | None
) -> Path | None:
    """Keep ``steps`` and ``answer`` of ``run_id`` in its side file (replacing what it
    held; none left: the file is removed), in the app's data folder or, if that cannot
    be written (a full disk), in the temporary folder. The file's path, or None if it
    could be written nowhere."""
    name = _name(database, run_id)
    if not steps and answer is None:
        for folder in _folders():
            with contextlib.suppress(OSError):  # a file left behind repeats what is saved
                (folder / name).unlink(missing_ok=True)
        return None
    data = json.dumps(
        {
            "database": str(database.resolve()),
            "run_id": run_id,
            "steps": [asdict(step) for step in steps],
            "answer": asdict(answer) if answer is not None else None,
        }
    ).encode("utf-8")
    for number, folder in enumerate(_folders()):
        target = folder / name
        try:
            # Atomic: a kill mid-write keeps the file as it was.
            private.write_file(
                (private.private_dir(folder) if number == 0 else _own_private_folder(folder))
                / name,
                data,
                durable=True,
            )
        except OSError as error:
            log.warning("could not keep run %s's unsaved results in %s: %s", run_id, target, error)
            continue
        for other in _folders()[number + 1 :]:  # an older copy elsewhere is stale now
            with contextlib.suppress(OSError):
                (other / name).unlink(missing_ok=True)
        if number > 0:  # the copy in the data folder, if any, is older: not to be read
            with contextlib.suppress(OSError):
                (_folders()[0] / name).unlink(missing_ok=True)
        log.info("run %s: %d unsaved step(s) kept in %s", run_id, len(steps), target)
        return target
    return None


def read_unsaved(database: Path) -> dict[int, tuple[list[StepRecord], AnswerRecord | None]]:
    """Every run of ``database`` with results kept in a side file (in the data folder or
    the temporary one). A damaged file is renamed .bad and skipped (the run then resumes
    by asking the model again)."""
    found: dict[int, tuple[list[StepRecord], AnswerRecord | None]] = {}
    for folder in reversed(_folders()):  # the data folder's copy wins where both exist
        if not folder.is_dir():
            continue
        for file in sorted(folder.glob(f"{_key(database)}-run*.json")):
            try:
                if hasattr(os, "getuid") and file.lstat().st_uid != os.getuid():
                    continue  # not written by this user: not to be trusted
                data = json.loads(file.read_text(encoding="utf-8"))
                if data["database"] != str(database.resolve()):
                    continue  # a hash collision of two paths: not this database's
                steps = [_step(s) for s in data["steps"]]
                answer = _answer(data["answer"]) if data["answer"] else None
                found[int(data["run_id"])] = (steps, answer)
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.warning("unreadable unsaved results %s (%s): renamed .bad", file, error)
                with contextlib.suppress(OSError):
                    file.rename(file.with_suffix(".bad"))
    return found


def _stats(data: dict[str, Any]) -> CallStats:
    return CallStats(**{**data, "notes": tuple(data.get("notes") or ())})


def _step(data: dict[str, Any]) -> StepRecord:
    return StepRecord(
        index=data["index"],
        chunk=Chunk(**data["chunk"]),
        memory=data["memory"],
        plan=data["plan"],
        stats=_stats(data["stats"]),
        malformed=data.get("malformed", False),
    )


def _answer(data: dict[str, Any]) -> AnswerRecord:
    return AnswerRecord(text=data["text"], stats=_stats(data["stats"]))
