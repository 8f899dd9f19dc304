"""Computed results the database could not take, kept in a file until it can.

A step that took minutes of a 30B model must outlive the process that computed it: when
its checkpoint gives up (the database stayed locked, the disk filled up, the user
cancelled the wait) the steps and answer still waiting are written here, and the next
process that opens the same database writes them first on resume instead of asking the
model again. The file lives in the app's own data folder (never beside a database the
user pointed the app at: nothing outside the app's files is modified), named by a hash
of the database's path, owner-only like the database itself, since it holds the same
excerpts. Best effort: on a full disk this write may fail too, which is logged and said.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
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
    return paths.data_dir() / FOLDER / f"{_key(database)}-run{run_id}.json"


def write_unsaved(
    database: Path, run_id: int, steps: list[StepRecord], answer: AnswerRecord | None
) -> Path | None:
    """Keep ``steps`` and ``answer`` of ``run_id`` in its side file (replacing what it
    held; none left: the file is removed). The file's path, or None if it could not be
    written."""
    target = side_file(database, run_id)
    if not steps and answer is None:
        with contextlib.suppress(OSError):  # a file left behind only repeats what is saved
            target.unlink(missing_ok=True)
        return None
    data = {
        "database": str(database.resolve()),
        "run_id": run_id,
        "steps": [asdict(step) for step in steps],
        "answer": asdict(answer) if answer is not None else None,
    }
    try:
        private.private_dir(target.parent)
        # Atomic: a kill mid-write keeps the file as it was.
        private.write_file(target, json.dumps(data).encode("utf-8"), durable=True)
    except OSError as error:
        log.warning("could not keep run %s's unsaved results in %s: %s", run_id, target, error)
        return None
    log.info("run %s: %d unsaved step(s) kept in %s", run_id, len(steps), target)
    return target


def read_unsaved(database: Path) -> dict[int, tuple[list[StepRecord], AnswerRecord | None]]:
    """Every run of ``database`` with results kept in a side file. A damaged file is
    renamed .bad and skipped (the run then resumes by asking the model again)."""
    folder = paths.data_dir() / FOLDER
    found: dict[int, tuple[list[StepRecord], AnswerRecord | None]] = {}
    if not folder.is_dir():
        return found
    for file in sorted(folder.glob(f"{_key(database)}-run*.json")):
        try:
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
